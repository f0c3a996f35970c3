"""The GitHub adapter (handler.github) against the stand-in on loopback: pages and cursors, token and
App JWT, rate limits and failures. Waiting goes through an injected sleep: no test sleeps."""

from __future__ import annotations

import time
from collections.abc import Callable

import jwt
import pytest

from handler.core.redelivery import Hook, RunStopped
from handler.github.auth import Credentials
from handler.github.deliveries import GitHubDeliveries, GitHubError
from tests.fakes import Clock
from tests.redelivery.conftest import APP_HOOK, APP_ID, ORG_HOOK, REPO_HOOK, TOKEN, AppKey, make_key
from tests.redelivery.github_standin import Fault, GitHubStandIn

REPO, ORG, APP = Hook.parse(REPO_HOOK), Hook.parse(ORG_HOOK), Hook.parse(APP_HOOK)


class Sleeps(list[float]):
    """An injected sleep: records how long it was asked to wait, and moves the clock that much."""

    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self.clock = clock

    def __call__(self, seconds: float) -> None:
        self.append(seconds)
        self.clock.advance(seconds)


@pytest.fixture
def sleeps(clock: Clock) -> Sleeps:
    return Sleeps(clock)


def api_for(
    github: GitHubStandIn,
    *,
    sleeps: Callable[[float], None],
    clock: Clock,
    key: AppKey | None = None,
    token: str = TOKEN,
    time_left: float = 120.0,
    api_url: str | None = None,
) -> GitHubDeliveries:
    credentials = Credentials(
        token=lambda: token, app_id=APP_ID, private_key=(lambda: key.pem) if key else None, clock=clock
    )
    return GitHubDeliveries(
        api_url=api_url or github.url,
        credentials=credentials,
        time_left=lambda: time_left,
        sleep=sleeps,
        clock=clock,
    )


@pytest.fixture
def api(github: GitHubStandIn, sleeps: Sleeps, clock: Clock, app_key: AppKey) -> GitHubDeliveries:
    return api_for(github, sleeps=sleeps, clock=clock, key=app_key)


def fill(github: GitHubStandIn, spec: str, count: int) -> list[int]:
    """``count`` successful deliveries; their ids, newest first."""
    ids = [github.deliver(spec, age=count - n).id for n in range(count)]
    return ids[::-1]


def read_all(api: GitHubDeliveries, hook: Hook) -> list[list[int]]:
    page = api.first_page(hook)
    pages = [[item["id"] for item in page.items]]
    while page.next_url is not None:
        page = api.next_page(hook, page.next_url)
        pages.append([item["id"] for item in page.items])
    return pages


# Pages -------------------------------------------------------------------------------------------


def test_pages_of_100_newest_first_follow_the_link_cursor(github: GitHubStandIn, api: GitHubDeliveries) -> None:
    ids = fill(github, REPO_HOOK, 230)
    pages = read_all(api, REPO)
    assert [len(page) for page in pages] == [100, 100, 30]
    assert [i for page in pages for i in page] == ids
    gets = [r for r in github.received if r.method == "GET"]
    assert [r.query.get("per_page") for r in gets] == [["100"]] * 3
    assert [r.query.get("cursor", [None])[0] for r in gets] == [None, f"v1_{ids[99]}", f"v1_{ids[199]}"]
    assert api.requests == 3


def test_items_are_what_github_lists(github: GitHubStandIn, api: GitHubDeliveries) -> None:
    delivery = github.deliver(ORG_HOOK, 503, event="issues", action="opened")
    [item] = api.first_page(ORG).items
    assert item["id"] == delivery.id
    assert item["status"] == "Invalid HTTP Response: 503"
    assert (item["guid"], item["event"], item["action"]) == (delivery.guid, "issues", "opened")
    assert item["delivered_at"].endswith("Z")


def test_a_next_page_elsewhere_is_never_requested(github: GitHubStandIn, api: GitHubDeliveries) -> None:
    """The token goes to the configured API only, whatever a Link header says."""
    github.hook(REPO_HOOK)
    for url in ("https://attacker.example/repos/x/deliveries", github.url + ".attacker.example/x"):
        with pytest.raises(GitHubError, match="not on the configured API"):
            api.next_page(REPO, url)
    assert github.received == []


def test_a_base_url_with_a_path_is_kept(github: GitHubStandIn, sleeps: Sleeps, clock: Clock) -> None:
    """GitHub Enterprise Server's API lives under /api/v3."""
    api = api_for(github, sleeps=sleeps, clock=clock, api_url=github.url + "/api/v3/")
    with pytest.raises(GitHubError, match="GET api/v3/repos/octo-org/hello-world/hooks/42/deliveries answered 404"):
        api.first_page(REPO)  # the stand-in has no /api/v3: a 404 there proves the path
    assert [r.path for r in github.received] == ["/api/v3/repos/octo-org/hello-world/hooks/42/deliveries"]


# Credentials -------------------------------------------------------------------------------------


