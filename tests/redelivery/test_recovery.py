"""The recovery loop (handler.core.recovery) with in-memory fakes: no HTTP, no AWS, no clock."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from handler.core.hooks import Hook
from handler.core.memory_state import MemoryStateStore
from handler.core.outcomes import ForwardFailed, InProgress
from handler.core.ports import GitHubError, RunStopped, StateUnavailable, Status
from handler.core.recovery import HookSummary, Mode, Unrecoverable, run, run_hook
from handler.core.redelivery import HookState, Policy
from tests.fakes import Clock, Telemetry
from tests.redelivery.fake_github import NOW, FakeDeliveries, attempt

HOUR = 3600.0
POLICY = Policy(lookback_seconds=72 * HOUR, max_attempts=3)
HOOK = Hook.parse("repos/octo-org/hello-world/hooks/42")


def once(api: FakeDeliveries, store: Any, telemetry: Telemetry | None = None, **options: Any) -> HookSummary:
    options.setdefault("policy", POLICY)
    return run_hook(HOOK, api=api, store=store, telemetry=telemetry or Telemetry(), clock=lambda: NOW, **options)


def mixed() -> list[Attempt]:
    """Oldest first: a too-old failure, successes, every kind of failure, over several pages."""
    window = POLICY.lookback_seconds
    return [
        attempt(1, "too-old", 503, age=window + 2 * HOUR),
        attempt(2, "ok-1", 200, age=window - HOUR),
        attempt(3, "unavailable", 503, age=10 * HOUR),
        attempt(4, "refused", 401, age=9 * HOUR),
        attempt(5, "recovered", 502, age=8 * HOUR),
        attempt(6, "capped", 503, age=7 * HOUR),
        attempt(7, "capped", 503, age=6 * HOUR, redelivery=True),
        attempt(8, "capped", 503, age=5 * HOUR, redelivery=True),
        attempt(9, "capped", 503, age=4 * HOUR, redelivery=True),
        attempt(10, "recovered", 200, age=3 * HOUR, redelivery=True),
        attempt(11, "unanswered", 0, age=2 * HOUR),
        attempt(12, "ok-2", 200, age=HOUR),
    ]


from handler.core.redelivery import Attempt  # noqa: E402  (used by mixed's annotation)


def test_a_first_run_redelivers_exactly_the_retryable_failures_in_the_window() -> None:
    api, store, telemetry = FakeDeliveries(mixed()), MemoryStateStore(), Telemetry()
    summary = once(api, store, telemetry)
    assert api.redelivered == [11, 3]  # "unanswered" and "unavailable", once each, newest first
    assert api.pages_read == ["first", "10", "7", "4"]  # stops at the too-old attempt
    assert (summary.pages, summary.checked, summary.redelivered, summary.backlog) == (4, 11, 2, 2)
    assert (summary.failed, summary.refused, summary.capped, summary.too_old, summary.complete) == (4, 1, 1, 0, True)
    saved = store.states[HOOK.spec]
    assert (saved.newest_id, saved.scan) == (12, None)
    assert {guid: (g.asked, g.last_id) for guid, g in saved.guids.items()} == {
        "unavailable": (1, 3),
        "unanswered": (1, 11),
    }
    lines = {(line.level, line.message, line.fields.get("guid")) for line in telemetry.lines if "guid" in line.fields}
    assert lines == {
        ("info", "redelivery requested", "unavailable"),
        ("info", "redelivery requested", "unanswered"),
        ("warning", "delivery refused by the receiver: not recovered", "refused"),
        ("error", "delivery still failing after the last recovery: given up", "capped"),
    }
    [refused] = [line for line in telemetry.lines if line.message.startswith("delivery refused")]
    assert refused.metrics == ("RedeliveryRefused",)
    assert refused.fields["status_code"] == 401


def test_a_quiet_second_run_reads_one_page_and_writes_nothing() -> None:
    api, store = FakeDeliveries(mixed()), MemoryStateStore()
    once(api, store)
    api.pages_read.clear()
    summary = once(api, store)
    # The two redeliveries (which succeeded) are new; the page ends at what the first run covered.
    assert api.pages_read == ["first"]
    assert (summary.checked, summary.failed, summary.redelivered, summary.backlog) == (2, 0, 0, 0)
    assert store.states[HOOK.spec].guids == {}  # both recovered: nothing left to remember
    saves = store.saves
    api.pages_read.clear()
    summary = once(api, store)
    assert (api.pages_read, summary.checked, store.saves) == (["first"], 0, saves)  # one GET, no write


def test_a_delivery_that_keeps_failing_is_redelivered_up_to_the_cap_then_given_up_once() -> None:
    api, store = FakeDeliveries([attempt(1, "g", 503)]), MemoryStateStore()
    api.outcomes["g"] = [503] * 10
    gave_up = [once(api, store).capped for _ in range(6)]
    assert len(api.redelivered) == POLICY.max_attempts
    assert gave_up == [0, 0, 0, 1, 0, 0]  # said once, when the last redelivery's failure was seen
    assert [a.redelivery for a in api.attempts] == [False, True, True, True]


def test_a_refused_redelivery_is_that_deliverys_verdict_and_the_hook_goes_on() -> None:
    """GitHub answers 422 (past 3 days, say): logged once, counted, never asked again; the rest is redelivered."""
    attempts = [attempt(n, f"g{n}", 503) for n in range(1, 8)]
    api, store, telemetry = FakeDeliveries(attempts), MemoryStateStore(), Telemetry()
    api.refuse = {5: 422}
    summary = once(api, store, telemetry)
    assert sorted(api.redelivered) == [1, 2, 3, 4, 6, 7]
    assert (summary.redelivered, summary.github_refused, summary.complete) == (6, 1, True)
    [line] = [line for line in telemetry.lines if line.fields.get("refused_by") == "github"]
    assert (line.level, line.metrics, line.fields["guid"], line.fields["status"]) == (
        "warning",
        ("RedeliveryRefused",),
        "g5",
        422,
    )
    # The redeliveries failed again: everything is asked for again except the refused one.
    api.outcomes = {f"g{n}": [503] for n in range(1, 8)}
    for a in list(api.attempts):
        if a.redelivery:
            api.attempts.remove(a)
            api.attempts.append(replace(a, status_code=503))
    api.redelivered.clear()
    telemetry = Telemetry()
    summary = once(api, store, telemetry)
    assert 5 not in api.redelivered
    assert len(api.redelivered) == 6
    assert not [line for line in telemetry.lines if line.fields.get("refused_by") == "github"]


def test_a_backlog_longer_than_one_run_drains_run_by_run_each_page_read_once_each_delivery_once() -> None:
    """30 pages of attempts, 3 pages a run: handled in 10 runs, every page read once, every failure once."""
    attempts = [attempt(n, f"g{n}", 503 if n % 3 == 0 else 200, age=4 * HOUR - n) for n in range(1, 91)]
    api, store = FakeDeliveries(attempts), MemoryStateStore()
    runs = []
    for _ in range(20):
        summary = once(api, store, max_pages=3)
        runs.append(summary)
        if summary.complete:
            break
    assert len(runs) == 10
    assert [s.stopped for s in runs[:-1]] == ["pages"] * 9
    assert runs[-1].complete
    assert not any(s.needs_attention for s in runs)
    assert sorted(api.redelivered) == [n for n in range(1, 91) if n % 3 == 0]  # each exactly once
    assert len(api.pages_read) == 30
    assert store.states[HOOK.spec].newest_id == 90
    # The next listing holds the 30 redeliveries (which succeeded) and nothing else.
    summary = once(api, store, max_pages=100)
    assert (summary.complete, summary.checked, summary.failed) == (True, 30, 0)
    assert store.states[HOOK.spec].guids == {}


def test_a_run_stopped_midway_continues_where_it_stopped_and_asks_nothing_twice() -> None:
    api, store = FakeDeliveries([attempt(n, f"g{n}", 503) for n in range(1, 10)]), MemoryStateStore()
    api.stop_at = {"redeliver:5"}  # a rate limit in the middle of the second page
    summary = once(api, store)
    assert (summary.complete, summary.stopped, summary.needs_attention) == (False, "rate_limit", True)
    assert api.redelivered == [9, 8, 7, 6]
    api.stop_at = set()
    summary = once(api, store)
    assert summary.complete
    assert sorted(api.redelivered) == list(range(1, 10))  # each once: 5 was not sent when the run stopped


def test_a_listing_that_stops_while_paging_keeps_its_progress() -> None:
    api, store = FakeDeliveries([attempt(n, f"g{n}", 503) for n in range(1, 10)]), MemoryStateStore()
    api.stop_at = {"page:4"}
    summary = once(api, store)
    assert (summary.complete, summary.pages, api.redelivered) == (False, 2, [9, 8, 7, 6, 5, 4])
    api.stop_at = set()
    api.pages_read.clear()
    summary = once(api, store)
    assert (summary.complete, api.pages_read, api.redelivered[6:]) == (True, ["4"], [3, 2, 1])


def test_a_next_link_already_followed_stops_the_listing() -> None:
    api, store, telemetry = (
        FakeDeliveries([attempt(n, f"g{n}", 200) for n in range(1, 10)]),
        MemoryStateStore(),
        Telemetry(),
    )
    api.loop = True
    summary = once(api, store, telemetry)
    assert (summary.complete, summary.stopped, summary.needs_attention) == (False, "loop", True)
    assert api.calls <= 3
    [line] = [line for line in telemetry.lines if line.message == "hook checked"]
    assert line.counts["ListingStopped"] == 1
    assert "hook not finished" in telemetry.messages


def test_more_pages_than_the_cap_stop_the_listing_for_this_run() -> None:
    api, store, telemetry = (
        FakeDeliveries([attempt(n, f"g{n}", 200) for n in range(1, 30)]),
        MemoryStateStore(),
        Telemetry(),
    )
    summary = once(api, store, telemetry, max_pages=2)
    assert (summary.pages, summary.stopped, summary.needs_attention) == (2, "pages", False)
    assert telemetry.only("hook checked").counts["ListingStopped"] == 1


def test_without_a_state_that_can_be_written_nothing_is_asked() -> None:
    class Broken(MemoryStateStore):
        def save(self, hook: Hook, state: HookState) -> None:
            raise StateUnavailable("cannot save the redelivery state (ResourceNotFoundException)")

    api = FakeDeliveries([attempt(1, "g", 503)])
    for _ in range(3):
        summary = once(api, Broken())
        assert (summary.stopped, summary.needs_attention) == ("state", True)
    assert api.redelivered == []


def test_without_a_state_that_can_be_read_nothing_is_listed() -> None:
    class Unreadable(MemoryStateStore):
        def load(self, hook: Hook) -> HookState:
            raise StateUnavailable("cannot read the redelivery state (AccessDeniedException)")

    api = FakeDeliveries([attempt(1, "g", 503)])
    summary = once(api, Unreadable())
    assert (summary.stopped, summary.detail) == ("state", "cannot read the redelivery state (AccessDeniedException)")
    assert api.calls == 0


def test_two_runs_at_once_never_redeliver_the_same_delivery_twice() -> None:
    """Run A loaded the state; run B (say `webhook redeliver`) saves first: A's write-ahead fails, A stops."""
    api, store = FakeDeliveries([attempt(n, f"g{n}", 503) for n in range(1, 5)]), MemoryStateStore()
    other: list[HookSummary] = []

    class Interleaved(MemoryStateStore):
        def save(self, hook: Hook, state: HookState) -> None:
            if not other:
                other.append(once(api, store))  # B runs to the end between A's load and A's first save
            store.save(hook, state)

        def load(self, hook: Hook) -> HookState:
            return store.load(hook)

    summary = once(api, Interleaved())
    assert summary.stopped == "state"
    assert sorted(api.redelivered) == [1, 2, 3, 4]  # B's, once each; A asked for nothing
    # And a run that loads after another's write-ahead sees the attempt as pending, not to redo.
    again = once(api, store)
    assert again.redelivered == 0


