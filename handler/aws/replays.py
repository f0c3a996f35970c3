"""Replay protection on the deduplication table: one item per body digest (``body#<sha256>``) naming
the delivery (its key and id) that first brought it, kept for the deduplication window (a
:class:`~handler.core.ports.Replays`).

GitHub signs the body only: a captured signed body resent under a fresh ``X-GitHub-Delivery``, or
under the same one with another ``X-GitHub-Hook-ID``, would pass the signature and the deduplication
by key. A conditional put tells them apart. Powertools Idempotency keys on one value, so this is a
second, plain record: one PutItem per delivery (and a GetItem when the put is refused).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from handler.aws.clients import client, error_code
from handler.core.outcomes import DeduplicationUnavailable, OutOfTime
from handler.core.ports import Claim

KEY_PREFIX = "body#"


class DynamoReplays:
    def __init__(self, table: str, *, ttl_seconds: int, clock: Callable[[], float] = time.time) -> None:
        self._table = table
        self._ttl = ttl_seconds
        self._clock = clock

    def claim(self, digest: str, *, key: str, delivery_id: str) -> Claim:
        now = int(self._clock())
        item_key = {"id": {"S": KEY_PREFIX + digest}}
        try:
            client("dynamodb").put_item(
                TableName=self._table,
                Item={
                    **item_key,
                    "delivery_key": {"S": key},
                    "delivery_id": {"S": delivery_id},
                    "expiration": {"N": str(now + self._ttl)},
                },
                # New, the same delivery again (a redelivery), or expired (TTL deletes items late).
                ConditionExpression="attribute_not_exists(id) OR delivery_key = :key OR expiration < :now",
                ExpressionAttributeValues={":key": {"S": key}, ":now": {"N": str(now)}},
            )
            return Claim.NEW
        except OutOfTime:
            raise
        except Exception as exc:
            code = error_code(exc)
            if code != "ConditionalCheckFailedException":
                raise DeduplicationUnavailable(f"replay record failed ({code})") from None
        try:
            first = client("dynamodb").get_item(TableName=self._table, Key=item_key, ConsistentRead=True)
        except OutOfTime:
            raise
        except Exception as exc:
            raise DeduplicationUnavailable(f"replay record failed ({error_code(exc)})") from None
        claimed_by = first.get("Item", {}).get("delivery_id", {}).get("S")
        return Claim.SAME_EVENT if claimed_by == delivery_id else Claim.REPLAY
