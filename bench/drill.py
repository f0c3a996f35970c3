"""An outage drill: the redelivery function recovering a simulated outage, in both modes, on a virtual clock.

``make drill`` (or ``.venv/bin/python -m bench.drill [--failed N] [--cold] ...``). The scenario
(:class:`Scenario`) is a day of deliveries to three hooks, of which those made during a two-hour outage
failed. The redelivery function's own loop (:func:`handler.core.recovery.run`), GitHub client
(:class:`GitHubDeliveries`) and state encoding (:mod:`handler.aws.redelivery_state`) then run every five
virtual minutes against the GitHub stand-in on loopback, which enforces GitHub's documented rate limits
on the same virtual clock, until every failed delivery is recovered and a run finds nothing left to do.
Only time is simulated: the requests are real HTTP. The receiver is its deduplication and the bus, the
in-memory fakes of the tests.

It prints the scenario, then a table for both modes, and exits 1 when a delivery was put on the bus
twice, redelivered past the cap, or not recovered, so that a change that breaks either shows.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, TextIO

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from handler.aws.redelivery_state import decode, encode
from handler.core.delivery import delivery_key
from handler.core.handoff import Handoff
from handler.core.hooks import Hook
from handler.core.ports import Recovery, StateConflict, Status
from handler.core.pull import PullRecovery
from handler.core.recovery import Mode, RunSummary, run
from handler.core.redelivery import HookState, Policy
from handler.core.settings import DEFAULT_REDELIVERY_MAX_PAGES
from handler.github.auth import Credentials
from handler.github.deliveries import GitHubDeliveries
from handler.redelivery import SAFETY_MARGIN_SECONDS
from tests.fakes import Archive, Clock, Once, Target
from tests.redelivery.github_standin import Delivery, GitHubStandIn

HOUR = 3600.0
TOKEN = "ghp_drill0token0do0not0use00000000000000"  # noqa: S105 (only the stand-in ever sees it)
APP_ID = "424242"
# A repository and an organization hook share the token's limits, as on GitHub; the App's hook has its own.
HOOKS = ("repos/octo-org/hello-world/hooks/42", "orgs/octo-org/hooks/7", "app")
RUN_SECONDS = 120.0  # template.yaml: the redelivery function's timeout
MAX_ENTRY_BYTES = 256 * 1024  # EventBridge's entry limit


@dataclass(frozen=True)
class Latency:
    """Virtual seconds each GitHub request takes (GitHub answers at its start), and one pull hand-off
    (S3, the bus, the deduplication table)."""

    page: float = 0.4
    record: float = 0.3
    post: float = 0.3
    handoff: float = 0.1
    save: float = 0.02  # one conditional PutItem of the state


@dataclass(frozen=True)
class Scenario:
    hooks: tuple[str, ...] = HOOKS
    weights: tuple[float, ...] = (0.5, 0.3, 0.2)  # each hook's share of the deliveries
    attempts: int = 20_000  # over `history_hours`, the failed ones included
    failed: int = 2_000  # all during the outage, which ends as the first run starts
    accepted_share: float = 0.1  # of the failed: the receiver handed it off, but GitHub recorded a timeout
    unanswered_share: float = 0.2  # of the failed: no answer, never handed off; the rest were answered 503
    lost_share: float = 0.0  # of the POSTs: the connection drops before GitHub acts (the client sees a failure)
    history_hours: float = 24.0
    outage_hours: float = 2.0
    live: bool = True  # deliveries keep arriving at the same rate during the recovery (and succeed)
    per_hour: int = 5000  # GitHub's primary limit, per credential
    posts_per_minute: int = 80  # GitHub's secondary limits on content-creating requests
    posts_per_hour: int = 500
    schedule_seconds: float = 300.0  # RedeliverySchedule
    warm: bool = True  # runs share the client's rate-limit blocks (handler.redelivery._BLOCKED): a warm container
    max_days: float = 7.0
    stall_hours: float = 12.0  # ends early when no recovery was asked for or made for this long
    max_attempts: int = 3  # REDELIVERY_MAX_ATTEMPTS
    max_pages: int = DEFAULT_REDELIVERY_MAX_PAGES
    latency: Latency = field(default_factory=Latency)
    seed: int = 1


@dataclass
class Result:
    mode: Mode
    failed: int
    recovered: int = 0
    runs: int = 0  # until a run found nothing to do, or it stalled, or the cap
    runs_to_recover: int | None = None
    hours: float | None = None  # virtual hours from the first run's start to the last failed delivery's recovery
    requests: Counter[str] = field(default_factory=Counter)  # page, record, post
    limited: int = 0  # 403 and 429 answers
    lost: int = 0  # POSTs lost before GitHub acted
    twice: int = 0  # deliveries put on the bus more than once
    never: int = 0  # deliveries never put on the bus
    past_cap: int = 0  # deliveries redelivered more often than the cap
    gave_up: int = 0  # RedeliveryGaveUp: given up at the cap
    again: int = 0  # deliveries recovered more than once (redelivered, or their record read, again)
    stops: Counter[str] = field(default_factory=Counter)  # why hooks stopped early, over all runs
    not_checked_alarm: float | None = None  # virtual hours at which RedeliveryHooksNotCheckedAlarm would fire
    backlog_alarm: float | None = None  # same for RedeliveryBacklogAlarm
    state_saves: int = 0
    state_bytes: int = 0  # the largest state item seen after a run
    errors: list[str] = field(default_factory=list)  # hooks not checked for an error, unexpected exceptions
    quiet: bool = False  # a run found nothing left to do
    stalled: bool = False  # ended after stall_hours without progress
    real_seconds: float = 0.0

    @property
    def problems(self) -> list[str]:
        found = []
        if self.twice:
            found.append(f"{self.mode}: {self.twice} deliveries put on the bus twice")
        if self.past_cap:
            found.append(f"{self.mode}: {self.past_cap} deliveries redelivered past the cap")
        if self.recovered < self.failed or not self.quiet:
            found.append(f"{self.mode}: not finished in {self.runs} runs ({self.recovered} of {self.failed} recovered)")
        if self.never:
            found.append(f"{self.mode}: {self.never} deliveries never put on the bus")
        found.extend(f"{self.mode}: {error}" for error in self.errors[:5])
        return found


# The receiver, GitHub, the state table -----------------------------------------------------------


class _NoDeadline:
    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def hook_id(spec: str) -> str:
    """The ``X-GitHub-Hook-ID`` the drill's GitHub sends for a hook (the App's: "app")."""
    return spec.rsplit("/", 1)[-1]


class Receiver:
    """The receiver's deduplication (which pull recovery shares, as in the stack) and the bus: a
    delivery seen again is a duplicate, answered 2xx and not put on the bus again."""

    def __init__(self, clock: Clock, latency: Latency) -> None:
        self.once = Once()
        self.bus = Target("bus")
        # A pull hand-off spends the function's time (charged to the archive); a redelivery's trip
        # through the receiver spends GitHub's, not the function's.
        self.archive = Archive(clock=clock, delay=latency.handoff)

    def receive(self, guid: str, event: str, spec: str) -> Status:
        """Under the receiver's own key (the hook id GitHub sends, and the guid), as pull recovery uses."""

        def work() -> None:
            self.bus.put(event, json.dumps({"delivery_id": guid}))

        return self.once.once(delivery_key(hook_id(spec), guid), work, deadline=_NoDeadline())

    def puts(self) -> Counter[str]:
        """Bus entries per delivery id."""
        return Counter(detail["delivery_id"] for detail in self.bus.details)