def test_malformed_items_are_skipped_and_counted_never_blocking_the_hook() -> None:
    api, store, telemetry = FakeDeliveries([attempt(1, "g", 503)]), MemoryStateStore(), Telemetry()
    api.malformed = [
        {"id": "x"},
        {"id": 7, "guid": "m", "delivered_at": None, "status_code": 503},
        {"redelivery": "true"},
    ]
    summary = once(api, store, telemetry)
    assert (summary.malformed, summary.redelivered, summary.complete) == (3, 1, True)
    assert telemetry.only("hook checked").counts["MalformedAttempts"] == 3
    assert "GitHub listed items that are not attempts: skipped" in telemetry.messages


def test_a_dry_run_asks_for_nothing_and_remembers_nothing() -> None:
    api, store, telemetry = FakeDeliveries(mixed()), MemoryStateStore(), Telemetry()
    summary = once(api, store, telemetry, dry_run=True)
    assert (summary.redelivered, api.redelivered, store.saves) == (2, [], 0)
    assert telemetry.messages.count("would recover") == 2


def test_a_hook_with_no_deliveries() -> None:
    api, store = FakeDeliveries([]), MemoryStateStore()
    summary = once(api, store)
    assert (summary.pages, summary.checked, summary.complete, store.saves) == (1, 0, True, 0)


