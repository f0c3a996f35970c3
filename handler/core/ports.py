"""The ports through which the receiver's flow talks to the outside, sans I/O.

Each is a small :class:`~typing.Protocol`: ``handler.aws`` implements them with boto3 and Powertools,
and the tests with in-memory fakes. Adding a target (SQS, a second bus, Step Functions) is one more
:class:`Target` adapter and one line of wiring in ``handler.app``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from enum import StrEnum
from typing import Any, Protocol

# Seconds, from time.time (wall clock: archive keys) or time.monotonic (budgets).
Clock = Callable[[], float]


class Secrets(Protocol):
    """The webhook secrets: one, or two during a rotation."""

    def current(self) -> tuple[bytes, ...]:
        """The secrets to verify with (cached). Raises :class:`~handler.core.outcomes.SecretUnavailable`."""
        ...

    def refreshed(self) -> tuple[bytes, ...] | None:
        """A fresh read after a signature mismatch (a rotation?), or None when not allowed yet."""
        ...


class Status(StrEnum):
    """What became of a delivery: the receipt's ``status`` is ``accepted`` or ``duplicate``."""

    ACCEPTED = "accepted"  # handed off now
    DUPLICATE = "duplicate"  # handed off before: nothing done again
    UNRECORDED = "unrecorded"  # handed off now, but the record that says so failed (answered accepted)


class Deadline(Protocol):
    """When the current invocation ends: the Lambda context, or a request's budget outside Lambda."""

    def get_remaining_time_in_millis(self) -> int: ...


class Once(Protocol):
    """Deduplication: run ``work`` at most once per delivery id."""

    def once(self, delivery_id: str, work: Callable[[], None], *, deadline: Deadline) -> Status:
        """``ACCEPTED`` after running ``work``, ``DUPLICATE`` without running it, ``UNRECORDED`` when
        ``work`` ran but could not be recorded. Raises :class:`~handler.core.outcomes.InProgress`
        while another invocation runs it, ``DeduplicationUnavailable``, or whatever ``work`` raised
        (then nothing is recorded, so a redelivery runs it again)."""
        ...


class Archive(Protocol):
    """Where the exact bytes of every verified delivery are kept (S3)."""

    bucket: str

    def store(self, key: str, body: bytes, *, content_type: str, metadata: Mapping[str, str]) -> None:
        """Raises :class:`~handler.core.outcomes.ArchiveFailed` (or ``OutOfTime``)."""
        ...


class PayloadStore(Protocol):
    """The claim check: where a payload too large for an entry is put for consumers to fetch."""

    bucket: str

    def put(self, key: str, payload: bytes) -> None:
        """Raises :class:`~handler.core.outcomes.ArchiveFailed` (or ``OutOfTime``)."""
        ...


class Target(Protocol):
    """Where an accepted delivery is sent, as one entry of the event contract (``handler.core.envelope``)."""

    name: str  # in traces

    def put(self, detail_type: str, detail_json: str) -> None:
        """Raises an :class:`~handler.core.outcomes.Unavailable` (``ForwardFailed``, ``OutOfTime``)."""
        ...


class Telemetry(Protocol):
    """Log lines that can carry metrics (counts, with dimensions), and trace spans."""

    def bind(self, **keys: Any) -> None:
        """Add ``keys`` to every following line of this request."""
        ...

    def unbind(self, *names: str) -> None: ...

    def log(
        self,
        level: str,
        message: str,
        *,
        metrics: Sequence[str] | Mapping[str, int] = (),
        dimensions: Mapping[str, str] | None = None,
        **fields: Any,
    ) -> None:
        """One line at ``level`` (``info``, ``warning``, ``error``); it also counts each of ``metrics``
        (once each, or by the value a mapping gives)."""
        ...

    def unexpected(
        self,
        exc: BaseException,
        message: str,
        *,
        metrics: Sequence[str] = (),
        dimensions: Mapping[str, str] | None = None,
    ) -> None:
        """A bug: logged with its type and code locations only (its text may quote a payload)."""
        ...

    def span(self, name: str) -> AbstractContextManager[None]: ...
