"""The recovery loop, sans I/O: each hook's listing read page by page, each failed delivery recovered
as it is found, and progress saved as it goes, so that any backlog drains over successive runs.

A run reads a hook's attempts newest first, from the newest down to what a finished listing already
covered (``HookState.newest_id``) or to the look-back window. It acts on each page before reading the
next, and saves where it got to (GitHub's cursor, and the range of ids handled: ``Scan``), so the
next run continues an unfinished listing instead of starting over. Before each recovery it records
the intent (a conditional write): if the state cannot be written, or another run wrote it first,
nothing is asked of GitHub for that hook.

Two modes: ``redeliver`` asks GitHub to redeliver (``POST …/attempts``, a content-creating request);
``pull`` reads the delivery (``GET …/deliveries/{id}``) and hands it to the receiver's pipeline
itself (:class:`~handler.core.ports.Recovery`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any

from handler.core.hooks import Hook
from handler.core.outcomes import InProgress, OutOfTime, Rejected, Unavailable
from handler.core.ports import (
    DeliveriesApi,
    GitHubError,
    Page,
    Recovery,
    Refused,
    RunStopped,
    StateStore,
    StateUnavailable,
    Status,
    Telemetry,
)
from handler.core.redelivery import (
    Attempt,
    GuidState,
    HookState,
    NotAnAttempt,
    Policy,
    Scan,
    Verdict,
    by_guid,
    covered,
    decide,
    handled,
    intend,
    redeliveries,
    stale,
)
from handler.core.settings import DEFAULT_REDELIVERY_MAX_PAGES as DEFAULT_MAX_PAGES

# Why a hook stopped early that does not need anyone: its listing continues next run.
CONTINUED = frozenset({"time", "pages"})


class Mode(StrEnum):
    REDELIVER = "redeliver"  # ask GitHub to redeliver (POST …/attempts)
    PULL = "pull"  # read the delivery through the API and hand it off here


class Unrecoverable(Exception):
    """GitHub's record of a delivery holds no request that can be handed off (no payload)."""


@dataclass
class HookSummary:
    """Counts for one hook in one run."""

    pages: int = 0
    checked: int = 0  # attempts looked at
    malformed: int = 0  # items of the listing that are not attempts: skipped
    failed: int = 0  # failed deliveries (guids) found
    redelivered: int = 0  # redeliveries GitHub accepted (or, in a dry run, would be asked for)
    recovered: int = 0  # pull: handed off now
    already: int = 0  # pull: already handed off (by the receiver, or an earlier run): not sent again
    refused: int = 0  # the receiver refused them (4xx): not recovered
    github_refused: int = 0  # GitHub refused to redeliver or show them (4xx): never asked again
    capped: int = 0
    too_old: int = 0
    backlog: int = 0  # failed deliveries found and not settled at the end of the run
    complete: bool = True  # False when the listing continues next run
    stopped: str | None = None  # why it stopped early: time, pages, rate_limit, network, loop, pipeline
    detail: str | None = None

    @property
    def needs_attention(self) -> bool:
        """Stopped for a reason that is not just a long listing (HooksNotChecked)."""
        return self.stopped is not None and self.stopped not in CONTINUED

    def stop(self, reason: str, detail: str) -> None:
        self.complete, self.stopped, self.detail = False, reason, detail[:200]


@dataclass
class RunSummary:
    """One run over every hook: what the function returns and its metrics say."""

    hooks: dict[str, dict[str, Any]] = field(default_factory=dict)
    checked: int = 0  # HooksChecked: listed and finished (or continuing a long listing)
    not_checked: int = 0  # HooksNotChecked: could not be listed or finished
    backlog: int = 0  # RedeliveryBacklog
    redelivered: int = 0
    recovered: int = 0  # DeliveriesRecovered
    requests: int = 0  # to GitHub, in all

    def as_dict(self) -> dict[str, Any]:
        return {
            "HooksChecked": self.checked,
            "HooksNotChecked": self.not_checked,
            "RedeliveryBacklog": self.backlog,
            "DeliveriesRecovered": self.recovered,
            "redelivered": self.redelivered,
            "requests": self.requests,
            "hooks": self.hooks,
        }