def test_a_refused_saved_cursor_lists_again_from_the_newest_skipping_what_was_handled() -> None:
    api, store = FakeDeliveries([attempt(n, f"g{n}", 503) for n in range(1, 10)]), MemoryStateStore()
    once(api, store, max_pages=1)
    assert api.redelivered == [9, 8, 7]
    original = api.next_page

    def expired(hook: Hook, url: str) -> Any:
        from handler.core.ports import Refused

        if not api.read:  # the saved cursor only
            api.read.append(0)
            raise Refused("400 Invalid cursor", status=400)
        return original(hook, url)

    api.next_page = expired  # type: ignore[method-assign]
    summary = once(api, store)
    assert summary.complete
    assert sorted(api.redelivered) == list(range(1, 10))  # 7, 8, 9 not again


# Pull mode ---------------------------------------------------------------------------------------


class Pipeline:
    """A recovery that records what it was handed; answers as told."""

    def __init__(self) -> None:
        self.records: list[Mapping[str, Any]] = []
        self.seen: set[str] = set()
        self.fail: Exception | None = None
        self.time_left = 60.0

    def room(self) -> None:
        if self.time_left < 15:
            raise RunStopped("no time left for another hand-off", reason="time")

    def recover(self, record: Mapping[str, Any]) -> Status:
        if self.fail is not None:
            raise self.fail
        self.records.append(record)
        guid = record["request"]["headers"]["X-GitHub-Delivery"]
        if guid in self.seen:
            return Status.DUPLICATE
        self.seen.add(guid)
        return Status.ACCEPTED


