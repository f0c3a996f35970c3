"""The redelivery decisions (handler.core.redelivery) with in-memory fakes: no HTTP, no AWS, no clock."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from handler.core.redelivery import (
    Attempt,
    Decision,
    Hook,
    HookState,
    Page,
    Policy,
    RunStopped,
    Verdict,
    decide,
    parse_hooks,
    record,
    run_hook,
)
from tests.fakes import Telemetry

NOW = 1_795_000_000.0
HOUR = 3600.0
POLICY = Policy(lookback_seconds=72 * HOUR, max_attempts=3)
HOOK = Hook.parse("repos/octo-org/hello-world/hooks/42")


def attempt(id: int, guid: str, status_code: int, *, age: float = 60.0, redelivery: bool = False) -> Attempt:
    return Attempt(id, guid, NOW - age, redelivery, status_code, "push", None)


def verdicts(attempts: list[Attempt], state: HookState | None = None, policy: Policy = POLICY) -> dict[str, Verdict]:
    return {d.guid: d.verdict for d in decide(attempts, state or HookState(), now=NOW, policy=policy)}


# Attempt.from_api --------------------------------------------------------------------------------

# An item as GitHub's documentation shows it.
ITEM = {
    "id": 12345678,
    "guid": "0b989ba4-242f-11e5-81e1-c7b6966d2516",
    "delivered_at": "2019-06-03T00:57:16Z",
    "redelivery": False,
    "duration": 0.27,
    "status": "OK",
    "status_code": 200,
    "event": "issues",
    "action": "opened",
    "installation_id": 123,
    "repository_id": 456,
    "throttled_at": "2019-06-03T00:57:16Z",
}


def test_an_attempt_is_read_from_an_api_item() -> None:
    parsed = Attempt.from_api(ITEM)
    assert parsed == Attempt(
        id=12345678,
        guid="0b989ba4-242f-11e5-81e1-c7b6966d2516",
        delivered_at=datetime(2019, 6, 3, 0, 57, 16, tzinfo=UTC).timestamp(),
        redelivery=False,
        status_code=200,
        event="issues",
        action="opened",
    )
    assert parsed.succeeded


def test_nothing_answered_is_status_code_zero_and_retryable() -> None:
    parsed = Attempt.from_api({**ITEM, "status": "failed to connect", "status_code": None, "action": None})
    assert (parsed.status_code, parsed.action, parsed.succeeded, parsed.retryable) == (0, None, False, True)


@pytest.mark.parametrize(
    "broken",
    [
        {k: v for k, v in ITEM.items() if k != "guid"},
        {k: v for k, v in ITEM.items() if k != "id"},
        {**ITEM, "id": "twelve"},
        {**ITEM, "delivered_at": "yesterday"},
        {**ITEM, "status_code": "teapot"},
    ],
)
def test_anything_else_is_a_value_error(broken: Mapping[str, Any]) -> None:
    with pytest.raises(ValueError, match="not a delivery attempt"):
        Attempt.from_api(broken)


# decide ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status_code", "verdict"),
    [
        (200, Verdict.SUCCEEDED),
        (202, Verdict.SUCCEEDED),
        (204, Verdict.SUCCEEDED),
        (0, Verdict.REDELIVER),  # timeout, connection refused
        (500, Verdict.REDELIVER),
        (502, Verdict.REDELIVER),
        (503, Verdict.REDELIVER),  # the receiver's own "try again"
        (504, Verdict.REDELIVER),
        (408, Verdict.REDELIVER),
        (409, Verdict.REDELIVER),  # another attempt was in flight
        (429, Verdict.REDELIVER),  # API Gateway throttling
        (301, Verdict.REFUSED),
        (400, Verdict.REFUSED),
        (401, Verdict.REFUSED),  # a wrong secret: redelivering cannot fix it
        (403, Verdict.REFUSED),
        (404, Verdict.REFUSED),
        (413, Verdict.REFUSED),
        (415, Verdict.REFUSED),
        (422, Verdict.REFUSED),
    ],
)
def test_a_single_attempt_is_judged_by_its_status(status_code: int, verdict: Verdict) -> None:
    assert verdicts([attempt(1, "g", status_code)]) == {"g": verdict}


def test_attempts_are_grouped_by_guid_and_any_success_settles_it() -> None:
    attempts = [
        attempt(6, "a", 200, redelivery=True),  # newest first, as GitHub lists them
        attempt(5, "b", 503, redelivery=True),
        attempt(4, "c", 503),
        attempt(3, "b", 502),
        attempt(2, "a", 503),
        attempt(1, "d", 503, redelivery=True),  # a later failure after an earlier success is not
        attempt(0, "d", 200),  # possible on GitHub, but must not be redelivered either
    ]
    decisions = decide(attempts, HookState(), now=NOW, policy=POLICY)
    assert [(d.guid, d.verdict, d.attempt.id, d.redeliveries) for d in decisions] == [
        ("a", Verdict.SUCCEEDED, 6, 1),
        ("b", Verdict.REDELIVER, 5, 1),  # the newest attempt is the one to redeliver
        ("c", Verdict.REDELIVER, 4, 0),
        ("d", Verdict.SUCCEEDED, 1, 1),
    ]


def test_the_newest_attempt_decides_between_refused_and_retryable() -> None:
    refused_then_unavailable = [attempt(2, "g", 503, redelivery=True), attempt(1, "g", 401)]
    unavailable_then_refused = [attempt(2, "g", 401, redelivery=True), attempt(1, "g", 503)]
    assert verdicts(refused_then_unavailable) == {"g": Verdict.REDELIVER}
    assert verdicts(unavailable_then_refused) == {"g": Verdict.REFUSED}


def test_redeliveries_github_shows_count_toward_the_cap() -> None:
    twice = [attempt(3, "g", 503, redelivery=True), attempt(2, "g", 503, redelivery=True), attempt(1, "g", 503)]
    assert verdicts(twice) == {"g": Verdict.REDELIVER}
    assert verdicts([attempt(4, "g", 503, redelivery=True), *twice]) == {"g": Verdict.CAPPED}
    assert verdicts(twice, policy=replace(POLICY, max_attempts=2)) == {"g": Verdict.CAPPED}


def test_redeliveries_asked_for_by_earlier_runs_count_toward_the_cap() -> None:
    """GitHub may not list a redelivery yet (or the run saw it before): the state's count holds."""
    state = HookState(redelivered={"g": 3}, first_seen={"g": NOW - HOUR})
    [decision] = decide([attempt(9, "g", 503, redelivery=True)], state, now=NOW, policy=POLICY)
    assert (decision.verdict, decision.redeliveries) == (Verdict.CAPPED, 3)