def pages(api: DeliveriesApi, hook: Hook, *, first: Page | None = None, max_pages: int) -> Iterator[Page]:
    """A hook's listing, page by page, newest first; stops (:class:`ListingLoops`) on a next link already
    followed, and after ``max_pages`` pages (:class:`ListingTooLong`)."""
    page = first if first is not None else api.first_page(hook)
    followed: set[str] = set()
    count = 1
    while True:
        yield page
        url = page.next_url
        if url is None:
            return
        if url in followed:
            raise ListingLoops("GitHub's next link repeats one already followed")
        if count >= max_pages:
            raise ListingTooLong(f"more than {max_pages} pages")
        followed.add(url)
        page = api.next_page(hook, url)
        count += 1


class ListingLoops(Exception):
    pass


class ListingTooLong(Exception):
    pass


def run(
    hooks: Sequence[Hook],
    *,
    api: DeliveriesApi,
    store: StateStore,
    policy: Policy,
    telemetry: Telemetry,
    mode: Mode = Mode.REDELIVER,
    recovery: Recovery | None = None,
    clock: Callable[[], float] = time.time,
    max_pages: int = DEFAULT_MAX_PAGES,
    dry_run: bool = False,
    progress: Callable[[str, HookSummary], None] | None = None,
) -> RunSummary:
    """Check each hook once; one hook's failure never stops the others. Logs one line per hook and
    one for the run, whose metrics the alarms watch."""
    summary = RunSummary()
    for hook in hooks:
        try:
            counts = run_hook(
                hook,
                api=api,
                store=store,
                policy=policy,
                telemetry=telemetry,
                mode=mode,
                recovery=recovery,
                clock=clock,
                max_pages=max_pages,
                dry_run=dry_run,
            )
        except Exception as exc:  # anything else (a library): its type only, never its text
            telemetry.unexpected(exc, "hook not checked")
            summary.hooks[hook.spec] = {"error": type(exc).__name__}
            summary.not_checked += 1
            continue
        summary.hooks[hook.spec] = asdict(counts)
        if counts.stopped in ("github", "state"):
            summary.hooks[hook.spec]["error"] = counts.detail
        summary.redelivered += counts.redelivered
        summary.recovered += counts.recovered
        summary.backlog += counts.backlog
        if counts.needs_attention:
            summary.not_checked += 1
        else:
            summary.checked += 1
        if progress is not None:
            progress(hook.spec, counts)
    summary.requests = getattr(api, "requests", 0)
    metrics = {name: value for name, value in summary.as_dict().items() if name[0].isupper()}
    telemetry.log("info", "redelivery run", metrics=metrics, mode=mode.value, hooks=len(hooks))
    return summary


def run_hook(
    hook: Hook,
    *,
    api: DeliveriesApi,
    store: StateStore,
    policy: Policy,
    telemetry: Telemetry,
    mode: Mode = Mode.REDELIVER,
    recovery: Recovery | None = None,
    clock: Callable[[], float] = time.time,
    max_pages: int = DEFAULT_MAX_PAGES,
    dry_run: bool = False,
) -> HookSummary:
    """One hook's run: continue (or start) its listing, recover what failed, save as it goes.

    It never raises for GitHub or the state: ``stopped`` says why the hook stopped (``github``: the
    credential or the hook refused; ``state``: it cannot be read or written), with what was done.
    """
    if mode is Mode.PULL and recovery is None:
        raise ValueError("pull mode needs a recovery pipeline")
    return _HookRun(hook, api, store, policy, telemetry, mode, recovery, clock, max_pages, dry_run).run()