def test_pull_reads_each_failed_delivery_and_hands_it_off_asking_github_for_nothing() -> None:
    api, store, pipeline, telemetry = FakeDeliveries(mixed()), MemoryStateStore(), Pipeline(), Telemetry()
    pipeline.seen.add("unanswered")  # the receiver had accepted it, GitHub recorded a timeout
    summary = once(api, store, telemetry, mode=Mode.PULL, recovery=pipeline)
    assert (api.redelivered, api.read) == ([], [11, 3])
    assert (summary.recovered, summary.already, summary.backlog) == (1, 1, 0)
    assert "DeliveriesRecovered" not in telemetry.only("hook checked").counts  # counted once, on the run's line
    assert "delivery already handed off: not sent again" in telemetry.messages
    # Settled: never read again, even though GitHub still lists them as failed.
    api.read.clear()
    store.states[HOOK.spec].newest_id = None  # a listing from scratch
    summary = once(api, store, mode=Mode.PULL, recovery=pipeline)
    assert (api.read, summary.recovered) == ([], 0)


def test_pull_falls_back_to_a_redelivery_when_github_kept_no_payload() -> None:
    class NoPayload(Pipeline):
        def recover(self, record: Mapping[str, Any]) -> Status:
            raise Unrecoverable("GitHub kept no payload for this delivery")

    api, store = FakeDeliveries([attempt(1, "g", 503)]), MemoryStateStore()
    summary = once(api, store, mode=Mode.PULL, recovery=NoPayload())
    assert (api.read, api.redelivered, summary.redelivered, summary.recovered) == ([1], [1], 1, 0)