class DrillStandIn(GitHubStandIn):
    """The stand-in, with each request's latency on the virtual clock, requests counted by kind, and
    each redelivery sent through the receiver (whose answer, accepted or duplicate, is a 2xx: the
    redelivery succeeds). Records and redeliveries are found by id in a dict: the stand-in's own
    lookups scan the hook's whole list, too slow for a day of deliveries (no refusals are scripted)."""

    def __init__(self, *, latency: Latency, receiver: Receiver, lost_share: float, seed: int, **options: Any) -> None:
        super().__init__(**options)
        self.latency = latency
        self.receiver = receiver
        self.lost_share = lost_share
        self._lost = random.Random(seed)  # noqa: S311 (a scenario, not a secret)
        # A dropped connection is how a POST is lost: the server closes it without a word (or a traceback).
        self._server.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        self.kinds: Counter[str] = Counter()
        self.limited = 0
        self.lost = 0
        self.redelivered_at: dict[str, float] = {}  # guid -> its first redelivery, on the virtual clock
        self.redeliveries: Counter[str] = Counter()  # guid -> redeliveries made
        self.reads: Counter[str] = Counter()  # guid -> records read
        self._by_id: dict[int, Delivery] = {}
        self._specs: dict[int, str] = {}  # attempt id -> its hook's spec

    def add(self, spec: str, status_code: int, *, guid: str, at: float, payload: dict[str, Any] | None) -> None:
        """An attempt, oldest first; with ``payload``, GitHub kept its request (what pull recovery reads)."""
        headers = None
        if payload is not None:
            headers = {
                "X-GitHub-Delivery": guid,
                "X-GitHub-Event": "push",
                "X-GitHub-Hook-ID": hook_id(spec),
                "Content-Type": "application/json",
                "User-Agent": "GitHub-Hookshot/drill",
            }
        delivery = self.deliver(spec, status_code, guid=guid, at=at, request_headers=headers, payload=payload)
        self._by_id[delivery.id] = delivery
        self._specs[delivery.id] = spec

    def answer(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes = b""
    ) -> tuple[int, dict[str, str], Any]:
        path = target.split("?", 1)[0]
        kind = "post" if method == "POST" else "page" if path.endswith("/deliveries") else "record"
        if kind == "post" and self.lost_share and self._lost.random() < self.lost_share:
            self.lost += 1
            self.clock.advance(getattr(self.latency, kind))
            raise ConnectionAbortedError("the POST was lost before GitHub acted on it")
        answer = super().answer(method, target, headers, body)
        self.kinds[kind] += 1
        self.limited += answer[0] in (403, 429)
        self.clock.advance(getattr(self.latency, kind))  # the client waits this long for the answer
        return answer

    def _record(self, hook_path: str, delivery_id: int) -> tuple[int, dict[str, str], Any]:
        delivery = self._by_id.get(delivery_id)
        if delivery is None:
            return 404, {}, {"message": "Not Found"}
        self.reads[delivery.guid] += 1
        return 200, {}, delivery.record()

    def _redeliver(self, hook_path: str, delivery_id: int) -> tuple[int, dict[str, str], Any]:
        original = self._by_id.get(delivery_id)
        if original is None:
            return 404, {}, {"message": "Not Found"}
        self.receiver.receive(original.guid, original.event, self._specs[original.id])
        self.redelivered_at.setdefault(original.guid, self.clock())
        self.redeliveries[original.guid] += 1
        with self._lock:
            attempt = replace(original, id=next(self._ids), delivered_at=self.now(), redelivery=True, status_code=200)
            attempt.status = "OK"
            self.hooks[hook_path].append(attempt)
            self._by_id[attempt.id] = attempt
            self._specs[attempt.id] = self._specs[original.id]
        return 202, {}, {}