def test_repository_and_organization_hooks_send_the_token(github: GitHubStandIn, api: GitHubDeliveries) -> None:
    github.hook(REPO_HOOK), github.hook(ORG_HOOK)
    api.first_page(REPO), api.first_page(ORG)
    assert [r.authorization for r in github.received] == [f"token {TOKEN}"] * 2


def test_the_app_hook_sends_a_jwt_that_github_accepts(github: GitHubStandIn, api: GitHubDeliveries) -> None:
    delivery = github.deliver(APP_HOOK, 0)
    [item] = api.first_page(APP).items
    assert item["guid"] == delivery.guid
    [request] = github.received
    assert request.authorization.startswith("bearer ")
    claims = request.claims  # verified by the stand-in with the App's public key
    assert claims["iss"] == APP_ID
    assert claims["exp"] - claims["iat"] == 9 * 60
    assert time.time() - 65 <= claims["iat"] <= time.time() - 55  # backdated a minute for clock skew


def test_the_jwt_is_reused_for_five_minutes(github: GitHubStandIn, sleeps: Sleeps, clock: Clock, app_key) -> None:
    reads: list[int] = []

    def private_key() -> str:
        reads.append(1)
        return app_key.pem

    credentials = Credentials(app_id=APP_ID, private_key=private_key, clock=clock)
    api = GitHubDeliveries(api_url=github.url, credentials=credentials, time_left=lambda: 120, sleep=sleeps)
    github.hook(APP_HOOK)
    api.first_page(APP)
    clock.advance(300)
    api.first_page(APP)
    assert len(reads) == 1
    clock.advance(1)
    api.first_page(APP)
    assert len(reads) == 2
    assert [r.answered for r in github.received] == [200, 200, 200]


def test_a_wrong_token_is_a_github_error_that_does_not_quote_it(
    github: GitHubStandIn, sleeps: Sleeps, clock: Clock
) -> None:
    github.hook(REPO_HOOK)
    wrong = "ghp_wrong0token0000000000000000000000000"
    api = api_for(github, sleeps=sleeps, clock=clock, token=wrong)
    with pytest.raises(GitHubError) as refused:
        api.first_page(REPO)
    assert str(refused.value) == "GET repos/octo-org/hello-world/hooks/42/deliveries answered 401 (Bad credentials)"
    assert wrong not in str(refused.value)
    assert sleeps == []  # not retried


def test_a_jwt_from_another_key_is_refused(github: GitHubStandIn, sleeps: Sleeps, clock: Clock) -> None:
    github.hook(APP_HOOK)
    api = api_for(github, sleeps=sleeps, clock=clock, key=make_key())
    with pytest.raises(GitHubError, match="answered 401"):
        api.first_page(APP)


def test_no_app_key_is_a_permission_error(github: GitHubStandIn, sleeps: Sleeps, clock: Clock) -> None:
    api = api_for(github, sleeps=sleeps, clock=clock, key=None)
    with pytest.raises(PermissionError, match="no GitHub App id or private key"):
        api.first_page(APP)
    assert github.received == []


@pytest.mark.parametrize(
    ("claims", "algorithm"),
    [
        ({"iss": "999"}, "RS256"),  # another App
        ({"exp_after_iat": 11 * 60}, "RS256"),  # lives longer than GitHub allows
        ({"iat_shift": 10 * 60}, "RS256"),  # issued in the future
        ({"iat_shift": -20 * 60}, "RS256"),  # expired
        ({}, "HS256"),  # not signed with the App's key
        ({"drop": "iss"}, "RS256"),
    ],
)
def test_the_standin_checks_the_jwt_as_github_does(
    github: GitHubStandIn, app_key: AppKey, claims: dict, algorithm: str
) -> None:
    """The stand-in's checks are real: each of these JWTs is refused (the adapter's is accepted above)."""
    now = int(time.time()) + claims.get("iat_shift", 0) - 60
    payload = {"iss": claims.get("iss", APP_ID), "iat": now, "exp": now + claims.get("exp_after_iat", 9 * 60)}
    payload.pop(claims.get("drop", ""), None)
    key = app_key.pem if algorithm == "RS256" else "a-shared-secret-that-is-long-enough-for-hs256"
    token = jwt.encode(payload, key, algorithm=algorithm)
    github.hook(APP_HOOK)
    status, _, _ = github.answer("GET", "/app/hook/deliveries", {"authorization": f"bearer {token}"})
    assert status == 401
    status, _, _ = github.answer("GET", "/app/hook/deliveries", {"authorization": f"token {TOKEN}"})
    assert status == 401  # a token does not work for the App's hook


# Rate limits and failures ------------------------------------------------------------------------


def test_a_primary_rate_limit_waits_until_the_reset(
    github: GitHubStandIn, api: GitHubDeliveries, sleeps: Sleeps
) -> None:
    fill(github, REPO_HOOK, 2)
    github.fail_next(Fault.RATE_LIMIT)  # x-ratelimit-reset: a second ahead of the (shared) clock
    assert len(api.first_page(REPO).items) == 2
    assert sleeps == [2.0]  # until the reset, and a second more
    assert [r.answered for r in github.received] == [403, 200]