def test_pull_stops_the_hook_when_the_pipeline_fails_and_recovers_it_next_run() -> None:
    api, store, pipeline = FakeDeliveries([attempt(1, "g", 503), attempt(2, "h", 503)]), MemoryStateStore(), Pipeline()
    pipeline.fail = ForwardFailed("PutEvents failed (InternalException)")
    summary = once(api, store, mode=Mode.PULL, recovery=pipeline)
    assert (summary.stopped, summary.needs_attention, summary.backlog, api.read) == ("pipeline", True, 1, [2])
    pipeline.fail = None
    summary = once(api, store, mode=Mode.PULL, recovery=pipeline)
    assert (summary.recovered, summary.complete) == (2, True)


def test_pull_leaves_a_delivery_in_progress_elsewhere_pending() -> None:
    api, store, pipeline = FakeDeliveries([attempt(1, "g", 503)]), MemoryStateStore(), Pipeline()
    pipeline.fail = InProgress()
    summary = once(api, store, mode=Mode.PULL, recovery=pipeline)
    assert (summary.recovered, summary.backlog, summary.complete) == (0, 1, True)
    assert store.states[HOOK.spec].guids["g"].awaiting  # checked again once a later listing shows no outcome


def test_a_record_github_refuses_to_show_is_settled() -> None:
    api, store = FakeDeliveries([attempt(1, "g", 503)]), MemoryStateStore()
    api.refuse = {1: 404}
    summary = once(api, store, mode=Mode.PULL, recovery=Pipeline())
    assert (summary.github_refused, summary.backlog) == (1, 0)
    assert store.states[HOOK.spec].guids["g"].settled == "refused"


# The run over every hook -------------------------------------------------------------------------


def test_one_hooks_failure_never_stops_the_others_and_the_run_line_carries_the_alarms_metrics() -> None:
    good, bad = Hook.parse("repos/o/good/hooks/1"), Hook.parse("repos/o/bad/hooks/2")
    apis = {good.spec: FakeDeliveries([attempt(1, "g", 503)]), bad.spec: FakeDeliveries(refuse_listing=401)}

    class PerHook:
        def __getattr__(self, name: str) -> Any:
            def call(hook: Hook, *args: Any) -> Any:
                return getattr(apis[hook.spec], name)(hook, *args)

            return call

    telemetry = Telemetry()
    summary = run(
        [bad, good], api=PerHook(), store=MemoryStateStore(), policy=POLICY, telemetry=telemetry, clock=lambda: NOW
    )
    assert (summary.checked, summary.not_checked, summary.backlog, summary.redelivered) == (1, 1, 1, 1)
    assert summary.hooks[bad.spec]["stopped"] == "github"
    assert summary.hooks[bad.spec]["detail"] == "GET deliveries answered 401 (Bad credentials)"
    run_line = telemetry.only("redelivery run")
    assert run_line.counts == {
        "HooksChecked": 1,
        "HooksNotChecked": 1,
        "RedeliveryBacklog": 1,
        "DeliveriesRecovered": 0,
    }
    assert summary.as_dict()["HooksNotChecked"] == 1


def test_an_unexpected_failure_of_one_hook_is_logged_by_type_and_the_others_are_checked() -> None:
    good, bad = Hook.parse("repos/o/good/hooks/1"), Hook.parse("repos/o/bad/hooks/2")
    apis = {good.spec: FakeDeliveries([attempt(1, "g", 503)]), bad.spec: FakeDeliveries([attempt(2, "h", 503)])}

    class PerHook:
        requests = 0

        def first_page(self, hook: Hook) -> Any:
            if hook == bad:
                raise RuntimeError("secret text from a library")
            return apis[hook.spec].first_page(hook)

        def redeliver(self, hook: Hook, delivery_id: int) -> None:
            apis[hook.spec].redeliver(hook, delivery_id)

    telemetry = Telemetry()
    store = MemoryStateStore()
    summary = run([bad, good], api=PerHook(), store=store, policy=POLICY, telemetry=telemetry, clock=lambda: NOW)
    assert summary.hooks[bad.spec] == {"error": "RuntimeError"}
    assert (summary.not_checked, summary.redelivered) == (1, 1)
    assert [type(e) for e in telemetry.errors] == [RuntimeError]
    assert "secret text" not in str([line.fields for line in telemetry.lines])