class TableStore:
    """The state table in memory: each hook's items encoded and decoded as the deployed store does
    (:mod:`handler.aws.redelivery_state`: its window, its shards and their bound), and saved only over
    the version they were loaded at, as its conditional transaction does."""

    def __init__(self, clock: Clock, lookback_seconds: float, latency: float) -> None:
        self.items: dict[str, tuple[dict[str, Any], dict[str, Any], int]] = {}  # hook -> main, shards, version
        self.clock, self.lookback, self.latency = clock, lookback_seconds, latency
        self.saves = 0

    def load(self, hook: Hook) -> HookState:
        if hook.spec not in self.items:
            return HookState()
        main, shards, version = self.items[hook.spec]
        state = decode(main, list(shards.values()))
        state.version = version
        return state

    def save(self, hook: Hook, state: HookState) -> None:
        version = self.items[hook.spec][2] if hook.spec in self.items else 0
        if version != state.version:
            raise StateConflict(f"another run saved the state of {hook.spec} first")
        main, shards = encode(hook, state, now=self.clock(), lookback=self.lookback)  # StateUnavailable when full
        self.items[hook.spec] = (main, shards, version + 1)
        self.saves += 1
        self.clock.advance(self.latency)
        state.version += 1
        state.repaired = []

    def largest(self) -> int:
        """Bytes of the largest item, as JSON (about what DynamoDB counts against its 400 KB)."""
        items = [item for main, shards, _ in self.items.values() for item in (main, *shards.values())]
        return max((len(json.dumps(item)) for item in items), default=0)


