"""In-memory implementations of every port in handler.core.ports, and a clock that only moves when told.

They behave as the contracts in ports.py say (the AWS adapters are tested against moto for the same
contracts), so the core's flow can be tested at memory speed, with failures injected by name.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from handler.core.outcomes import (
    ArchiveFailed,
    DeduplicationUnavailable,
    DeliveryConflict,
    ForwardFailed,
    InProgress,
    SecretUnavailable,
    Unavailable,
)
from handler.core.ports import Claim, Deadline, Status


class Clock:
    """Seconds that advance only through :meth:`advance` (or a fake's ``delay``)."""

    def __init__(self, now: float = 1_795_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Line:
    level: str
    message: str
    metrics: tuple[str, ...]
    fields: dict[str, Any]  # the keys bound at the time, the dimensions, then the line's own fields
    counts: dict[str, int] = field(default_factory=dict)  # each metric and the count it adds


class Telemetry:
    """Records every line with the keys bound at the time, every metric and every span."""

    def __init__(self) -> None:
        self.lines: list[Line] = []
        self.spans: list[str] = []
        self.errors: list[BaseException] = []  # what unexpected() was given
        self._keys: dict[str, Any] = {}

    def bind(self, **keys: Any) -> None:
        self._keys.update(keys)

    def unbind(self, *names: str) -> None:
        for name in names:
            self._keys.pop(name, None)

    def log(
        self,
        level: str,
        message: str,
        *,
        metrics: Sequence[str] | Mapping[str, int] = (),
        dimensions: Mapping[str, str] | None = None,
        **fields: Any,
    ) -> None:
        counts = dict(metrics) if isinstance(metrics, Mapping) else dict.fromkeys(metrics, 1)
        line = Line(level, message, tuple(counts), {**self._keys, **(dimensions or {}), **fields}, counts)
        self.lines.append(line)

    def unexpected(
        self,
        exc: BaseException,
        message: str,
        *,
        metrics: Sequence[str] = (),
        dimensions: Mapping[str, str] | None = None,
        **fields: Any,
    ) -> None:
        self.errors.append(exc)
        self.log("error", message, metrics=metrics, dimensions=dimensions, **fields, error_type=type(exc).__name__)

    @contextmanager
    def span(self, name: str) -> Iterator[None]:
        self.spans.append(name)
        yield

    @property
    def messages(self) -> list[str]:
        return [line.message for line in self.lines]

    @property
    def metrics(self) -> list[str]:
        return [metric for line in self.lines for metric in line.metrics]

    @property
    def bound(self) -> dict[str, Any]:
        return dict(self._keys)

    def only(self, message: str) -> Line:
        """The one line with ``message`` (fails if there is none or several)."""
        [line] = [line for line in self.lines if line.message == message]
        return line


class Secrets:
    """Secrets that can be rotated, and whose store can fail or be slow (``delay`` on ``clock``)."""

    def __init__(self, *secrets: bytes, clock: Clock | None = None, delay: float = 0.0) -> None:
        self.secrets = tuple(secrets)
        self.stored = tuple(secrets)  # what a forced read would return
        self.failing = False
        self.reads = 0
        self.refreshes = 0
        self.refresh_allowed = True
        self.clock = clock
        self.delay = delay

    def rotate(self, *stored: bytes) -> None:
        """The store now holds ``stored``; the cached secrets stay until a refresh."""
        self.stored = tuple(stored)

    def current(self) -> tuple[bytes, ...]:
        self.reads += 1
        if self.clock is not None:
            self.clock.advance(self.delay)
        if not self.secrets:
            raise SecretUnavailable("no secret")
        return self.secrets

    def refreshed(self) -> tuple[bytes, ...] | None:
        if not self.refresh_allowed:
            return None
        self.refreshes += 1
        if self.failing:
            raise SecretUnavailable("store failing")
        self.secrets = self.stored
        return self.secrets


class Once:
    """Deduplication as Powertools Idempotency does it: a record per id, INPROGRESS while ``work``
    runs, deleted when it fails, COMPLETED after; the delete and the completion can be made to fail."""

    def __init__(self, *, clock: Clock | None = None, delay: float = 0.0) -> None:
        self.records: dict[str, str] = {}
        self.digests: dict[str, str | None] = {}
        self.deadlines: list[Deadline] = []
        self.fail_save = False
        self.fail_complete = False
        self.fail_delete = False
        self.clock = clock
        self.delay = delay  # saving the INPROGRESS record takes this long

    def once(
        self, delivery_id: str, work: Callable[[], None], *, deadline: Deadline, digest: str | None = None
    ) -> Status:
        self.deadlines.append(deadline)
        if self.clock is not None:
            self.clock.advance(self.delay)
        if self.fail_save:
            raise DeduplicationUnavailable("idempotency store failed (InternalServerError)")
        state = self.records.get(delivery_id)
        if state == "COMPLETED":
            stored = self.digests.get(delivery_id)
            if digest and stored and stored != digest:
                raise DeliveryConflict()
            return Status.DUPLICATE
        if state == "INPROGRESS":
            raise InProgress()
        self.records[delivery_id] = "INPROGRESS"
        try:
            work()
        except Exception:
            if self.fail_delete:
                raise DeduplicationUnavailable("idempotency store failed (InternalServerError)") from None
            del self.records[delivery_id]
            raise
        if self.fail_complete:
            return Status.UNRECORDED
        self.records[delivery_id] = "COMPLETED"
        self.digests[delivery_id] = digest
        return Status.ACCEPTED


@dataclass
class Stored:
    key: str
    body: bytes
    content_type: str
    metadata: dict[str, str]


@dataclass
class Archive:
    bucket: str = "archive"
    objects: list[Stored] = field(default_factory=list)
    failure: Unavailable | None = None
    delay: float = 0.0
    clock: Clock | None = None

    def store(self, key: str, body: bytes, *, content_type: str, metadata: Mapping[str, str]) -> None:
        if self.clock is not None:
            self.clock.advance(self.delay)
        if self.failure is not None:
            raise self.failure
        self.objects.append(Stored(key, body, content_type, dict(metadata)))


@dataclass
class PayloadStore:
    bucket: str = "archive"
    payloads: dict[str, bytes] = field(default_factory=dict)
    failure: Unavailable | None = None
    delay: float = 0.0
    clock: Clock | None = None

    def put(self, key: str, payload: bytes) -> None:
        if self.clock is not None:
            self.clock.advance(self.delay)
        if self.failure is not None:
            raise self.failure
        self.payloads[key] = payload


@dataclass
class Target:
    name: str = "forward"
    entries: list[tuple[str, str]] = field(default_factory=list)
    failure: Unavailable | None = None
    delay: float = 0.0
    clock: Clock | None = None

    def put(self, detail_type: str, detail_json: str) -> None:
        if self.clock is not None:
            self.clock.advance(self.delay)
        if self.failure is not None:
            raise self.failure
        self.entries.append((detail_type, detail_json))

    @property
    def details(self) -> list[dict[str, Any]]:
        """Each entry's ``Detail``, parsed."""
        return [json.loads(detail) for _, detail in self.entries]


class Context:
    """A Lambda context whose remaining time is fixed (the receiver reads it once, at the start)."""

    def __init__(self, remaining_ms: int) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


ARCHIVE_FAILED = ArchiveFailed("S3 PutObject failed (InternalError)")
FORWARD_FAILED = ForwardFailed("PutEvents failed (ThrottlingException)")


class Replays:
    """Replay protection in memory: the delivery (key, id) that first brought each body digest."""

    def __init__(self) -> None:
        self.claims: dict[str, tuple[str, str]] = {}
        self.fail = False

    def claim(self, digest: str, *, key: str, delivery_id: str) -> Claim:
        if self.fail:
            raise DeduplicationUnavailable("replay record failed (InternalServerError)")
        first_key, first_id = self.claims.setdefault(digest, (key, delivery_id))
        if first_key == key:
            return Claim.NEW
        return Claim.SAME_EVENT if first_id == delivery_id else Claim.REPLAY