# Requests whose outcome is unknown, and stops midway ----------------------------------------------


def runs(api: FakeDeliveries, store: Any, clock: Clock, count: int, **options: Any) -> list[HookSummary]:
    """``count`` runs five minutes apart (the default schedule)."""
    api.clock = clock
    done = []
    for _ in range(count):
        options.setdefault("policy", POLICY)
        done.append(run_hook(HOOK, api=api, store=store, telemetry=Telemetry(), clock=clock, **options))
        clock.advance(300)
    return done


def test_a_redelivery_whose_answer_was_lost_is_asked_again_once_a_later_listing_shows_no_outcome() -> None:
    """The POST timed out (it may or may not have been made): its intent is kept, and it counts."""
    clock = Clock(NOW)
    api, store = FakeDeliveries([attempt(1, "g", 503), attempt(2, "h", 503)]), MemoryStateStore()
    original = api.redeliver
    lost: list[int] = []

    def answer_lost_once(hook: Hook, delivery_id: int) -> None:
        if delivery_id == 1 and not lost:
            lost.append(delivery_id)  # GitHub never made it, and the run cannot know
            raise RunStopped("POST kept failing (timed out)", reason="network")
        original(hook, delivery_id)

    api.redeliver = answer_lost_once  # type: ignore[method-assign]
    [first] = runs(api, store, clock, 1)
    assert (first.stopped, first.redelivered, lost) == ("network", 1, [1])
    [second] = runs(api, store, clock, 1)
    assert (second.complete, second.backlog, api.redelivered) == (True, 2, [2])  # both awaited, none asked twice
    [third] = runs(api, store, clock, 1)
    # The third run's listing, begun well after the lost request, shows no outcome for it: asked again.
    assert (third.redelivered, sorted(api.redelivered)) == (1, [1, 2])
    assert store.states[HOOK.spec].guids["g"].asked == 2  # the lost request counted toward the cap
    [fourth] = runs(api, store, clock, 1)
    assert (fourth.failed, fourth.backlog, store.states[HOOK.spec].guids) == (0, 0, {})


def test_a_run_killed_after_its_write_ahead_is_recovered_by_a_later_run() -> None:
    clock = Clock(NOW)
    api, store = FakeDeliveries([attempt(1, "g", 503)]), MemoryStateStore()
    state = store.load(HOOK)
    from handler.core.redelivery import intend

    intend(state, "g", [api.attempts[0]], now=clock())  # saved, then Lambda killed the run before the POST
    state.newest_id = 1
    store.save(HOOK, state)
    clock.advance(300)
    runs(api, store, clock, 2)
    assert api.redelivered == [1]


def test_a_hook_stopped_midway_and_resumed_an_hour_later_redelivers_nothing_twice() -> None:
    clock = Clock(NOW)
    api, store = FakeDeliveries([attempt(n, f"g{n}", 503) for n in range(1, 7)]), MemoryStateStore()
    api.stop_at = {"redeliver:5"}  # a secondary limit in the middle of the first page (6, 5, 4)
    api.clock = clock
    first = once_at(api, store, clock)
    assert first.stopped == "rate_limit"
    asked = list(api.redelivered)
    assert asked == [6]  # then 5 was refused by the limit, unsent
    clock.advance(3600)
    api.stop_at = set()
    for _ in range(3):
        once_at(api, store, clock)
        clock.advance(300)
    assert sorted(api.redelivered) == list(range(1, 7))
    assert all(api.redelivered.count(n) == 1 for n in asked)


def once_at(api: FakeDeliveries, store: Any, clock: Clock, **options: Any) -> HookSummary:
    options.setdefault("policy", POLICY)
    return run_hook(HOOK, api=api, store=store, telemetry=Telemetry(), clock=clock, **options)


