"""A receiver wired to the in-memory fakes (tests/fakes.py), and requests signed as GitHub signs them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from devkit.github import encode_body, github_headers, sample_payload
from handler.core.delivery import Delivery, parse_delivery
from handler.core.handoff import Handoff
from handler.core.outcomes import Outcome
from handler.core.receiver import Receiver
from handler.core.routing import Router
from handler.core.settings import Settings
from tests import fakes

SECRET = b"core-test-secret"
EVENTS = ["ping", "push", "pull_request", "issues", "issue_comment", "workflow_run", "release", "installation"]


def request(
    event: str = "push",
    *,
    payload: Mapping[str, Any] | bytes | None = None,
    form: bool = False,
    secret: bytes | str | None = SECRET,
    **headers: Any,
) -> tuple[bytes, dict[str, str]]:
    """A body and its headers as GitHub sends them, signed with ``secret`` (``None``: unsigned)."""
    body = encode_body(sample_payload(event) if payload is None else payload, form=form)  # type: ignore[arg-type]
    return body, github_headers(event, body, secret=secret, form=form, **headers)


def delivery(event: str = "push", **kwargs: Any) -> Delivery:
    """A verified delivery of ``event`` (the sample payload unless ``payload`` is given)."""
    body, headers = request(event, **kwargs)
    return parse_delivery(headers, body)


@dataclass
class World:
    """A receiver and every fake it talks to; change a fake's attributes to inject a failure."""

    receiver: Receiver
    telemetry: fakes.Telemetry
    secrets: fakes.Secrets
    once: fakes.Once
    replays: fakes.Replays
    archive: fakes.Archive
    payloads: fakes.PayloadStore
    bus: fakes.Target
    clock: fakes.Clock  # wall clock: archive keys
    monotonic: fakes.Clock  # the budget's clock, advanced by the fakes' delays
    router: Router
    routed: list[str] = field(default_factory=list)

    def send(self, body: bytes, headers: Mapping[str, str], **kwargs: Any) -> str:
        """``"accepted"``/``"duplicate"``, or ``"<status> <code>"`` of the outcome raised."""
        try:
            return self.receiver.receive(headers, body, **kwargs).status.value
        except Outcome as exc:
            return f"{exc.status} {exc.code}"

    @property
    def handed_off(self) -> tuple[int, int, int]:
        """(archive objects, claim-check objects, bus entries)."""
        return len(self.archive.objects), len(self.payloads.payloads), len(self.bus.entries)


def build(
    *,
    secrets: tuple[bytes, ...] = (SECRET,),
    dedup: bool = True,
    archive: bool = True,
    bus: bool = True,
    payload_bucket: str | None = "archive",
    max_entry_bytes: int = 256 * 1024,
    replay_protection: bool = False,
    **settings: Any,
) -> World:
    """A receiver with archive, bus, claim check (in the archive bucket) and deduplication, all in memory."""
    telemetry, clock, monotonic = fakes.Telemetry(), fakes.Clock(), fakes.Clock(1000.0)
    store = fakes.Secrets(*secrets, clock=monotonic)
    once = fakes.Once(clock=monotonic)
    replays = fakes.Replays()
    world_archive = fakes.Archive(bucket="archive", clock=monotonic)
    payloads = fakes.PayloadStore(bucket=payload_bucket or "none", clock=monotonic)
    target = fakes.Target(clock=monotonic)
    handoff = Handoff(
        archive=world_archive if archive else None,
        targets=[target] if bus else [],
        payloads=payloads if payload_bucket else None,
        max_entry_bytes=max_entry_bytes,
        telemetry=telemetry,
    )
    router = Router()
    world = World(
        receiver=Receiver(
            Settings(**settings),
            store,
            telemetry=telemetry,
            handoff=handoff,
            once=once if dedup else None,
            replays=replays if dedup and replay_protection else None,
            router=router,
            route_args=(telemetry.log,),  # as handler.wiring passes it
            clock=clock,
            monotonic=monotonic,
        ),
        telemetry=telemetry,
        secrets=store,
        once=once,
        replays=replays,
        archive=world_archive,
        payloads=payloads,
        bus=target,
        clock=clock,
        monotonic=monotonic,
        router=router,
    )
    router.add(lambda delivered, log: world.routed.append(delivered.delivery_id))
    return world
