"""The durable hand-off of a verified delivery, sans I/O: archive the exact bytes, then one entry of
the event contract to each target (the bus), with a claim check when the entry would be too large.

Each configured step must succeed or the whole hand-off fails (a 503 that GitHub can redeliver):
nothing is reported accepted that was not handed off. The steps go through ports
(:mod:`handler.core.ports`); the request's budget is checked before each.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

from handler.core import envelope
from handler.core.archive import ArchiveMode, archive_key, archived_metadata, object_content_type
from handler.core.budget import Budget
from handler.core.delivery import BOM, Delivery, has_duplicate_keys
from handler.core.envelope import Location
from handler.core.outcomes import ForwardFailed, MalformedPayload
from handler.core.ports import Archive, PayloadStore, Target, Telemetry

# GitHub sends compact JSON, so a payload's JSON text is about as long as its entry: one over this many
# times the limit is sent by claim check without being serialised just to be measured.
_MEASURE_FACTOR = 1.5


class Handoff:
    """``max_entry_bytes``: the largest entry the targets take. ``inline_max_bytes``: above this, an
    entry goes by claim check when there is a bucket for one. EventBridge bills each 64 KB chunk of an
    entry as an event, and its archive on the bus (the replay store of ArchiveMode large and off)
    $0.10 per GB: a 200 KB entry costs 4 events and $19 per million archived, its pointer one event and,
    unless the archive object exists anyway (ArchiveMode every), one S3 PUT ($5 per million).
    ``archive_mode``: which deliveries the archive keeps (:class:`ArchiveMode`)."""

    def __init__(
        self,
        *,
        archive: Archive | None = None,
        targets: Sequence[Target] = (),
        payloads: PayloadStore | None = None,
        max_entry_bytes: int,
        inline_max_bytes: int | None = None,
        archive_mode: ArchiveMode = ArchiveMode.EVERY,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.archive = archive if archive_mode is not ArchiveMode.OFF else None
        self.targets = tuple(targets)
        self.payloads = payloads
        self.max_entry_bytes = max_entry_bytes
        self.inline_max_bytes = max_entry_bytes if inline_max_bytes is None else inline_max_bytes
        # Without a target, the archive is the hand-off: it keeps every delivery whatever the mode.
        self.archive_mode = archive_mode if self.targets else ArchiveMode.EVERY
        self._telemetry = telemetry

    @property
    def configured(self) -> bool:
        return self.archive is not None or bool(self.targets)

    def deliver(self, delivery: Delivery, headers: Mapping[str, str], received_at: float, budget: Budget) -> None:
        key = archive_key(delivery, received_at)
        location = Location(self.archive.bucket, key) if self.archive is not None else None
        kept = location if self.archive_mode is ArchiveMode.EVERY else None  # archived whatever the entry
        # The entry is planned before anything is written, so a delivery that cannot be forwarded
        # (too deeply nested, no bucket for its claim check) leaves nothing behind.
        entry = self._plan(delivery, kept, received_at, spare=location) if self.targets else None
        if self.archive is not None and (kept is not None or (entry is not None and entry.archives)):
            budget.check("archive")
            with self._span("archive"):
                self.archive.store(
                    key, delivery.body, content_type=object_content_type(delivery), metadata=archived_metadata(headers)
                )
        if entry is not None:
            self._send(delivery, entry, budget)

    def forward(
        self, delivery: Delivery, archived: Location | None, received_at: float, budget: Budget | None = None
    ) -> None:
        """Send an already archived delivery to the targets again (how `replay` re-sends one)."""
        if not self.targets:
            raise ForwardFailed("no event bus is configured")
        self._send(delivery, self._plan(delivery, archived, received_at), budget)

    def _plan(
        self, delivery: Delivery, archived: Location | None, received_at: float, *, spare: Location | None = None
    ) -> _Entry:
        """Inline up to ``inline_max_bytes``; above it a pointer to the archive object, or a claim-check
        object; inline again, up to the targets' limit, only when there is no bucket for a claim check.

        ``archived``: the delivery's archive object, written whatever the entry. ``spare``: where it
        would be written if the entry needed it (ArchiveMode large): then the archive object *is* the
        claim check, one PUT, as a claim-check object would be.
        """
        inline = None
        # The entry re-serialises the payload compactly, so only its own size decides.
        text_length = len(delivery.body) if delivery.form_json is None else len(delivery.form_json)
        if text_length <= _MEASURE_FACTOR * self.max_entry_bytes:
            try:
                inline = envelope.detail(delivery, archive_location=archived)
            except RecursionError:  # parsed near the recursion limit, serialised deeper in the stack
                raise MalformedPayload("payload nests too deeply to forward") from None
            size = envelope.entry_size(delivery.event, inline)
            if size + envelope.ENVELOPE_BYTES >= self.max_entry_bytes:
                inline = None  # the targets would refuse it
            elif size <= self.inline_max_bytes or self.payloads is None:
                return _Entry(inline)
        payload_bucket = self.payloads.bucket if self.payloads is not None else None
        text = envelope.payload_json(delivery)
        # A consumer parses the claim check itself. If a key repeats, its parser may keep the first value
        # where ours kept the last (`closed` routed here, `opened` there): it gets the payload as parsed.
        as_parsed = has_duplicate_keys(text, delivery.payload)
        if as_parsed and inline is not None:
            return _Entry(inline)  # the entry carries the payload as parsed already
        if as_parsed:
            self._warn("payload repeats a key: the claim check holds the payload as parsed")
            try:
                text = envelope.parsed_payload_json(delivery)
            except RecursionError:
                raise MalformedPayload("payload nests too deeply to forward") from None
        # A JSON delivery's archive object is the payload: point at it instead of writing it twice.
        # (Not with a BOM: the archive keeps the exact bytes, the claim check must be plain JSON.)
        plain_json = delivery.form_json is None and not delivery.body.startswith(BOM) and not as_parsed
        pointer = archived or spare
        if pointer is not None and plain_json and pointer.bucket == payload_bucket:
            detail = envelope.detail(delivery, payload_location=pointer, archive_location=pointer)
            return _Entry(detail, archives=archived is None)
        if payload_bucket is None:
            raise ForwardFailed("payload exceeds the EventBridge entry limit and no PAYLOAD_BUCKET is configured")
        stem = archive_key(delivery, received_at).removeprefix("deliveries/").rsplit(".", 1)[0]
        location = Location(payload_bucket, f"payloads/{stem}.json")
        detail = envelope.detail(delivery, payload_location=location, archive_location=archived)
        return _Entry(detail, claim_check=location, claim_check_body=text)

    def _send(self, delivery: Delivery, entry: _Entry, budget: Budget | None) -> None:
        if entry.claim_check is not None and self.payloads is not None:
            if budget is not None:
                budget.check("claim check")
            with self._span("claim_check"):
                self.payloads.put(entry.claim_check.key, entry.claim_check_body)
        for target in self.targets:
            if budget is not None:
                budget.check("forward")
            with self._span(target.name):
                target.put(delivery.event, entry.detail)

    def _warn(self, message: str) -> None:
        if self._telemetry is not None:
            self._telemetry.log("warning", message, metrics=["PayloadDuplicateKeys"])

    def _span(self, name: str) -> AbstractContextManager[None]:
        return self._telemetry.span(name) if self._telemetry is not None else nullcontext()


@dataclass(frozen=True, slots=True)
class _Entry:
    """A planned entry, and the claim-check object to write first (if any)."""

    detail: str
    claim_check: Location | None = None
    claim_check_body: bytes = b""
    archives: bool = False  # the entry points at an archive object that only it needs (ArchiveMode large)