def test_the_window_counts_from_the_first_attempt_an_earlier_run_saw() -> None:
    window = POLICY.lookback_seconds
    inside = HookState(redelivered={"g": 1}, first_seen={"g": NOW - window})
    outside = HookState(redelivered={"g": 1}, first_seen={"g": NOW - window - 1})
    latest = [attempt(9, "g", 503, redelivery=True)]
    assert verdicts(latest, inside) == {"g": Verdict.REDELIVER}
    assert verdicts(latest, outside) == {"g": Verdict.TOO_OLD}
    assert verdicts([attempt(1, "h", 503, age=window + 1)]) == {"h": Verdict.TOO_OLD}


def test_refused_and_succeeded_win_over_too_old_and_capped() -> None:
    old = POLICY.lookback_seconds + HOUR
    state = HookState(redelivered={"r": 5, "s": 5}, first_seen={"r": NOW - old, "s": NOW - old})
    attempts = [attempt(2, "r", 400, redelivery=True), attempt(1, "s", 200, redelivery=True)]
    assert verdicts(attempts, state) == {"r": Verdict.REFUSED, "s": Verdict.SUCCEEDED}


def test_record_counts_one_more_redelivery_and_keeps_the_first_sighting() -> None:
    state = HookState()
    first = Decision("g", Verdict.REDELIVER, attempt(1, "g", 503, age=100), 0)
    record(state, first)
    record(state, Decision("g", Verdict.REDELIVER, attempt(2, "g", 503, age=10, redelivery=True), 1))
    assert state.redelivered == {"g": 2}
    assert state.first_seen == {"g": NOW - 100}