def test_a_rate_limit_reset_later_than_the_run_stops_it_without_waiting(
    github: GitHubStandIn, api: GitHubDeliveries, sleeps: Sleeps
) -> None:
    github.hook(REPO_HOOK)
    github.fail_next(Fault.RATE_LIMIT, reset_in=3600)
    with pytest.raises(RunStopped, match="rate limit: waiting 3601 s would pass the run's time"):
        api.first_page(REPO)
    assert (sleeps, api.requests) == ([], 1)


@pytest.mark.parametrize("fault", [Fault.TOO_MANY, Fault.SECONDARY])
def test_a_secondary_rate_limit_waits_retry_after(
    fault: Fault, github: GitHubStandIn, api: GitHubDeliveries, sleeps: Sleeps
) -> None:
    fill(github, ORG_HOOK, 1)
    github.fail_next(fault)
    assert len(api.first_page(ORG).items) == 1
    assert sleeps == [1.0]
    assert [r.answered for r in github.received] == [429 if fault is Fault.TOO_MANY else 403, 200]


def test_a_5xx_is_retried_with_back_off(github: GitHubStandIn, api: GitHubDeliveries, sleeps: Sleeps) -> None:
    fill(github, REPO_HOOK, 1)
    github.fail_next(Fault.BROKEN)
    github.fail_next(Fault.BROKEN)
    assert len(api.first_page(REPO).items) == 1
    assert sleeps == [1.0, 2.0]
    assert [r.answered for r in github.received] == [502, 502, 200]


def test_github_down_stops_the_run_without_waiting_after_the_last_attempt(
    github: GitHubStandIn, api: GitHubDeliveries, sleeps: Sleeps
) -> None:
    github.hook(REPO_HOOK)
    for _ in range(5):
        github.fail_next(Fault.BROKEN)
    with pytest.raises(RunStopped, match=r"kept failing \(GitHub 5xx\)"):
        api.first_page(REPO)
    assert api.requests == 4
    assert sleeps == [1.0, 2.0, 4.0]


def test_an_unreachable_api_is_retried_then_stops_the_run(sleeps: Sleeps, clock: Clock) -> None:
    from tests.loopback import refused_endpoint

    credentials = Credentials(token=lambda: TOKEN)
    api = GitHubDeliveries(
        api_url=refused_endpoint(), credentials=credentials, time_left=lambda: 120, sleep=sleeps, clock=clock
    )
    with pytest.raises(RunStopped, match=r"kept failing \(network failure\)"):
        api.first_page(REPO)
    assert (api.requests, sleeps) == (4, [1.0, 2.0, 4.0])


def test_no_request_is_started_without_time_for_it(github: GitHubStandIn, sleeps: Sleeps, clock: Clock) -> None:
    api = api_for(github, sleeps=sleeps, clock=clock, time_left=9.0)
    with pytest.raises(RunStopped, match="no time left"):
        api.first_page(REPO)
    assert github.received == []


def test_a_missing_hook_is_a_github_error(github: GitHubStandIn, api: GitHubDeliveries) -> None:
    with pytest.raises(GitHubError, match="answered 404 \\(Not Found\\)"):
        api.first_page(Hook.parse("repos/octo-org/nothing/hooks/1"))


# Redelivery --------------------------------------------------------------------------------------


def test_redeliver_posts_to_attempts_once(github: GitHubStandIn, api: GitHubDeliveries, sleeps: Sleeps) -> None:
    failed = github.deliver(REPO_HOOK, 503)
    github.fail_next(Fault.TOO_MANY, method="POST")
    api.redeliver(REPO, failed.id)
    assert [(r.method, r.path, r.answered) for r in github.received] == [
        ("POST", f"/repos/octo-org/hello-world/hooks/42/deliveries/{failed.id}/attempts", 429),
        ("POST", f"/repos/octo-org/hello-world/hooks/42/deliveries/{failed.id}/attempts", 202),
    ]
    assert sleeps == [1.0]
    assert [(r.hook, r.delivery_id, r.guid) for r in github.redelivered] == [
        ("/repos/octo-org/hello-world/hooks/42", failed.id, failed.guid)
    ]
    assert [(d.status_code, d.redelivery) for d in github.attempts(failed.guid)] == [(503, False), (200, True)]


def test_redeliver_on_the_app_hook(github: GitHubStandIn, api: GitHubDeliveries) -> None:
    failed = github.deliver(APP_HOOK, 0)
    github.script(failed.guid, 504)
    api.redeliver(APP, failed.id)
    assert [(d.status_code, d.status) for d in github.attempts(failed.guid)] == [
        (0, "failed to connect"),
        (504, "Invalid HTTP Response: 504"),
    ]
    assert github.received[0].path == f"/app/hook/deliveries/{failed.id}/attempts"