def test_a_saved_cursor_github_refuses_as_a_listing_error_lists_again_from_the_newest() -> None:
    """The client raises GitHubError for a 400 "Invalid cursor" on a listing (not Refused)."""
    api, store = FakeDeliveries([attempt(n, f"g{n}", 503) for n in range(1, 10)]), MemoryStateStore()
    once(api, store, max_pages=1)
    original = api.next_page
    refused: list[str] = []

    def invalid_cursor(hook: Hook, url: str) -> Any:
        if not refused:
            refused.append(url)
            raise GitHubError("GET deliveries answered 400 (Invalid cursor)")
        return original(hook, url)

    api.next_page = invalid_cursor  # type: ignore[method-assign]
    summary = once(api, store)
    assert (summary.complete, summary.stopped) == (True, None)
    assert sorted(api.redelivered) == list(range(1, 10))


def test_counts_are_kept_when_a_hook_stops_on_an_error_midway() -> None:
    api, store = FakeDeliveries([attempt(n, f"g{n}", 503) for n in range(1, 7)]), MemoryStateStore()

    def revoked(hook: Hook, url: str) -> Any:
        raise GitHubError("GET deliveries answered 401 (Bad credentials)")

    api.next_page = revoked  # type: ignore[method-assign]
    summary = once(api, store)
    assert (summary.stopped, summary.redelivered, summary.backlog) == ("github", 3, 3)
    assert store.states[HOOK.spec].guids.keys() == {"g4", "g5", "g6"}  # and remembered for the cap


def test_pull_with_no_time_for_a_hand_off_continues_next_run_without_an_alarm() -> None:
    api, store, pipeline = FakeDeliveries([attempt(1, "g", 503)]), MemoryStateStore(), Pipeline()
    pipeline.time_left = 10
    summary = once(api, store, mode=Mode.PULL, recovery=pipeline)
    assert (summary.stopped, summary.needs_attention, api.read, summary.backlog) == ("time", False, [], 1)
    pipeline.time_left = 60
    assert once(api, store, mode=Mode.PULL, recovery=pipeline).recovered == 1


def test_pull_settles_a_delivery_the_receiver_would_refuse_too() -> None:
    from handler.core.outcomes import MalformedPayload

    api, store, pipeline = FakeDeliveries([attempt(1, "g", 503)]), MemoryStateStore(), Pipeline()
    pipeline.fail = MalformedPayload("payload nests too deeply to forward")
    summary = once(api, store, mode=Mode.PULL, recovery=pipeline)
    assert (summary.refused, summary.backlog, summary.complete) == (1, 0, True)
    assert store.states[HOOK.spec].guids["g"].settled == "refused"


def test_a_lost_request_asked_again_but_stopped_by_a_rate_limit_stays_awaited_until_asked() -> None:
    """Found by the drill (--lost): the re-ask stopped before it was sent must not be forgotten."""
    clock = Clock(NOW)
    api, store = FakeDeliveries([attempt(1, "g", 503)]), MemoryStateStore()
    original = api.redeliver
    answers = [RunStopped("timed out", reason="network"), RunStopped("secondary limit", reason="rate_limit")]

    def flaky(hook: Hook, delivery_id: int) -> None:
        if answers:
            raise answers.pop(0)
        original(hook, delivery_id)

    api.redeliver = flaky  # type: ignore[method-assign]
    done = runs(api, store, clock, 6)
    assert api.redelivered == [1]
    assert store.states[HOOK.spec].guids == {}  # recovered
    assert [s.stopped for s in done[:3]] == ["network", None, "rate_limit"]
    assert done[2].backlog == 1  # still waiting, and counted


def test_a_hook_stopped_before_its_listing_still_reports_what_it_awaits() -> None:
    api, store = FakeDeliveries([attempt(1, "g", 503)]), MemoryStateStore()

    def lost(hook: Hook, delivery_id: int) -> None:
        raise RunStopped("timed out", reason="network")

    api.redeliver = lost  # type: ignore[method-assign]
    assert once(api, store).backlog == 1
    api.stop_at = {"page:first"}  # the token's limit is spent: nothing can be listed this run
    summary = once(api, store)
    assert (summary.stopped, summary.pages, summary.backlog) == ("rate_limit", 0, 1)