# Hook --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "deliveries", "attempts"),
    [
        ("repos/octo-org/hello-world/hooks/42", "/repos/octo-org/hello-world/hooks/42/deliveries", None),
        (" /repos/octo-org/hello.world/hooks/42/ ", "/repos/octo-org/hello.world/hooks/42/deliveries", None),
        ("orgs/octo-org/hooks/7", "/orgs/octo-org/hooks/7/deliveries", "/orgs/octo-org/hooks/7/deliveries/9/attempts"),
        ("app", "/app/hook/deliveries", "/app/hook/deliveries/9/attempts"),
    ],
)
def test_hook_specs_name_their_endpoints(spec: str, deliveries: str, attempts: str | None) -> None:
    hook = Hook.parse(spec)
    assert hook.deliveries_path == deliveries
    assert hook.attempts_path(9) == (attempts or deliveries + "/9/attempts")
    assert hook.is_app is (spec == "app")


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "app/hook",
        "repos/octo-org/hello-world",
        "repos/octo-org/hello-world/hooks/x",
        "repos/octo-org/hooks/42",
        "orgs/octo-org/hooks",
        "orgs/octo-org/webhooks/7",
        "repos/octo-org/hello world/hooks/42",
        "repos/octo-org/hello-world/hooks/42?per_page=1",
        "repos/octo-org//hooks/42",
        # dot segments would be resolved away when the URL is built: another path, with the token
        "repos/../../user/hooks/42",
        "repos/octo-org/../hooks/42",
        "orgs/./hooks/7",
    ],
)
def test_anything_else_is_not_a_hook(spec: str) -> None:
    with pytest.raises(ValueError, match="not a hook"):
        Hook.parse(spec)


def test_hooks_are_comma_separated_and_blanks_ignored() -> None:
    assert parse_hooks(" repos/o/r/hooks/1, ,app,") == (Hook("repos/o/r/hooks/1"), Hook("app"))
    assert parse_hooks("") == ()


# run_hook ----------------------------------------------------------------------------------------


class FakeDeliveries:
    """GitHub's deliveries for one hook, in memory: pages of ``per_page`` items, newest first.

    A redelivery appends a new attempt whose status the test scripts (default 200), as GitHub does
    once it has made it; ``stop_after`` makes the n-th call raise RunStopped (a rate limit)."""

    def __init__(self, attempts: list[Attempt], *, per_page: int = 3) -> None:
        self.attempts = list(attempts)  # oldest first
        self.per_page = per_page
        self.pages_read: list[str] = []
        self.redelivered: list[int] = []
        self.outcomes: dict[str, list[int]] = {}
        self.stop_at: set[str] = set()
        self.calls = 0

    def _page(self, offset: int) -> Page:
        newest_first = sorted(self.attempts, key=lambda a: a.id, reverse=True)
        items = [_item(a) for a in newest_first[offset : offset + self.per_page]]
        more = offset + self.per_page < len(newest_first)
        return Page(items, f"page:{offset + self.per_page}" if more else None)

    def _call(self, what: str) -> None:
        self.calls += 1
        if what in self.stop_at:
            raise RunStopped("rate limited")

    def first_page(self, hook: Hook) -> Page:
        self._call("page:0")
        self.pages_read.append("page:0")
        return self._page(0)

    def next_page(self, hook: Hook, url: str) -> Page:
        self._call(url)
        self.pages_read.append(url)
        return self._page(int(url.removeprefix("page:")))

    def redeliver(self, hook: Hook, delivery_id: int) -> None:
        self._call(f"redeliver:{delivery_id}")
        original = next(a for a in self.attempts if a.id == delivery_id)
        self.redelivered.append(delivery_id)
        scripted = self.outcomes.get(original.guid)
        status = scripted.pop(0) if scripted else 200
        newest = max(a.id for a in self.attempts)
        self.attempts.append(replace(original, id=newest + 1, redelivery=True, status_code=status, delivered_at=NOW))


