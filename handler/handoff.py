"""The durable hand-off of a verified delivery: archive to S3, then one entry on the bus.

Each configured target must succeed or the whole hand-off fails (a 503 that GitHub can
redeliver): nothing is reported accepted that was not handed off.
"""

from __future__ import annotations

from collections.abc import Mapping

from handler import envelope
from handler.archive import Archive, archive_key, put_payload
from handler.budget import Budget
from handler.delivery import JSON, Delivery
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
        archived = None
        if self.archive is not None:
            budget.check("archive")
            with traced("archive"):
                archived = self.archive.store(delivery, headers, received_at)
        if self.bus is not None:
            self.forward(delivery, archived, received_at, budget)

    def forward(
        self, delivery: Delivery, archived: envelope.Location | None, received_at: float, budget: Budget | None = None
    ) -> None:
        """Put the delivery on the bus (also how `replay` re-sends an archived delivery)."""
        if self.bus is None:
            raise ForwardFailed("no event bus is configured")
        detail = self._detail(delivery, archived, received_at, budget)
        if budget is not None:
            budget.check("forward")
        with traced("forward"):
            self.bus.put(delivery.event, detail)

    def _detail(
        self, delivery: Delivery, archived: envelope.Location | None, received_at: float, budget: Budget | None
    ) -> str:
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
                return inline
        if budget is not None:
            budget.check("claim check")
        location = self._claim_check(delivery, archived, received_at)
        return envelope.detail(delivery, payload_location=location, archive_location=archived)

    def _claim_check(
        self, delivery: Delivery, archived: envelope.Location | None, received_at: float
    ) -> envelope.Location:
        # A JSON delivery's archive object already is the payload: point at it instead of writing it twice.
        if archived is not None and delivery.content_type == JSON and archived.bucket == self.payload_bucket:
            return archived
        if self.payload_bucket is None:
            raise ForwardFailed("payload exceeds the EventBridge entry limit and no PAYLOAD_BUCKET is configured")
        key = "payloads/" + archive_key(delivery, received_at).removeprefix("deliveries/").rsplit(".", 1)[0] + ".json"
        with traced("claim_check"):
            return put_payload(self.payload_bucket, key, envelope.payload_json(delivery))