class Telemetry:
    """The loop's telemetry, reduced to what the drill checks: hooks not checked for an error, and
    unexpected exceptions."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.gave_up = 0  # RedeliveryGaveUp

    def bind(self, **keys: Any) -> None:
        pass

    def unbind(self, *names: str) -> None:
        pass

    def log(
        self,
        level: str,
        message: str,
        *,
        metrics: Sequence[str] | Mapping[str, int] = (),
        dimensions: Mapping[str, str] | None = None,
        **fields: Any,
    ) -> None:
        self.gave_up += "RedeliveryGaveUp" in metrics
        if message == "hook not checked":
            self.errors.append(f"hook not checked: {fields.get('hook')}: {fields.get('detail')}")

    def unexpected(
        self,
        exc: BaseException,
        message: str,
        *,
        metrics: Sequence[str] = (),
        dimensions: Mapping[str, str] | None = None,
        **fields: Any,
    ) -> None:
        self.errors.append(f"{message}: {type(exc).__name__}: {exc}")

    @contextmanager
    def span(self, name: str) -> Iterator[None]:
        yield


class CountedRecovery:
    """Pull recovery (``inner``: each run's own), noting when each delivery was first handed off or
    found already handed off."""

    def __init__(self, clock: Clock) -> None:
        self.inner: Recovery | None = None
        self.clock = clock
        self.recovered_at: dict[str, float] = {}

    def room(self) -> None:
        assert self.inner is not None
        self.inner.room()

    def recover(self, record: Mapping[str, Any]) -> Status:
        assert self.inner is not None
        status = self.inner.recover(record)
        self.recovered_at.setdefault(str(record["guid"]), self.clock())
        return status


# The drill ---------------------------------------------------------------------------------------


class _Drill:
    """One mode on one scenario: GitHub, the receiver and the state table, and the runs' history."""

    def __init__(self, scenario: Scenario, mode: Mode, key: rsa.RSAPrivateKey) -> None:
        self.scenario, self.mode = scenario, mode
        self.pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        ).decode()
        public = key.public_key()
        self.rng = random.Random(scenario.seed)  # noqa: S311 (a scenario, not a secret)
        self.clock = Clock()
        self.start = self.clock()
        self.receiver = Receiver(self.clock, scenario.latency)
        self.github = DrillStandIn(
            latency=scenario.latency,
            receiver=self.receiver,
            lost_share=scenario.lost_share,
            seed=scenario.seed,
            token=TOKEN,
            app_id=APP_ID,
            app_public_key=public,
            clock=self.clock,
            dates_from_clock=True,
        )
        self.github.enforce_rate_limits(
            per_hour=scenario.per_hour,
            posts_per_minute=scenario.posts_per_minute,
            posts_per_hour=scenario.posts_per_hour,
        )
        self.hooks = [Hook.parse(spec) for spec in scenario.hooks]
        self.policy = Policy(max_attempts=scenario.max_attempts)
        self.store = TableStore(self.clock, self.policy.lookback_seconds, scenario.latency.save)
        self.telemetry = Telemetry()
        self.blocked: dict[str, tuple[float, str]] = {}  # the warm container's rate-limit blocks
        self.counted = CountedRecovery(self.clock) if mode is Mode.PULL else None
        self.failed: set[str] = set()
        self.guids: list[str] = []  # every delivery, live ones included
        self.live_every = scenario.history_hours * HOUR / scenario.attempts
        self.next_live = self.start
        self.series: list[tuple[float, int, int]] = []  # each run: its start, HooksNotChecked, RedeliveryBacklog

    def simulate(self) -> Result:
        began = time.monotonic()
        result = Result(self.mode, self.scenario.failed)
        progress, progress_at = 0, self.start  # deliveries recovered, and when a recovery was last asked or made
        with self.github:
            self._fill()
            for index in range(int(self.scenario.max_days * 24 * HOUR / self.scenario.schedule_seconds)):
                before = Counter(self.github.kinds)
                summary = self._run(self.start + index * self.scenario.schedule_seconds)
                result.runs = index + 1
                result.stops.update(counts["stopped"] for counts in summary.hooks.values() if counts.get("stopped"))
                result.state_bytes = max(result.state_bytes, self.store.largest())
                recovered_at = self.counted.recovered_at if self.counted is not None else self.github.redelivered_at
                done = [recovered_at[guid] for guid in self.failed if guid in recovered_at]
                result.recovered = len(done)
                if result.runs_to_recover is None and result.recovered == len(self.failed):
                    result.runs_to_recover = index + 1
                    result.hours = (max(done, default=self.start) - self.start) / HOUR
                spent = Counter(self.github.kinds)
                spent.subtract(before)
                if result.runs_to_recover is not None and _quiet(summary, spent):
                    result.quiet = True
                    break
                if spent["post"] or spent["record"] or len(done) > progress:
                    progress, progress_at = len(done), self.clock()
                elif self.clock() - progress_at > self.scenario.stall_hours * HOUR:
                    result.stalled = True
                    break
        result.requests = Counter(self.github.kinds)
        result.limited = self.github.limited
        result.lost = self.github.lost
        puts = self.receiver.puts()
        result.twice = sum(1 for count in puts.values() if count > 1)
        result.never = sum(1 for guid in self.guids if puts[guid] == 0)
        result.past_cap = sum(1 for count in self.github.redeliveries.values() if count > self.scenario.max_attempts)
        again = self.github.redeliveries + self.github.reads
        result.again = sum(1 for count in again.values() if count > 1)
        result.not_checked_alarm, result.backlog_alarm = self._alarms()
        result.state_saves = self.store.saves
        result.gave_up = self.telemetry.gave_up
        result.errors = self.telemetry.errors
        result.real_seconds = time.monotonic() - began
        return result

    def _fill(self) -> None:
        """The day before the first run: successes, then the outage's failures, in its last hours."""
        scenario, rng = self.scenario, self.rng
        outage = self.start - scenario.outage_hours * HOUR
        history = self.start - scenario.history_hours * HOUR
        planned = [(rng.uniform(history, outage), False) for _ in range(scenario.attempts - scenario.failed)]
        planned += [(rng.uniform(outage, self.start), True) for _ in range(scenario.failed)]
        for at, fails in sorted(planned):
            if not fails:
                self._deliver(at)
                continue
            guid = self._guid()
            self.guids.append(guid)
            self.failed.add(guid)
            draw = rng.random()
            status = 0 if draw < scenario.accepted_share + scenario.unanswered_share else 503
            spec = self._spec()
            if draw < scenario.accepted_share:  # handed off, but the 202 came after GitHub's 10 s
                self.receiver.receive(guid, "push", spec)
            payload = {"ref": "refs/heads/main", "after": f"{rng.getrandbits(160):040x}", "repository": {"id": 1}}
            self.github.add(spec, status, guid=guid, at=at, payload=payload)

    def _deliver(self, at: float) -> None:
        """A delivery the receiver accepted at once."""
        guid = self._guid()
        self.guids.append(guid)
        spec = self._spec()
        self.github.add(spec, 200, guid=guid, at=at, payload=None)
        self.receiver.receive(guid, "push", spec)

    def _run(self, run_start: float) -> RunSummary:
        """One scheduled invocation: a new client and credentials (a warm container keeps the blocks)."""
        while self.scenario.live and self.next_live <= run_start:
            self._deliver(self.next_live)
            self.next_live += self.live_every
        clock = self.clock
        clock.now = max(clock.now, run_start)

        def time_left() -> float:
            return run_start + RUN_SECONDS - SAFETY_MARGIN_SECONDS - clock()

        pem = self.pem
        api = GitHubDeliveries(
            api_url=self.github.url,
            credentials=Credentials(token=lambda: TOKEN, app_id=APP_ID, private_key=lambda: pem, clock=clock),
            time_left=time_left,
            sleep=clock.advance,
            clock=clock,
            blocked=self.blocked if self.scenario.warm else None,
        )
        if self.counted is not None:
            handoff = Handoff(
                archive=self.receiver.archive, targets=[self.receiver.bus], max_entry_bytes=MAX_ENTRY_BYTES
            )
            self.counted.inner = PullRecovery(
                handoff=handoff, once=self.receiver.once, time_left=time_left, clock=clock
            )
        summary = run(
            self.hooks,
            api=api,
            store=self.store,
            policy=self.policy,
            telemetry=self.telemetry,
            mode=self.mode,
            recovery=self.counted,
            clock=clock,
            max_pages=self.scenario.max_pages,
        )
        self.series.append((run_start, summary.not_checked, summary.backlog))
        return summary

    def _alarms(self) -> tuple[float | None, float | None]:
        """When (virtual hours) the two redelivery alarms of template.yaml would first fire, if ever:
        HooksNotChecked >= 1 in 2 of 3 five-minute periods; RedeliveryBacklog's minimum > 0 in 3
        hours in a row (periods aligned on the epoch, as CloudWatch's are)."""
        not_checked: dict[int, int] = {}
        backlog: dict[int, int] = {}
        for at, count, pending in self.series:
            period, hour = int(at // 300), int(at // HOUR)
            not_checked[period] = not_checked.get(period, 0) + count
            backlog[hour] = min(backlog.get(hour, pending), pending)
        first_not_checked = next(
            (p for p in sorted(not_checked) if sum(not_checked.get(p - k, 0) >= 1 for k in range(3)) >= 2), None
        )
        first_backlog = next((h for h in sorted(backlog) if all(backlog.get(h - k, 0) > 0 for k in range(3))), None)

        def hours(end: float | None) -> float | None:
            return None if end is None else (end - self.start) / HOUR

        return (
            hours(None if first_not_checked is None else (first_not_checked + 1) * 300.0),
            hours(None if first_backlog is None else (first_backlog + 1) * HOUR),
        )

    def _guid(self) -> str:
        text = f"{self.rng.getrandbits(128):032x}"
        return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"

    def _spec(self) -> str:
        return self.rng.choices(self.scenario.hooks, self.scenario.weights)[0]


def _quiet(summary: RunSummary, spent: Counter[str]) -> bool:
    """A run that found nothing left to do: every hook listed to its end, nothing pending, nothing asked."""
    return (
        not spent["post"]
        and not spent["record"]
        and summary.backlog == 0
        and summary.not_checked == 0
        and all(counts.get("complete") for counts in summary.hooks.values())
    )


def simulate(scenario: Scenario, mode: Mode) -> Result:
    """One mode, from the end of the outage until a run finds nothing left to do (or it stalls, or
    ``max_days`` pass), with an App key of its own (the stand-in checks JWTs against it)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return _Drill(scenario, mode, key).simulate()


# The report --------------------------------------------------------------------------------------


def _n(value: float | None, digits: int = 0, none: str = "not reached") -> str:
    return none if value is None else f"{value:,.{digits}f}"


def describe(scenario: Scenario) -> str:
    shares = ", ".join(f"{spec} {weight:.0%}" for spec, weight in zip(scenario.hooks, scenario.weights, strict=True))
    token_hooks = " and ".join(spec for spec in scenario.hooks if spec != "app")
    lat = scenario.latency
    live = (
        f"; live traffic goes on at {scenario.attempts / scenario.history_hours:,.0f} deliveries an hour, all accepted"
        if scenario.live
        else ""
    )
    kept = "rate-limit blocks kept between runs (a warm container)" if scenario.warm else "nothing kept (cold starts)"
    lost = f"; {scenario.lost_share:.0%} of POSTs lost before GitHub acts" if scenario.lost_share else ""
    return "\n".join(
        [
            "Outage drill: the redelivery function against the GitHub stand-in, on a virtual clock",
            f"- hooks: {shares} ({token_hooks} share one token's limits; app uses the App's JWT)",
            f"- {scenario.attempts:,} attempts over {scenario.history_hours:g} h; {scenario.failed:,} of them failed "
            f"during a {scenario.outage_hours:g} h outage that ends as the first run starts: "
            f"{scenario.accepted_share:.0%} no answer but handed off by the receiver (GitHub recorded a timeout), "
            f"{scenario.unanswered_share:.0%} no answer, the rest 503",
            f"- the state table starts empty (the first runs list the whole window); redeliveries now succeed{live}",
            f"- GitHub's limits, per credential: {scenario.per_hour:,} requests an hour; POSTs "
            f"{scenario.posts_per_minute} a minute and {scenario.posts_per_hour} an hour (secondary limits){lost}",
            f"- a run every {scenario.schedule_seconds:g} s, {RUN_SECONDS:g} s long (requests stop "
            f"{SAFETY_MARGIN_SECONDS:g} s before its end), a new client each run; {kept}",
            f"- latency model: {lat.page:g} s a page GET, {lat.record:g} s a record GET, {lat.post:g} s a POST, "
            f"{lat.handoff:g} s a pull hand-off, {lat.save:g} s a state save; the client paces POSTs 1 s apart",
            f"- REDELIVERY_MAX_ATTEMPTS {scenario.max_attempts}, REDELIVERY_MAX_PAGES {scenario.max_pages}, look-back "
            f"72 h, the state table's encoding; ends after a run with nothing to do, "
            f"{scenario.stall_hours:g} h without progress, or {scenario.max_days:g} days",
        ]
    )


ROWS: list[tuple[str, Callable[[Result], str]]] = [
    ("runs until every failed delivery was recovered", lambda r: _n(r.runs_to_recover)),
    ("virtual hours until every failed delivery was recovered", lambda r: _n(r.hours, 2)),
    ("runs in all (until one found nothing to do)", lambda r: _n(r.runs) + _end(r)),
    ("GitHub requests: GET pages", lambda r: _n(r.requests["page"])),
    ("GitHub requests: GET records", lambda r: _n(r.requests["record"])),
    ("GitHub requests: POST redeliveries", lambda r: _n(r.requests["post"]) + _lost(r)),
    ("rate-limit answers (403/429)", lambda r: _n(r.limited)),
    ("hooks stopped early: time / pages / rate limit / network", lambda r: " / ".join(_n(r.stops[s]) for s in STOPS)),
    ("RedeliveryHooksNotCheckedAlarm fires at (h)", lambda r: _n(r.not_checked_alarm, 2, "never")),
    ("RedeliveryBacklogAlarm fires at (h)", lambda r: _n(r.backlog_alarm, 2, "never")),
    ("state saves / largest state item (KB)", lambda r: f"{r.state_saves:,} / {r.state_bytes / 1024:,.1f}"),
    ("recovered / failed", lambda r: f"{r.recovered:,} / {r.failed:,}"),
    ("put on the bus twice (must be 0)", lambda r: _n(r.twice)),
    ("redelivered past the cap (must be 0)", lambda r: _n(r.past_cap)),
    ("recovered more than once (redelivered or read again)", lambda r: _n(r.again)),
    ("given up at the cap (RedeliveryGaveUp)", lambda r: _n(r.gave_up)),
    ("real seconds", lambda r: _n(r.real_seconds, 1)),
]
STOPS = ("time", "pages", "rate_limit", "network")


def _end(result: Result) -> str:
    return "" if result.quiet else " (stalled)" if result.stalled else " (cap)"


def _lost(result: Result) -> str:
    return f" (+{result.lost:,} lost)" if result.lost else ""


def render(scenario: Scenario, results: Sequence[Result]) -> str:
    table = [f"| figure | {' | '.join(str(r.mode) for r in results)} |", "|---|" + "--:|" * len(results)]
    table += [f"| {name} | {' | '.join(cell(r) for r in results)} |" for name, cell in ROWS]
    return describe(scenario) + "\n\n" + "\n".join(table)


@dataclass
class Report:
    results: dict[Mode, Result]
    text: str
    problems: list[str]


def drill(scenario: Scenario, out: TextIO | None = None, *, parallel: bool = False) -> Report:
    """Both modes on ``scenario``, the report printed to ``out`` when given. ``parallel``: each mode in
    its own process (the stand-in's threads share one interpreter's lock otherwise)."""
    began = time.monotonic()
    modes = (Mode.REDELIVER, Mode.PULL)
    if parallel:
        with ProcessPoolExecutor(len(modes), mp_context=multiprocessing.get_context("spawn")) as pool:
            results = dict(zip(modes, pool.map(simulate, [scenario] * len(modes), modes), strict=True))
    else:
        results = {mode: simulate(scenario, mode) for mode in modes}
    problems = [problem for result in results.values() for problem in result.problems]
    text = render(scenario, list(results.values()))
    text += f"\n\nThe drill took {time.monotonic() - began:.1f} s of real time.\n"
    text += "\n".join(f"FAILED: {problem}" for problem in problems) or "OK: every failed delivery recovered, none put "
    text += "" if problems else "on the bus twice, none redelivered past the cap."
    if out is not None:
        print(text, file=out, flush=True)
    return Report(results, text, problems)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.drill", description="An outage drill, in both modes.")
    parser.add_argument("--attempts", type=int, default=Scenario.attempts, help="deliveries over the day")
    parser.add_argument("--failed", type=int, default=Scenario.failed, help="of which failed during the outage")
    parser.add_argument("--seed", type=int, default=Scenario.seed)
    parser.add_argument("--lost", type=float, default=0.0, help="share of POSTs lost before GitHub acts (0-1)")
    parser.add_argument("--cold", action="store_true", help="keep no rate-limit block between runs")
    parser.add_argument("--no-live", action="store_true", help="no new deliveries during the recovery")
    parser.add_argument("--serial", action="store_true", help="one mode after the other, in this process")
    args = parser.parse_args(argv)
    if not 0 < args.failed < args.attempts:
        parser.error("--failed must be at least 1 and less than --attempts")
    scenario = Scenario(
        attempts=args.attempts,
        failed=args.failed,
        seed=args.seed,
        warm=not args.cold,
        live=not args.no_live,
        lost_share=args.lost,
    )
    return 1 if drill(scenario, sys.stdout, parallel=not args.serial).problems else 0


if __name__ == "__main__":
    sys.exit(main())