def _item(a: Attempt) -> dict[str, Any]:
    return {
        "id": a.id,
        "guid": a.guid,
        "delivered_at": datetime.fromtimestamp(a.delivered_at, UTC).isoformat().replace("+00:00", "Z"),
        "redelivery": a.redelivery,
        "status": "OK" if a.succeeded else f"Invalid HTTP Response: {a.status_code}",
        "status_code": a.status_code,
        "event": a.event,
        "action": a.action,
    }


class FakeStore:
    def __init__(self) -> None:
        self.states: dict[str, HookState] = {}
        self.saves = 0

    def load(self, hook: Hook) -> HookState:
        saved = self.states.get(hook.spec)
        # A copy, as a real store gives: the run must save what it wants kept.
        return HookState(saved.newest_id, dict(saved.redelivered), dict(saved.first_seen)) if saved else HookState()

    def save(self, hook: Hook, state: HookState) -> None:
        self.saves += 1
        self.states[hook.spec] = state


def run(api: FakeDeliveries, store: FakeStore, telemetry: Telemetry | None = None, **options: Any):
    policy = options.pop("policy", POLICY)
    return run_hook(HOOK, api=api, store=store, policy=policy, now=NOW, telemetry=telemetry or Telemetry(), **options)


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


def test_a_first_run_redelivers_exactly_the_retryable_failures_in_the_window() -> None:
    api, store, telemetry = FakeDeliveries(mixed()), FakeStore(), Telemetry()
    summary = run(api, store, telemetry)
    assert sorted(api.redelivered) == [3, 11]  # "unavailable" and "unanswered", once each
    assert api.pages_read == ["page:0", "page:3", "page:6", "page:9"]  # stops at the too-old attempt
    assert (summary.pages, summary.checked, summary.redelivered) == (4, 11, 2)
    assert (summary.failed, summary.refused, summary.capped, summary.too_old, summary.complete) == (4, 1, 1, 0, True)
    assert store.states[HOOK.spec].newest_id == 12
    assert store.states[HOOK.spec].redelivered == {"unavailable": 1, "unanswered": 1}
    lines = {(line.level, line.message, line.fields.get("guid")) for line in telemetry.lines}
    assert lines == {
        ("info", "redelivery requested", "unavailable"),
        ("info", "redelivery requested", "unanswered"),
        ("warning", "delivery refused by the receiver: not redelivered", "refused"),
        ("error", "delivery still failing after the last redelivery: given up", "capped"),
    }
    [refused] = [line for line in telemetry.lines if line.level == "warning"]
    assert refused.fields == {"hook": HOOK.spec, "guid": "refused", "event": "push", "status_code": 401}


def test_a_quiet_second_run_reads_one_page_and_redelivers_nothing() -> None:
    api, store = FakeDeliveries(mixed()), FakeStore()
    run(api, store)
    api.pages_read.clear()
    summary = run(api, store)
    # The two redeliveries (which succeeded) are new; the page ends at what the first run covered.
    assert api.pages_read == ["page:0"]
    assert (summary.checked, summary.failed, summary.redelivered) == (2, 0, 0)
    assert api.redelivered == [11, 3]  # newest first
    newest = max(a.id for a in api.attempts)
    assert store.states[HOOK.spec].newest_id == newest
    api.pages_read.clear()
    summary = run(api, store)
    assert (api.pages_read, summary.checked) == (["page:0"], 0)
    assert store.states[HOOK.spec].newest_id == newest