class _HookRun:
    def __init__(
        self,
        hook: Hook,
        api: DeliveriesApi,
        store: StateStore,
        policy: Policy,
        telemetry: Telemetry,
        mode: Mode,
        recovery: Recovery | None,
        clock: Callable[[], float],
        max_pages: int,
        dry_run: bool,
    ) -> None:
        self.hook, self.api, self.store, self.policy = hook, api, store, policy
        self.telemetry, self.mode, self.recovery, self.clock = telemetry, mode, recovery, clock
        self.max_pages, self.dry_run = max_pages, dry_run
        self.state = HookState()
        self.summary = HookSummary()
        self.changed = False

    def run(self) -> HookSummary:
        """Never raises for GitHub or the state: the summary says why the hook stopped, with its counts."""
        try:
            self.state = self.store.load(self.hook)
            self.changed = bool(self.state.repaired)
            for part in self.state.repaired:
                self.telemetry.log(
                    "warning",
                    "redelivery state was corrupt: reset",
                    metrics=["StateReset"],
                    hook=self.hook.spec,
                    part=part,
                )
            try:
                self._list()
            finally:
                self._save()  # what was done before a stop must count (the cap), whatever stopped it
        except RunStopped as exc:
            self.summary.stop(exc.reason, str(exc))
        except (ListingLoops, ListingTooLong) as exc:
            self.summary.stop("loop" if isinstance(exc, ListingLoops) else "pages", str(exc))
        except _PipelineFailed as exc:
            self.summary.stop("pipeline", str(exc))
        except StateUnavailable as exc:
            self.summary.stop("state", str(exc))
        except (GitHubError, PermissionError) as exc:  # messages of ours: safe to show
            self.summary.stop("github", str(exc))
        if not self.summary.complete:  # what it did not get to is still waiting (a rate limit, say)
            awaited = sum(1 for entry in self.state.guids.values() if entry.awaiting and not entry.settled)
            self.summary.backlog = max(self.summary.backlog, awaited)
        self._log()
        return self.summary

    # The listing ---------------------------------------------------------------------------------

    def _list(self) -> None:
        scan = self.state.scan
        first = None
        started = self.clock()
        if scan is not None and scan.next_url:
            try:
                first = self.api.next_page(self.hook, scan.next_url)
            except GitHubError as exc:  # the cursor expired, or GITHUB_API_URL changed: list from the newest
                message = "saved cursor refused: listing again from the newest, skipping what was handled"
                self.telemetry.log("warning", message, hook=self.hook.spec, detail=str(exc)[:200])
                scan.next_url = None
                self.changed = True
        for page in pages(self.api, self.hook, first=first, max_pages=self.max_pages):
            self.summary.pages += 1
            if self._page(page, started):
                break
        self._finish(started)
        self._ask_again()

    def _page(self, page: Page, started: float) -> bool:
        """Act on one page; True when the listing reached what was covered before (or the window)."""
        attempts = []
        for item in page.items:
            try:
                attempts.append(Attempt.from_api(item))
            except NotAnAttempt:
                self.summary.malformed += 1
        now = self.clock()
        end = False
        fresh = []
        for attempt in attempts:
            if covered(attempt, self.state) or now - attempt.delivered_at > self.policy.lookback_seconds:
                end = True  # newest first: everything below this was seen, or is too old
            else:
                fresh.append(attempt)
        scan = self.state.scan
        if scan is None:
            if not fresh:
                return end or page.next_url is None  # nothing new since the last finished listing
            top = max(a.id for a in fresh)
            scan = self.state.scan = Scan(top=top, below=top + 1, next_url=None, started_at=started)
        todo = [a for a in fresh if a.id <= scan.top and not handled(a, self.state)]
        self.summary.checked += len(todo)
        for guid, seen in by_guid(todo).items():
            if guid in scan.decided:  # decided from a newer attempt earlier in this listing
                if any(not a.redelivery for a in seen):
                    scan.decided.discard(guid)  # its original: nothing older follows
                    self.changed = True
                continue
            self._handle(guid, seen)
            if all(a.redelivery for a in seen):
                scan.decided.add(guid)
        below = [a.id for a in attempts if a.id <= scan.top]
        scan.below = min([scan.below, *below])
        scan.next_url = page.next_url
        self.changed = True
        self._save()
        return end

    def _finish(self, started: float) -> None:
        """The listing reached its end: everything up to its newest attempt is covered, and every
        attempt made before it began has been seen (what an asked-for recovery is checked against)."""
        scan = self.state.scan
        if scan is not None:
            self.state.newest_id = max(scan.top, self.state.newest_id or 0)
            self.state.listed_at = max(self.state.listed_at, scan.started_at or started)
            self.state.scan = None
            self.changed = True
        elif any(entry.awaiting for entry in self.state.guids.values()):
            self.state.listed_at = started  # a quiet listing proves no outcome appeared either
            self.changed = True

    def _ask_again(self) -> None:
        """Recoveries asked for whose outcome a later listing does not show were lost: ask again."""
        for guid, entry in list(self.state.guids.items()):
            if not stale(entry, self.state):
                continue
            lost = Attempt(entry.last_id, guid, entry.first_seen, True, 0, None, None)
            self.telemetry.log(
                "warning", "a recovery asked for was never made: asking again", hook=self.hook.spec, guid=guid
            )
            self._handle(guid, [lost], again=True)  # awaited until asked again, given up, or too old

    # One failed delivery -------------------------------------------------------------------------

    def _handle(self, guid: str, seen: list[Attempt], *, again: bool = False) -> None:
        remembered = self.state.guids.get(guid)
        newest = max(seen, key=lambda a: a.id)
        if remembered is not None and remembered.awaiting and newest.id > remembered.last_id:
            remembered.awaiting = False  # its outcome is listed: judged below like any attempt
            self.changed = True
        if again and remembered is not None:  # a lost request: the same attempt again, its earlier ask counted
            verdict = Verdict.CAPPED if remembered.asked >= self.policy.max_attempts else Verdict.REDELIVER
            if self.clock() - remembered.first_seen > self.policy.lookback_seconds:
                verdict = Verdict.TOO_OLD
            if verdict is not Verdict.REDELIVER:
                remembered.awaiting = False  # nothing more will be asked: not stale again next run
                self.changed = True
        else:
            verdict = decide(seen, remembered, now=self.clock(), policy=self.policy, pull=self.mode is Mode.PULL)
        fields: dict[str, Any] = {"hook": self.hook.spec, "guid": guid, "event": newest.event}
        if verdict is Verdict.SUCCEEDED:
            if remembered is not None:  # recovered: nothing left to remember
                del self.state.guids[guid]
                self.changed = True
            return
        self.summary.failed += 1
        if verdict is Verdict.REFUSED:
            self.summary.refused += 1
            self.telemetry.log(
                "warning",
                "delivery refused by the receiver: not recovered",
                metrics=["RedeliveryRefused"],
                refused_by="receiver",
                status_code=newest.status_code,
                **fields,
            )
        elif verdict is Verdict.CAPPED:
            self.summary.capped += 1
            self.telemetry.log(
                "error",
                "delivery still failing after the last recovery: given up",
                metrics=["RedeliveryGaveUp"],
                redeliveries=redeliveries(seen, remembered),
                **fields,
            )
        elif verdict is Verdict.TOO_OLD:
            self.summary.too_old += 1
        elif verdict is Verdict.PENDING:
            self.summary.backlog += 1  # asked for by an earlier (or concurrent) run: its outcome is not listed yet
        elif verdict is Verdict.REDELIVER:
            self._recover(guid, seen, newest, fields)

    def _recover(self, guid: str, seen: list[Attempt], newest: Attempt, fields: dict[str, Any]) -> None:
        if self.dry_run:
            self.summary.redelivered += 1
            self.telemetry.log("info", "would recover", status_code=newest.status_code, **fields)
            return
        self.summary.backlog += 1  # until it is settled below
        if self.mode is Mode.PULL:
            assert self.recovery is not None
            self.recovery.room()  # a hand-off that would not fit in the run is not started (RunStopped)
        before = self.state.guids.get(guid)
        before = replace(before) if before is not None else None
        entry = intend(self.state, guid, seen, now=self.clock())
        self.changed = True
        self._save()  # the write-ahead: if it fails, nothing is asked (StateUnavailable goes up)
        try:
            if self.mode is Mode.PULL:
                self._pull(entry, newest, fields)
            else:
                self._redeliver(newest, fields)
        except (RunStopped, _PipelineFailed) as exc:
            # Known not done (nothing was sent, or the hand-off failed): forget the intent, so the next
            # run asks again. A request that may have been made (its answer was lost) keeps it: a later
            # listing shows its outcome, or that it was never made (then it is asked again, and counts).
            if not (isinstance(exc, RunStopped) and exc.reason == "network"):
                self._forget(guid, before)
            raise  # still in the backlog: found, not settled
        except Refused as exc:
            entry.settled, entry.awaiting = "refused", False
            self.summary.backlog -= 1
            self.summary.github_refused += 1
            self.telemetry.log(
                "warning",
                "GitHub refused to recover the delivery: not asked again",
                metrics=["RedeliveryRefused"],
                refused_by="github",
                status=exc.status,
                detail=str(exc)[:200],
                **fields,
            )

    def _redeliver(self, newest: Attempt, fields: dict[str, Any]) -> None:
        self.api.redeliver(self.hook, newest.id)
        self.summary.redelivered += 1  # its outcome is read next run: still in the backlog
        self.telemetry.log("info", "redelivery requested", status_code=newest.status_code, **fields)

    def _pull(self, entry: GuidState, newest: Attempt, fields: dict[str, Any]) -> None:
        assert self.recovery is not None
        record = self.api.delivery(self.hook, newest.id)
        try:
            status = self.recovery.recover(record)
        except Unrecoverable as exc:  # GitHub kept no payload: GitHub's own redelivery still can
            self.telemetry.log("warning", "delivery cannot be read back: asking GitHub to redeliver", detail=str(exc))
            self._redeliver(newest, fields)
            return
        except InProgress:
            return  # the receiver holds it right now: still awaited, checked again after a later listing
        except OutOfTime as exc:
            raise RunStopped(f"no time left for a hand-off ({exc.detail or exc.code})", reason="time") from None
        except Unavailable as exc:  # the pipeline itself failed: the next deliveries would fail too
            raise _PipelineFailed(f"{exc.code}: {exc.detail or exc.message}"[:200]) from None
        except Rejected as exc:  # the receiver would refuse it too (nested too deeply, say): never retried
            entry.settled, entry.awaiting = "refused", False
            self.changed = True
            self.summary.backlog -= 1
            self.summary.refused += 1
            self.telemetry.log(
                "warning",
                "delivery refused by the receiver: not recovered",
                metrics=["RedeliveryRefused"],
                refused_by="receiver",
                error=exc.code,
                **fields,
            )
            return
        entry.settled, entry.awaiting = "recovered", False
        self.changed = True
        self.summary.backlog -= 1
        if status is Status.DUPLICATE:
            self.summary.already += 1
            self.telemetry.log("info", "delivery already handed off: not sent again", **fields)
        else:
            self.summary.recovered += 1
            self.telemetry.log("info", "delivery recovered through the API", **fields)

    # State and logs ------------------------------------------------------------------------------

    def _forget(self, guid: str, before: GuidState | None) -> None:
        if before is None:
            self.state.guids.pop(guid, None)
        else:
            self.state.guids[guid] = before
        self.changed = True

    def _save(self) -> None:
        if self.dry_run or not self.changed:
            return
        self.store.save(self.hook, self.state)
        self.changed = False

    def _log(self) -> None:
        counts = self.summary
        metrics = {
            "DeliveriesChecked": counts.checked,
            "RedeliveryRequested": counts.redelivered,
            "MalformedAttempts": counts.malformed,
        }
        if counts.stopped in ("loop", "pages"):
            metrics["ListingStopped"] = 1
        self.telemetry.log("info", "hook checked", metrics=metrics, hook=self.hook.spec, **asdict(counts))
        if counts.malformed:
            message = "GitHub listed items that are not attempts: skipped"
            self.telemetry.log("warning", message, hook=self.hook.spec, count=counts.malformed)
        if not counts.complete:
            level = "error" if counts.needs_attention else "info"
            message = "hook not finished" if counts.needs_attention else "hook listing continues next run"
            if counts.stopped in ("github", "state"):
                message = "hook not checked"  # its credential, the hook itself, or its state
            self.telemetry.log(level, message, hook=self.hook.spec, why=counts.stopped, detail=counts.detail)


class _PipelineFailed(Exception):
    """Pull mode: the hand-off failed (the bus, the archive, the table): stop this hook for now."""
