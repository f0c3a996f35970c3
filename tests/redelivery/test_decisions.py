"""The recovery decisions (handler.core.redelivery) and hook specs (handler.core.hooks): pure functions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from handler.core.hooks import Hook, parse_hooks
from handler.core.redelivery import (
    LISTED_GRACE_SECONDS,
    Attempt,
    GuidState,
    HookState,
    NotAnAttempt,
    Policy,
    Verdict,
    decide,
    intend,
    stale,
)
from tests.redelivery.fake_github import NOW, attempt

HOUR = 3600.0
POLICY = Policy(lookback_seconds=72 * HOUR, max_attempts=3)

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


def verdict(attempts: list[Attempt], remembered: GuidState | None = None, policy: Policy = POLICY) -> Verdict:
    return decide(attempts, remembered, now=NOW, policy=policy)


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
        {k: v for k, v in ITEM.items() if k != "delivered_at"},
        {k: v for k, v in ITEM.items() if k != "status_code"},
        {**ITEM, "id": "twelve"},
        {**ITEM, "id": "12345678"},  # not guessed at
        {**ITEM, "id": True},
        {**ITEM, "id": -1},
        {**ITEM, "guid": 12},
        {**ITEM, "guid": ""},
        {**ITEM, "delivered_at": "yesterday"},
        {**ITEM, "delivered_at": 1559523436},
        {**ITEM, "delivered_at": "2019-06-03T00:57:16"},  # no zone
        {**ITEM, "status_code": "teapot"},
        {**ITEM, "status_code": "503"},
        {**ITEM, "status_code": 200.0},
        {**ITEM, "redelivery": "false"},  # a string is not a boolean
        {**ITEM, "redelivery": 0},
    ],
)
def test_anything_else_is_not_an_attempt(broken: Mapping[str, Any]) -> None:
    with pytest.raises(NotAnAttempt, match="not a delivery attempt"):
        Attempt.from_api(broken)


@pytest.mark.parametrize(
    ("status_code", "expected"),
    [
        (200, Verdict.SUCCEEDED),
        (202, Verdict.SUCCEEDED),
        (204, Verdict.SUCCEEDED),
        (0, Verdict.REDELIVER),  # timeout, connection refused
        (500, Verdict.REDELIVER),
        (502, Verdict.REDELIVER),
        (503, Verdict.REDELIVER),  # the receiver's own "try again"
        (504, Verdict.REDELIVER),
        (520, Verdict.REDELIVER),
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
def test_a_single_attempt_is_judged_by_its_status(status_code: int, expected: Verdict) -> None:
    assert verdict([attempt(1, "g", status_code)]) == expected


def test_any_success_settles_a_guid() -> None:
    assert verdict([attempt(6, "a", 200, redelivery=True), attempt(2, "a", 503)]) == Verdict.SUCCEEDED
    assert verdict([attempt(6, "a", 503, redelivery=True), attempt(2, "a", 200)]) == Verdict.SUCCEEDED


def test_the_newest_attempt_decides_between_refused_and_retryable() -> None:
    assert verdict([attempt(2, "g", 503, redelivery=True), attempt(1, "g", 401)]) == Verdict.REDELIVER
    assert verdict([attempt(2, "g", 401, redelivery=True), attempt(1, "g", 503)]) == Verdict.REFUSED


def test_redeliveries_github_shows_count_toward_the_cap() -> None:
    twice = [attempt(3, "g", 503, redelivery=True), attempt(2, "g", 503, redelivery=True), attempt(1, "g", 503)]
    assert verdict(twice) == Verdict.REDELIVER
    assert verdict([attempt(4, "g", 503, redelivery=True), *twice]) == Verdict.CAPPED
    assert verdict(twice, policy=replace(POLICY, max_attempts=2)) == Verdict.CAPPED


def test_recoveries_asked_for_by_earlier_runs_count_toward_the_cap() -> None:
    remembered = GuidState(asked=3, last_id=8, first_seen=NOW - HOUR)
    assert verdict([attempt(9, "g", 503, redelivery=True)], remembered) == Verdict.CAPPED
    remembered.asked = 2
    assert verdict([attempt(9, "g", 503, redelivery=True)], remembered) == Verdict.REDELIVER


def test_an_attempt_already_acted_on_is_pending_and_a_settled_guid_stays_settled() -> None:
    """A run that read the state after another's write-ahead must not ask for the same attempt again."""
    remembered = GuidState(asked=1, last_id=9, first_seen=NOW - HOUR, asked_at=NOW - 60, awaiting=True)
    assert verdict([attempt(9, "g", 503)], remembered) == Verdict.PENDING
    assert verdict([attempt(10, "g", 503, redelivery=True)], remembered) == Verdict.REDELIVER
    remembered.asked_at = NOW - 7 * 24 * HOUR  # however long ago: a listing decides when it was lost
    assert verdict([attempt(9, "g", 503)], remembered) == Verdict.PENDING
    settled = GuidState(asked=1, last_id=9, first_seen=NOW - HOUR, settled="refused")
    assert verdict([attempt(10, "g", 503, redelivery=True)], settled) == Verdict.SETTLED


def test_the_window_counts_from_the_first_attempt_an_earlier_run_saw() -> None:
    window = POLICY.lookback_seconds
    latest = [attempt(9, "g", 503, redelivery=True)]
    assert verdict(latest, GuidState(asked=1, last_id=1, first_seen=NOW - window)) == Verdict.REDELIVER
    assert verdict(latest, GuidState(asked=1, last_id=1, first_seen=NOW - window - 1)) == Verdict.TOO_OLD
    assert verdict([attempt(1, "h", 503, age=window + 1)]) == Verdict.TOO_OLD


def test_intend_records_the_attempt_and_one_more_recovery_before_asking() -> None:
    state = HookState()
    intend(state, "g", [attempt(1, "g", 503, age=100)], now=NOW - 50)
    intend(state, "g", [attempt(5, "g", 503, age=10, redelivery=True)], now=NOW)
    assert state.guids == {"g": GuidState(asked=2, last_id=5, first_seen=NOW - 100, asked_at=NOW, awaiting=True)}


def test_a_request_is_stale_once_a_listing_that_began_well_after_it_shows_no_outcome() -> None:
    entry = GuidState(asked=1, last_id=9, first_seen=NOW - HOUR, asked_at=NOW, awaiting=True)
    assert not stale(entry, HookState(listed_at=NOW + LISTED_GRACE_SECONDS))  # GitHub may not list it yet
    assert stale(entry, HookState(listed_at=NOW + LISTED_GRACE_SECONDS + 1))
    entry.awaiting = False  # its outcome was listed
    assert not stale(entry, HookState(listed_at=NOW + HOUR))


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
    assert hook.delivery_path(9) == deliveries + "/9"
    assert hook.is_app is (spec == "app")
    assert hook.credential == ("app" if spec == "app" else "token")


def test_owner_org_and_repository_compare_case_insensitively_as_on_github() -> None:
    assert Hook.parse("repos/Octo-Org/Hello-World/hooks/42") == Hook.parse("repos/octo-org/hello-world/hooks/42")
    assert Hook.parse("ORGS/Octo-Org/HOOKS/7") == Hook.parse("orgs/octo-org/hooks/7")
    assert Hook.parse("APP").is_app
    assert parse_hooks("repos/O/R/hooks/1,repos/o/r/hooks/1") == (Hook("repos/o/r/hooks/1"),)


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