def test_a_delivery_that_keeps_failing_is_redelivered_up_to_the_cap_then_given_up() -> None:
    api, store = FakeDeliveries([attempt(1, "g", 503)]), FakeStore()
    api.outcomes["g"] = [503] * 10
    gave_up = []
    for _ in range(6):
        telemetry = Telemetry()
        summary = run(api, store, telemetry)
        gave_up.append(summary.capped)
    assert len(api.redelivered) == POLICY.max_attempts
    assert gave_up == [0, 0, 0, 1, 0, 0]  # said once, when the last redelivery's failure was seen
    assert [a.redelivery for a in api.attempts] == [False, True, True, True]


def test_the_cap_holds_before_github_lists_the_redelivery() -> None:
    """A run stopped after asking (its view was partial) reads the same attempts again next time."""
    api, store = FakeDeliveries([attempt(1, "g", 503), attempt(2, "h", 503)]), FakeStore()
    policy = replace(POLICY, max_attempts=1)
    api.stop_at = {"redeliver:1"}  # newest first: 2 is asked for, then the run stops
    summary = run(api, store, policy=policy)
    assert (summary.complete, summary.redelivered, api.redelivered) == (False, 1, [2])
    assert store.states[HOOK.spec] == HookState(None, {"h": 1}, {"h": NOW - 60})
    api.attempts = [a for a in api.attempts if not a.redelivery]  # as if GitHub had not listed it yet
    api.stop_at = set()
    summary = run(api, store, policy=policy)
    assert api.redelivered == [2, 1]  # h is not asked for twice
    assert (summary.complete, summary.capped) == (True, 1)


def test_a_run_stopped_while_paging_decides_nothing_and_the_next_run_reads_it_all_again() -> None:
    api, store = FakeDeliveries(mixed()), FakeStore()
    api.stop_at = {"page:6"}
    summary = run(api, store)
    assert (summary.complete, summary.pages, summary.redelivered, api.redelivered) == (False, 2, 0, [])
    assert store.states.get(HOOK.spec, HookState()).newest_id is None
    api.stop_at = set()
    summary = run(api, store)
    assert (summary.complete, sorted(api.redelivered)) == (True, [3, 11])


def test_a_dry_run_asks_for_nothing_and_remembers_nothing() -> None:
    api, store, telemetry = FakeDeliveries(mixed()), FakeStore(), Telemetry()
    summary = run(api, store, telemetry, dry_run=True)
    assert (summary.redelivered, api.redelivered, store.saves) == (2, [], 0)
    assert telemetry.messages.count("redelivery requested") == 2


def test_a_hook_with_no_deliveries() -> None:
    api, store = FakeDeliveries([]), FakeStore()
    summary = run(api, store)
    assert (summary.pages, summary.checked, summary.complete) == (1, 0, True)
    assert store.states[HOOK.spec].newest_id is None


def test_state_is_kept_when_github_refuses_a_request_midway() -> None:
    """A redelivery asked for before GitHub refused the next request still counts toward the cap."""

    class Refused(Exception):
        pass

    api, store = FakeDeliveries([attempt(1, "g", 503), attempt(2, "h", 503)]), FakeStore()
    redeliver = api.redeliver

    def refuse_the_second(hook: Hook, delivery_id: int) -> None:
        if api.redelivered:
            raise Refused("403 Resource not accessible by personal access token")
        redeliver(hook, delivery_id)

    api.redeliver = refuse_the_second  # type: ignore[method-assign]
    with pytest.raises(Refused):
        run(api, store)
    assert store.states[HOOK.spec].redelivered == {"h": 1}
    assert store.states[HOOK.spec].newest_id is None  # the run did not complete: read again next time
