"""`webhook replay`: re-send archived deliveries from the S3 archive to the bus.

The archive holds the exact bytes GitHub signed and its headers, verified when they arrived.
Replay rebuilds each delivery from them and puts the same event contract on the bus (claim
check included). It does not go through deduplication: consumers dedupe on ``delivery_id``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from devkit.errors import USAGE, CliError
from handler.aws.clients import client, error_code
from handler.aws.eventbridge import EventBus
from handler.aws.s3 import S3PayloadStore
from handler.core.archive import PREFIX, parse_key
from handler.core.delivery import parse_delivery
from handler.core.envelope import Location
from handler.core.handoff import Handoff
from handler.core.outcomes import Rejected, Unavailable
from handler.core.settings import DEFAULT_EVENT_MAX_ENTRY_BYTES

_STAMP = "%Y%m%dT%H%M%S"


def use_region(explicit: str | None = None, environ: Mapping[str, str] = os.environ) -> str:
    """The region replay's clients use: ``--region``, else AWS_REGION, else AWS_DEFAULT_REGION, else the
    profile's (``~/.aws/config``). Passed to boto3 explicitly: botocore itself reads AWS_DEFAULT_REGION
    only, so AWS_REGION alone (as Lambda and most SDKs use it) would end in NoRegionError."""
    import boto3
    from botocore.exceptions import BotoCoreError

    try:
        region = explicit or environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
        region = region or boto3.Session().region_name
        if not region:
            raise CliError("no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION), or give --region", USAGE)
        # The default session is what every client replay uses (handler.aws.clients) is created from.
        if boto3.DEFAULT_SESSION is None or boto3.DEFAULT_SESSION.region_name != region:
            boto3.setup_default_session(region_name=region)
            client.cache_clear()
    except BotoCoreError as exc:  # e.g. AWS_PROFILE names a profile that does not exist
        raise CliError(str(exc), USAGE) from None
    return region


def parse_time(value: str) -> datetime:
    """``2026-11-29``, ``2026-11-29T13:00``, ``2026-11-29T13:00:05Z``: UTC unless an offset is given."""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise CliError(f"not an ISO 8601 time: {value}", USAGE) from None
    return moment.replace(tzinfo=moment.tzinfo or UTC).astimezone(UTC)


def stamp(moment: datetime) -> str:
    return moment.strftime(_STAMP) + f".{moment.microsecond // 1000:03d}Z"


@dataclass
class Selection:
    since: datetime | None = None
    until: datetime | None = None
    events: set[str] = field(default_factory=set)
    delivery_ids: set[str] = field(default_factory=set)

    def keys(self, bucket: str) -> Iterator[str]:
        """Archive keys in time order, within the range and matching the filters."""
        start_after = PREFIX + self.since.strftime("%Y/%m/%d/%H/") if self.since else ""
        since, until = (stamp(t) if t else None for t in (self.since, self.until))
        pages = (
            client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=PREFIX, StartAfter=start_after)
        )
        for page in pages:
            for item in page.get("Contents", []):
                named = parse_key(item["Key"])
                if named is None:
                    continue
                if until and named["stamp"] > until:
                    return  # keys sort by time: nothing later can match
                if since and named["stamp"] < since:
                    continue
                if self.events and named["event"] not in self.events:
                    continue
                if self.delivery_ids and named["delivery_id"] not in self.delivery_ids:
                    continue
                yield item["Key"]


@dataclass
class Summary:
    sent: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


def replay(
    *,
    bucket: str,
    bus: str | None,
    selection: Selection,
    dry_run: bool = False,
    max_entry_bytes: int = DEFAULT_EVENT_MAX_ENTRY_BYTES,
    progress: bool = True,
) -> Summary:
    from tqdm import tqdm

    try:
        keys = list(selection.keys(bucket))
    except Exception as exc:
        raise CliError(f"cannot list s3://{bucket}/{PREFIX} ({error_code(exc)})", USAGE) from None
    summary = Summary()
    if dry_run:
        for key in keys:
            print(f"would send {key}")
            summary.sent.append(key)
        return summary
    if not bus:
        raise CliError("give the bus with --bus (or EVENT_BUS_NAME)", USAGE)
    handoff = Handoff(targets=[EventBus(bus)], payloads=S3PayloadStore(bucket), max_entry_bytes=max_entry_bytes)
    for key in tqdm(keys, desc="replaying", unit="delivery", disable=not progress or not keys, file=sys.stderr):
        try:
            _send(handoff, bucket, key)
        except (Rejected, Unavailable) as exc:
            summary.failed.append((key, exc.detail))
        except Exception as exc:
            summary.failed.append((key, error_code(exc)))
        else:
            summary.sent.append(key)
    return summary


def _send(handoff: Handoff, bucket: str, key: str) -> None:
    stored = client("s3").get_object(Bucket=bucket, Key=key)
    body = stored["Body"].read()
    delivery = parse_delivery(stored.get("Metadata", {}), body)
    received = datetime.strptime(parse_key(key)["stamp"], _STAMP + ".%fZ").replace(tzinfo=UTC)
    handoff.forward(delivery, Location(bucket, key), received.timestamp())
