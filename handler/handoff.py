"""The durable hand-off of a verified delivery: archive to S3, then one entry on the bus.

Each configured target must succeed or the whole hand-off fails (a 503 that GitHub can
redeliver): nothing is reported accepted that was not handed off.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from handler import envelope
from handler.archive import Archive, archive_key, put_payload
from handler.budget import Budget
from handler.delivery import Delivery
from handler.envelope import Location
from handler.errors import ForwardFailed, MalformedPayload
from handler.eventbridge import EventBus
from handler.telemetry import traced

_MEASURE_FACTOR = 1.5


class Handoff:
    def __init__(
        self,
        *,
        archive: Archive | None,
        bus: EventBus | None,
        payload_bucket: str | None,
        max_entry_bytes: int,
    ) -> None:
        self.archive = archive
        self.bus = bus
        self.payload_bucket = payload_bucket
        self.max_entry_bytes = max_entry_bytes

    @property
    def configured(self) -> bool:
        return self.archive is not None or self.bus is not None

    def deliver(self, delivery: Delivery, headers: Mapping[str, str], received_at: float, budget: Budget) -> None:
        archived = Location(self.archive.bucket, archive_key(delivery, received_at)) if self.archive else None
        # The entry is planned before anything is written, so a delivery that cannot be forwarded
        # (too deeply nested, no bucket for its claim check) leaves nothing behind.
        entry = self._plan(delivery, archived, received_at) if self.bus is not None else None
        if self.archive is not None:
            budget.check("archive")
            with traced("archive"):
                self.archive.store(delivery, headers, received_at)
        if self.bus is not None and entry is not None:
            self._send(self.bus, delivery, entry, budget)

    def forward(
        self, delivery: Delivery, archived: Location | None, received_at: float, budget: Budget | None = None
    ) -> None:
        """Put an already archived delivery on the bus (how `replay` re-sends one)."""
        if self.bus is None:
            raise ForwardFailed("no event bus is configured")
        self._send(self.bus, delivery, self._plan(delivery, archived, received_at), budget)

    def _plan(self, delivery: Delivery, archived: Location | None, received_at: float) -> _Entry:
        # The entry re-serialises the payload compactly, so only its own size decides. A payload far
        # over the limit is not serialised just to be measured: GitHub sends compact JSON, so the
        # JSON text's length is close to the entry's.
        text_length = len(delivery.body) if delivery.form_json is None else len(delivery.form_json)
        if text_length <= _MEASURE_FACTOR * self.max_entry_bytes:
            try:
                inline = envelope.detail(delivery, archive_location=archived)
            except RecursionError:  # parsed near the recursion limit, serialised deeper in the stack
                raise MalformedPayload("payload nests too deeply to forward") from None
            if envelope.entry_size(delivery.event, inline) < self.max_entry_bytes:
                return _Entry(inline)
        # A JSON delivery's archive object already is the payload: point at it instead of writing it twice.
        if archived is not None and delivery.form_json is None and archived.bucket == self.payload_bucket:
            return _Entry(envelope.detail(delivery, payload_location=archived, archive_location=archived))
        if self.payload_bucket is None:
            raise ForwardFailed("payload exceeds the EventBridge entry limit and no PAYLOAD_BUCKET is configured")
        stem = archive_key(delivery, received_at).removeprefix("deliveries/").rsplit(".", 1)[0]
        location = Location(self.payload_bucket, f"payloads/{stem}.json")
        detail = envelope.detail(delivery, payload_location=location, archive_location=archived)
        return _Entry(detail, claim_check=location)

    def _send(self, bus: EventBus, delivery: Delivery, entry: _Entry, budget: Budget | None) -> None:
        if entry.claim_check is not None:
            if budget is not None:
                budget.check("claim check")
            with traced("claim_check"):
                put_payload(entry.claim_check.bucket, entry.claim_check.key, envelope.payload_json(delivery))
        if budget is not None:
            budget.check("forward")
        with traced("forward"):
            bus.put(delivery.event, entry.detail)


@dataclass(frozen=True, slots=True)
class _Entry:
    """A planned PutEvents entry, and the claim-check object to write first (if any)."""

    detail: str
    claim_check: Location | None = None
