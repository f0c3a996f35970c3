"""Which failed deliveries to recover, sans I/O: GitHub never retries by itself.

GitHub lists a hook's delivery attempts newest first. Each has an ``id`` (the attempt, what a
redelivery request names), a ``guid`` (the ``X-GitHub-Delivery`` an original and its redeliveries
share), ``delivered_at``, ``redelivery``, ``status`` (``"OK"`` on success) and ``status_code`` (0 when
nothing answered). :func:`decide` says what to do with one guid, from the attempts of it just read
and what earlier runs remembered of it (:class:`GuidState`); :class:`HookState` is what a run
remembers for the next, including how far an unfinished listing got (:class:`Scan`).

>>> failed = Attempt(id=3, guid="b", delivered_at=1000.0, redelivery=False, status_code=503, event="push", action=None)
>>> decide([failed], None, now=1060.0, policy=Policy()).value
'redeliver'
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

# Answers a retry can fix: our 503 (and any 5xx), API Gateway's 429, a 409 while another attempt was in
# flight (it may have failed since), and no answer at all (a timeout or a connection failure: 0).
# Any other 4xx means the receiver refused the delivery: redelivering it would be refused again.
RETRYABLE_CLIENT_ERRORS = frozenset({408, 409, 429})
# GitHub lists a redelivery as soon as it has made it. A listing that began this long after a request
# and shows no newer attempt of the guid means the request was lost: it is asked for again (and counts).
LISTED_GRACE_SECONDS = 60.0
TOO_LARGE = 413


class NotAnAttempt(ValueError):
    """An item of the deliveries list lacks what an attempt has (the API changed, or it is not GitHub's)."""


class Verdict(StrEnum):
    SUCCEEDED = "succeeded"  # an attempt was answered 2xx
    REDELIVER = "redeliver"  # failed in a way a retry can fix: recover it now
    REFUSED = "refused"  # the receiver answered 4xx: counted and logged, never retried
    CAPPED = "capped"  # failed, but recovered as often as allowed: given up
    TOO_OLD = "too_old"  # failed, outside the look-back window
    PENDING = "pending"  # a run already acted on this very attempt: its outcome is not listed yet
    SETTLED = "settled"  # GitHub refused its redelivery, or it was recovered through the API: nothing more to do


@dataclass(frozen=True, slots=True)
class Attempt:
    """One delivery attempt, as GitHub's deliveries API lists it."""

    id: int
    guid: str
    delivered_at: float  # epoch seconds
    redelivery: bool
    status_code: int
    event: str | None
    action: str | None

    @classmethod
    def from_api(cls, item: Mapping[str, Any]) -> Attempt:
        """An attempt from one item of ``GET …/deliveries``; raises :class:`NotAnAttempt` if it is not one.

        Strict on the fields a decision rests on: a wrong type is not guessed at (``"false"`` is not False).
        """
        try:
            id_, guid, status_code = item["id"], item["guid"], item["status_code"]
            status_code = 0 if status_code is None else status_code  # null: nothing answered
            redelivery, delivered_at = item.get("redelivery", False), item["delivered_at"]
            if not (type(id_) is int and id_ > 0 and type(status_code) is int and 0 <= status_code <= 999):
                raise TypeError("id and status_code must be integers")
            if not (isinstance(guid, str) and guid and isinstance(redelivery, bool) and isinstance(delivered_at, str)):
                raise TypeError("guid, redelivery or delivered_at has the wrong type")
            when = datetime.fromisoformat(delivered_at.replace("Z", "+00:00"))
            if when.tzinfo is None:
                raise ValueError("delivered_at has no time zone")
            event, action = item.get("event"), item.get("action")
            return cls(
                id=id_,
                guid=guid[:100],
                delivered_at=when.timestamp(),
                redelivery=redelivery,
                status_code=status_code,
                event=event if isinstance(event, str) else None,
                action=action if isinstance(action, str) else None,
            )
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise NotAnAttempt(f"GitHub listed an item that is not a delivery attempt ({type(exc).__name__})") from None

    @property
    def succeeded(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def retryable(self) -> bool:
        return self.status_code == 0 or self.status_code >= 500 or self.status_code in RETRYABLE_CLIENT_ERRORS


@dataclass(frozen=True, slots=True)
class Policy:
    lookback_seconds: float = 72 * 3600  # GitHub allows redelivery for 3 days
    max_attempts: int = 3  # recoveries per guid, counting the redeliveries GitHub already shows


@dataclass(slots=True)
class GuidState:
    """What runs remember of one failed delivery."""

    asked: int = 0  # recoveries asked for (redelivery requests, or reads in pull mode)
    last_id: int = 0  # the attempt last acted on: never asked for twice
    first_seen: float = 0.0  # delivered_at of its oldest attempt seen (the look-back window)
    settled: str | None = None  # "refused" (GitHub refused to redeliver it) or "recovered" (pull)
    asked_at: float = 0.0  # when the last recovery was asked for
    awaiting: bool = False  # asked for, and no newer attempt (its outcome) listed yet


@dataclass(slots=True)
class Scan:
    """An unfinished listing: every attempt with ``below <= id <= top`` has been handled, and
    ``next_url`` (GitHub's cursor) continues with older ones."""

    top: int  # the newest attempt of this listing: covered once the listing ends
    below: int  # the oldest attempt handled so far
    next_url: str | None
    started_at: float = 0.0  # when its first page was read: every attempt made before then is in it
    # Guids decided from a redelivery attempt: their older attempts, further down, are skipped.
    decided: set[str] = field(default_factory=set)


@dataclass(slots=True)
class HookState:
    """What a run remembers for the next. ``version`` makes saves conditional (two runs at once)."""

    newest_id: int | None = None  # every attempt up to this id was handled by a finished listing
    listed_at: float = 0.0  # when the last finished listing began: it shows every attempt made before
    scan: Scan | None = None
    guids: dict[str, GuidState] = field(default_factory=dict)
    version: int = 0  # 0: never saved
    repaired: list[str] = field(default_factory=list)  # what the store reset because it was corrupt


def covered(attempt: Attempt, state: HookState) -> bool:
    """True when a finished listing already handled this attempt (and everything older)."""
    return state.newest_id is not None and attempt.id <= state.newest_id


def handled(attempt: Attempt, state: HookState) -> bool:
    """True when the unfinished listing already handled this attempt."""
    return state.scan is not None and state.scan.below <= attempt.id <= state.scan.top


def by_guid(attempts: Iterable[Attempt]) -> dict[str, list[Attempt]]:
    """The attempts of each guid (an original and its redeliveries), guids in order of first appearance."""
    grouped: dict[str, list[Attempt]] = {}
    for attempt in attempts:
        grouped.setdefault(attempt.guid, []).append(attempt)
    return grouped


def decide(
    seen: Iterable[Attempt], remembered: GuidState | None, *, now: float, policy: Policy, pull: bool = False
) -> Verdict:
    """What to do with one guid, from its attempts just read (the newest of them is its newest).

    ``pull``: a 413 is recoverable too. API Gateway and Lambda refuse payloads over 6 MB, which GitHub
    sends (up to 25 MB): no redelivery can pass, but reading the delivery back through the API can.
    """
    attempts = list(seen)
    newest = max(attempts, key=lambda a: a.id)
    if any(a.succeeded for a in attempts):
        return Verdict.SUCCEEDED
    if remembered is not None and remembered.settled:
        return Verdict.SETTLED
    if remembered is not None and remembered.last_id >= newest.id:
        return Verdict.PENDING  # whatever its age: re-asking is decided from the state (stale), not here
    if not (newest.retryable or (pull and newest.status_code == TOO_LARGE)):
        return Verdict.REFUSED
    if now - first_seen(attempts, remembered) > policy.lookback_seconds:
        return Verdict.TOO_OLD
    if redeliveries(attempts, remembered) >= policy.max_attempts:
        return Verdict.CAPPED
    return Verdict.REDELIVER


def first_seen(seen: Iterable[Attempt], remembered: GuidState | None) -> float:
    """When the guid was first delivered, as far as anyone saw: the look-back window counts from it."""
    times = [a.delivered_at for a in seen]
    if remembered is not None and remembered.first_seen:
        times.append(remembered.first_seen)
    return min(times)


def redeliveries(seen: Iterable[Attempt], remembered: GuidState | None) -> int:
    """How often the guid was recovered so far: ours, or those GitHub shows, whichever is more."""
    shown = sum(1 for a in seen if a.redelivery)
    return max(shown, remembered.asked if remembered else 0)


def intend(state: HookState, guid: str, attempts: Iterable[Attempt], *, now: float) -> GuidState:
    """Record, before asking, that ``guid``'s newest attempt is being recovered (the write-ahead)."""
    seen = list(attempts)
    newest = max(seen, key=lambda a: a.id)
    remembered = state.guids.get(guid)
    asked = redeliveries(seen, remembered) + 1
    entry = GuidState(
        asked=asked, last_id=newest.id, first_seen=first_seen(seen, remembered), asked_at=now, awaiting=True
    )
    state.guids[guid] = entry
    return entry


def stale(entry: GuidState, state: HookState) -> bool:
    """Asked for, but a finished listing that began well after the request shows no outcome: the
    request was lost (its answer timed out, the run was killed before it was sent)."""
    return entry.awaiting and not entry.settled and state.listed_at > entry.asked_at + LISTED_GRACE_SECONDS
