"""The ports through which the receiver's flow talks to the outside, sans I/O.

Each is a small :class:`~typing.Protocol`: ``handler.aws`` implements them with boto3 and Powertools,
and the tests with in-memory fakes. Adding a target (SQS, a second bus, Step Functions) is one more
:class:`Target` adapter and one line of wiring in ``handler.app``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from handler.core.hooks import Hook
    from handler.core.redelivery import HookState

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
    """Deduplication: run ``work`` at most once per delivery key, bound to the body it was accepted with."""

    def once(self, key: str, work: Callable[[], None], *, deadline: Deadline, digest: str | None = None) -> Status:
        """``ACCEPTED`` after running ``work``, ``DUPLICATE`` without running it, ``UNRECORDED`` when
        ``work`` ran but could not be recorded. ``digest`` (of the body) is kept with the record: a
        later one under the same key with another digest raises
        :class:`~handler.core.outcomes.DeliveryConflict` (None on either side: not compared, as for
        pull recovery, which cannot rebuild the exact bytes). Raises ``InProgress`` while another
        invocation runs it, ``DeduplicationUnavailable``, or whatever ``work`` raised (then nothing is
        recorded, so a redelivery runs it again)."""
        ...


class Claim(StrEnum):
    """Who first brought a body (replay protection)."""

    NEW = "new"  # nobody, or this same delivery (the same key): deduplication decides
    SAME_EVENT = "same_event"  # the same delivery id under another hook id: these bytes were handed off
    REPLAY = "replay"  # another delivery id


class Replays(Protocol):
    """Replay protection: which delivery (key and id) first brought each body, within the window."""

    def claim(self, digest: str, *, key: str, delivery_id: str) -> Claim:
        """Raises ``DeduplicationUnavailable``."""
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
        **fields: Any,
    ) -> None:
        """A bug: logged with its type and code locations only (its text may quote a payload), and ``fields``."""
        ...

    def span(self, name: str) -> AbstractContextManager[None]: ...


# Recovery (the redelivery function) ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Page:
    """One page of ``GET …/deliveries`` (newest first): its items, and the URL of the next (older) page."""

    items: list[Any]  # each should be an attempt object; the core skips (and counts) any that is not
    next_url: str | None


class RunStopped(Exception):
    """This hook cannot go on now: it stops cleanly, with its state saved, and the next run continues.

    ``reason`` says why: ``rate_limit`` (a wait longer than the time left), ``time`` (no time left for
    another request) or ``network`` (a request kept failing).
    """

    def __init__(self, message: str, *, reason: str = "time") -> None:
        super().__init__(message)
        self.reason = reason


class GitHubError(Exception):
    """GitHub refused a request for the whole hook (a bad token, no permission, no such hook): the hook
    is not checked this run. The text names the status and GitHub's message, never a credential."""


class Refused(GitHubError):
    """GitHub refused a request about one delivery (404, 410, 422 "cannot be redelivered", …): that
    delivery's verdict, not the hook's. ``status`` is the HTTP status."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class DeliveriesApi(Protocol):
    """GitHub's deliveries endpoints for hooks (``handler.github`` implements them over HTTP).

    Every method raises :class:`RunStopped`, :class:`GitHubError` or (about one delivery) :class:`Refused`.
    """

    def first_page(self, hook: Hook) -> Page: ...

    def next_page(self, hook: Hook, url: str) -> Page:
        """The page at ``url``, a next link GitHub gave (never a URL on another host)."""
        ...

    def redeliver(self, hook: Hook, delivery_id: int) -> None:
        """``POST …/deliveries/{id}/attempts`` (GitHub answers 202)."""
        ...

    def delivery(self, hook: Hook, delivery_id: int) -> Mapping[str, Any]:
        """``GET …/deliveries/{id}``: the attempt with ``request.headers`` and ``request.payload``."""
        ...


class StateUnavailable(Exception):
    """The state store could not be read or written: nothing is asked of GitHub for that hook."""


class StateConflict(StateUnavailable):
    """Another run saved the hook's state since this one loaded it (two runs at once): this one stops."""


class Recovery(Protocol):
    """Pull recovery: hands one delivery read through GitHub's API to the receiver's pipeline."""

    def room(self) -> None:
        """Raises :class:`RunStopped` when a whole hand-off would not fit in the run's time left."""
        ...

    def recover(self, record: Mapping[str, Any]) -> Status:
        """``ACCEPTED`` (handed off now) or ``DUPLICATE`` (the receiver, or an earlier run, already did).
        Raises ``Unrecoverable`` (GitHub kept no usable request), ``InProgress`` or an ``Unavailable``."""
        ...


class StateStore(Protocol):
    """Where each hook's :class:`~handler.core.redelivery.HookState` is kept between runs (a DynamoDB item)."""

    def load(self, hook: Hook) -> HookState:
        """The saved state (a fresh one if none). Raises :class:`StateUnavailable`."""
        ...

    def save(self, hook: Hook, state: HookState) -> None:
        """Save ``state`` only if nobody saved since it was loaded (``state.version``), then bump
        ``state.version``. Raises :class:`StateConflict` or :class:`StateUnavailable`."""
        ...
