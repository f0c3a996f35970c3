"""The receiver's durable pipeline built from its settings: the hand-off (archive, bus, claim check)
and deduplication. One place, used by the receiver (``handler.app``) and by pull recovery
(``handler.redelivery``), so that both hand a delivery off the same way under the same key."""

from __future__ import annotations

from handler.aws.eventbridge import EventBus
from handler.aws.s3 import S3Archive, S3PayloadStore
from handler.core.handoff import Handoff
from handler.core.ports import Once, Replays, Telemetry
from handler.core.settings import DedupMode, Settings


def handoff(settings: Settings, telemetry: Telemetry) -> Handoff:
    # Another target (SQS, a second bus, Step Functions) is one more adapter in this list.
    targets = [EventBus(settings.event_bus_name)] if settings.event_bus_name else []
    return Handoff(
        archive=S3Archive(settings.archive_bucket) if settings.archive_bucket else None,
        targets=targets,
        payloads=S3PayloadStore(settings.payload_bucket) if settings.payload_bucket else None,
        max_entry_bytes=settings.event_max_entry_bytes,
        inline_max_bytes=settings.event_inline_max_bytes,
        archive_mode=settings.archive_mode,
        telemetry=telemetry,
    )


def replays(settings: Settings) -> Replays | None:
    """Replay protection, beside deduplication (same table, same window)."""
    if not (settings.replay_protection and settings.idempotency_table):
        return None
    from handler.aws.replays import DynamoReplays

    return DynamoReplays(settings.idempotency_table, ttl_seconds=settings.dedup_ttl_seconds)


def deduplicator(settings: Settings) -> Once | None:
    if not settings.idempotency_table:
        return None
    if settings.dedup_mode is DedupMode.AFTER:
        from handler.aws.record_after import RecordAfter

        return RecordAfter(settings.idempotency_table, ttl_seconds=settings.dedup_ttl_seconds)
    from handler.aws.idempotency import Deduplicator  # Powertools' idempotency: only when configured

    return Deduplicator(settings.idempotency_table, ttl_seconds=settings.dedup_ttl_seconds)
