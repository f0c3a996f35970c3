"""Which failed deliveries to redeliver, sans I/O: GitHub never retries by itself.

GitHub lists a hook's delivery attempts newest first. Each has an ``id`` (the attempt, what a
redelivery request names), a ``guid`` (the ``X-GitHub-Delivery`` an original and its redeliveries
share), ``delivered_at``, ``redelivery``, ``status`` (``"OK"`` on success) and ``status_code`` (0 when
nothing answered). :func:`decide` groups the attempts seen since the previous run by guid and says,
for each, what to do; :class:`HookState` is what a run remembers for the next one.

>>> attempts = [
...     Attempt(id=3, guid="b", delivered_at=1000.0, redelivery=False, status_code=503, event="push", action=None),
...     Attempt(id=2, guid="a", delivered_at=990.0, redelivery=False, status_code=200, event="push", action=None),
... ]
>>> [(d.guid, d.verdict.value) for d in decide(attempts, HookState(), now=1060.0, policy=Policy())]
[('b', 'redeliver'), ('a', 'succeeded')]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from handler.core.ports import Telemetry

# Answers a retry can fix: our 503 (and any 5xx), API Gateway's 429, a 409 while another attempt was in
# flight (it may have failed since), and no answer at all (a timeout or a connection failure: 0).
# Any other 4xx means the receiver refused the delivery: redelivering it would be refused again.
RETRYABLE_CLIENT_ERRORS = frozenset({408, 409, 429})


class NotAnAttempt(ValueError):
    """An item of the deliveries list lacks what an attempt has (the API changed, or it is not GitHub's)."""


class Verdict(StrEnum):
    SUCCEEDED = "succeeded"  # an attempt was answered 2xx
    REDELIVER = "redeliver"
    REFUSED = "refused"  # answered 4xx: counted and logged, never retried
    CAPPED = "capped"  # failed, but redelivered as often as allowed: given up
    TOO_OLD = "too_old"  # failed, outside the look-back window


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
        """An attempt from one item of ``GET …/deliveries``; raises :class:`NotAnAttempt` if it is not one."""
        try:
            return cls(
                id=int(item["id"]),
                guid=str(item["guid"]),
                delivered_at=datetime.fromisoformat(str(item["delivered_at"]).replace("Z", "+00:00")).timestamp(),
                redelivery=bool(item.get("redelivery", False)),
                status_code=int(item.get("status_code") or 0),
                event=item.get("event") if isinstance(item.get("event"), str) else None,
                action=item.get("action") if isinstance(item.get("action"), str) else None,
            )
        except (KeyError, TypeError, ValueError) as exc:
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
    max_attempts: int = 3  # redeliveries per guid, counting those GitHub already shows


@dataclass
class HookState:
    """What a run remembers for the next: the newest attempt it covered, and the redeliveries it asked
    for per guid (with when the guid was first seen, for the look-back window)."""

    newest_id: int | None = None
    redelivered: dict[str, int] = field(default_factory=dict)
    first_seen: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Decision:
    guid: str
    verdict: Verdict
    attempt: Attempt  # the newest attempt of the guid: the one to redeliver
    redeliveries: int  # redeliveries so far (GitHub's and ours)


def covered(attempt: Attempt, state: HookState) -> bool:
    """True when a previous run already looked at this attempt (and at everything older)."""
    return state.newest_id is not None and attempt.id <= state.newest_id


def by_guid(attempts: Iterable[Attempt]) -> dict[str, list[Attempt]]:
    """The attempts of each guid (an original and its redeliveries), guids in order of first appearance."""
    grouped: dict[str, list[Attempt]] = {}
    for attempt in attempts:
        grouped.setdefault(attempt.guid, []).append(attempt)
    return grouped


def decide(attempts: Iterable[Attempt], state: HookState, *, now: float, policy: Policy) -> list[Decision]:
    """One decision per guid among ``attempts`` (the new ones, newest first), in that order."""
    decisions = []
    for guid, seen in by_guid(attempts).items():
        newest = max(seen, key=lambda a: a.id)
        shown = sum(1 for a in seen if a.redelivery)
        redeliveries = max(shown, state.redelivered.get(guid, 0))
        first_seen = min([a.delivered_at for a in seen] + [state.first_seen.get(guid, float("inf"))])
        if any(a.succeeded for a in seen):
            verdict = Verdict.SUCCEEDED
        elif not newest.retryable:
            verdict = Verdict.REFUSED
        elif now - first_seen > policy.lookback_seconds:
            verdict = Verdict.TOO_OLD
        elif redeliveries >= policy.max_attempts:
            verdict = Verdict.CAPPED
        else:
            verdict = Verdict.REDELIVER
        decisions.append(Decision(guid, verdict, newest, redeliveries))
    return decisions


def record(state: HookState, decision: Decision) -> None:
    """Remember a redelivery asked for ``decision`` (so the cap holds before GitHub lists the attempt)."""
    state.redelivered[decision.guid] = decision.redeliveries + 1
    state.first_seen.setdefault(decision.guid, decision.attempt.delivered_at)


@dataclass
class HookSummary:
    """Counts for one hook in one run."""

    pages: int = 0
    checked: int = 0  # attempts looked at
    failed: int = 0  # guids whose attempts all failed
    redelivered: int = 0
    refused: int = 0
    capped: int = 0
    too_old: int = 0
    complete: bool = True  # False when the run stopped early (rate limit, time): continued next run
    stopped: str | None = None  # why it stopped early

    def count(self, decision: Decision) -> None:
        if decision.verdict is not Verdict.SUCCEEDED:
            self.failed += 1
        if decision.verdict is Verdict.REFUSED:
            self.refused += 1
        elif decision.verdict is Verdict.CAPPED:
            self.capped += 1
        elif decision.verdict is Verdict.TOO_OLD:
            self.too_old += 1


@dataclass(frozen=True, slots=True)
class Hook:
    """A configured hook: ``repos/OWNER/REPO/hooks/ID``, ``orgs/ORG/hooks/ID`` or ``app``."""

    spec: str

    @classmethod
    def parse(cls, spec: str) -> Hook:
        """A hook from its spec; raises ValueError for anything else.

        >>> Hook.parse("repos/octo-org/hello/hooks/42").deliveries_path
        '/repos/octo-org/hello/hooks/42/deliveries'
        >>> Hook.parse("app").attempts_path(7)
        '/app/hook/deliveries/7/attempts'
        """
        parts = spec.strip().strip("/").split("/")
        valid = (
            parts == ["app"]
            or (len(parts) == 5 and parts[0] == "repos" and parts[3] == "hooks" and parts[4].isdigit())
            or (len(parts) == 4 and parts[0] == "orgs" and parts[2] == "hooks" and parts[3].isdigit())
        )
        # "." and ".." are safe characters but not names: the URL would resolve them to another path.
        if not valid or any(part in ("", ".", "..") or not _SAFE.issuperset(part) for part in parts):
            raise ValueError(f"not a hook (repos/OWNER/REPO/hooks/ID, orgs/ORG/hooks/ID or app): {spec[:80]!r}")
        return cls("/".join(parts))

    @property
    def is_app(self) -> bool:
        return self.spec == "app"

    @property
    def deliveries_path(self) -> str:
        return "/app/hook/deliveries" if self.is_app else f"/{self.spec}/deliveries"

    def attempts_path(self, delivery_id: int) -> str:
        return f"{self.deliveries_path}/{delivery_id}/attempts"


_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


def parse_hooks(value: str) -> tuple[Hook, ...]:
    """``REDELIVERY_HOOKS``: comma-separated hooks (blank for none)."""
    return tuple(Hook.parse(item) for item in value.split(",") if item.strip())


@dataclass(frozen=True, slots=True)
class Page:
    """One page of ``GET …/deliveries``: its items, and the URL of the next (older) page if any."""

    items: list[Mapping[str, Any]]
    next_url: str | None


class RunStopped(Exception):
    """The run cannot go on now (a rate limit longer than the time left, or no time left): it stops
    cleanly, and the next scheduled run continues from where this one was."""


class DeliveriesApi(Protocol):
    """GitHub's deliveries endpoints for hooks (``handler.github`` implements it over HTTP)."""

    def first_page(self, hook: Hook) -> Page: ...

    def next_page(self, hook: Hook, url: str) -> Page: ...

    def redeliver(self, hook: Hook, delivery_id: int) -> None:
        """``POST …/deliveries/{id}/attempts`` (GitHub answers 202)."""
        ...


class StateStore(Protocol):
    """Where each hook's :class:`HookState` is kept between runs (a DynamoDB table when deployed)."""

    def load(self, hook: Hook) -> HookState: ...

    def save(self, hook: Hook, state: HookState) -> None: ...


def run_hook(
    hook: Hook,
    *,
    api: DeliveriesApi,
    store: StateStore,
    policy: Policy,
    now: float,
    telemetry: Telemetry,
    dry_run: bool = False,
) -> HookSummary:
    """Look at the attempts since the previous run (newest first, one page when nothing is new) and
    redeliver every guid that failed in a way a retry can fix, within the window and the cap."""
    state = store.load(hook)
    summary = HookSummary()
    new: list[Attempt] = []
    try:
        page: Page | None = api.first_page(hook)
        while page is not None:
            summary.pages += 1
            reached_old = False
            for item in page.items:
                attempt = Attempt.from_api(item)
                if covered(attempt, state) or now - attempt.delivered_at > policy.lookback_seconds:
                    reached_old = True
                    break
                new.append(attempt)
            page = None if reached_old or page.next_url is None else api.next_page(hook, page.next_url)
    except RunStopped as exc:
        summary.complete, summary.stopped = False, str(exc)[:200]
        summary.checked = len(new)
        return summary  # nothing decided on a partial view; the next run reads these pages again
    summary.checked = len(new)
    try:
        for decision in decide(new, state, now=now, policy=policy):
            summary.count(decision)
            fields = {"hook": hook.spec, "guid": decision.guid, "event": decision.attempt.event}
            if decision.verdict is Verdict.REFUSED:
                telemetry.log(
                    "warning",
                    "delivery refused by the receiver: not redelivered",
                    status_code=decision.attempt.status_code,
                    **fields,
                )
            elif decision.verdict is Verdict.CAPPED:
                telemetry.log(
                    "error",
                    "delivery still failing after the last redelivery: given up",
                    redeliveries=decision.redeliveries,
                    **fields,
                )
            elif decision.verdict is Verdict.REDELIVER:
                if not dry_run:
                    try:
                        api.redeliver(hook, decision.attempt.id)
                    except RunStopped as exc:
                        summary.complete, summary.stopped = False, str(exc)[:200]
                        break
                    record(state, decision)
                summary.redelivered += 1
                telemetry.log("info", "redelivery requested", status_code=decision.attempt.status_code, **fields)
        if summary.complete and new:
            state.newest_id = max(attempt.id for attempt in new)
    finally:
        # Also when GitHub refused a request midway (the error goes on up): the redeliveries already
        # asked for must count toward the cap, or the next run, reading the same attempts, asks again.
        if not dry_run:
            store.save(hook, state)
    return summary


class MemoryStateStore:
    """A :class:`StateStore` for one process (the CLI, or a function with no table): every run rescans the window."""

    def __init__(self) -> None:
        self.states: dict[str, HookState] = {}

    def load(self, hook: Hook) -> HookState:
        return self.states.setdefault(hook.spec, HookState())

    def save(self, hook: Hook, state: HookState) -> None:
        self.states[hook.spec] = state
