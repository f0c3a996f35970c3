"""The GitHub adapter (handler.github) against the stand-in on loopback: pages and cursors, token and
App JWT, one delivery's record, refusals, rate limits per credential and failures. Waiting goes
through an injected sleep that moves the injected clock: no test sleeps."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import jwt
import pytest

from handler.core.hooks import Hook
from handler.core.ports import GitHubError, Refused, RunStopped
from handler.github.auth import Credentials
from handler.github.deliveries import GitHubDeliveries, next_link
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
    time_left: float | Callable[[], float] = 120.0,
    api_url: str | None = None,
    post_interval: float = 1.0,
) -> GitHubDeliveries:
    credentials = Credentials(
        token=lambda: token, app_id=APP_ID, private_key=(lambda: key.pem) if key else None, clock=clock
    )
    return GitHubDeliveries(
        api_url=api_url or github.url,
        credentials=credentials,
        time_left=time_left if callable(time_left) else lambda: time_left,
        sleep=sleeps,
        clock=clock,
        post_interval=post_interval,
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


@pytest.mark.parametrize(
    "elsewhere",
    [
        lambda url: "https://attacker.example/repos/x/deliveries",
        lambda url: url + ".attacker.example/x",
        lambda url: url.replace("http://", "https://") + "/repos/x",
        lambda url: url.rsplit(":", 1)[0] + ":1/repos/x",
        lambda url: url.replace("127.0.0.1", "localhost") + "/repos/x",
        lambda url: url.replace("http://", "http://user:secret@") + "/repos/x",
        lambda url: url + ":99999/repos/x",
        lambda url: url + "/repos/x\r\nX-Injected: 1",
        lambda url: url + "/repos/x y",
        lambda url: url + "/repos/\u00e9",
        lambda url: url,
    ],
    ids=[
        "host",
        "host-prefix",
        "scheme",
        "port",
        "host-name",
        "user-info",
        "bad-port",
        "crlf",
        "space",
        "non-ascii",
        "no-path",
    ],
)
def test_a_next_page_elsewhere_is_never_requested(
    elsewhere: Callable[[str], str], github: GitHubStandIn, api: GitHubDeliveries
) -> None:
    """The token goes to the configured API only, whatever a Link header says; and a URL http.client
    would refuse is GitHub's error, not a network failure to retry."""
    github.hook(REPO_HOOK)
    with pytest.raises(GitHubError, match="not on the configured API"):
        api.next_page(REPO, elsewhere(github.url))
    assert (github.received, api.requests) == ([], 0)


def test_a_next_page_outside_the_api_path_is_never_requested(
    github: GitHubStandIn, sleeps: Sleeps, clock: Clock
) -> None:
    api = api_for(github, sleeps=sleeps, clock=clock, api_url=github.url + "/api/v3")
    for url in (github.url + "/repos/x/deliveries", github.url + "/api/v30/repos/x/deliveries"):
        with pytest.raises(GitHubError, match="not on the configured API"):
            api.next_page(REPO, url)
    assert github.received == []


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('<https://h/x?cursor=b>; rel="next", <https://h/x>; rel="first"', "https://h/x?cursor=b"),
        ('<https://h/x>; rel="first", <https://h/x?cursor=b>; rel="next"', "https://h/x?cursor=b"),
        ("<https://h/x?cursor=b>; rel=next", "https://h/x?cursor=b"),
        ('<https://h/x?cursor=b> ; REL = "Next"', "https://h/x?cursor=b"),
        ('<https://h/x?cursor=b>; rel="prev next"', "https://h/x?cursor=b"),
        ('<https://h/x?a=1,2>; rel="next"', "https://h/x?a=1,2"),
        ('<https://h/x?cursor=b>; rel="prev"', None),
        ('<https://h/x?cursor=b>; rel="nextpage"', None),
        ('https://h/x; rel="next"', None),
        ("garbage, <unterminated", None),
        ("", None),
        (None, None),
    ],
)
def test_next_link_is_the_rel_next_target(header: str | None, expected: str | None) -> None:
    assert next_link(header) == expected


def test_a_relative_next_link_is_resolved_against_the_page(github: GitHubStandIn, api: GitHubDeliveries) -> None:
    github.hook(REPO_HOOK)
    link = '</repos/octo-org/hello-world/hooks/42/deliveries?per_page=100&cursor=v1_5>; rel="next"'
    github.fail_next(Fault.RAW, headers={"link": link}, body=b"[]")
    page = api.first_page(REPO)
    assert page.next_url == github.url + "/repos/octo-org/hello-world/hooks/42/deliveries?per_page=100&cursor=v1_5"
    assert api.next_page(REPO, page.next_url).items == []


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
    with pytest.raises(RunStopped, match="rate limit: waiting 3601 s would pass the run's time") as stopped:
        api.first_page(REPO)
    assert stopped.value.reason == "rate_limit"
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
    with pytest.raises(RunStopped, match=r"kept failing \(GitHub 5xx\)") as stopped:
        api.first_page(REPO)
    assert stopped.value.reason == "network"
    assert api.requests == 4
    assert sleeps == [1.0, 2.0, 4.0]


def test_an_unreachable_api_is_retried_then_stops_the_run(sleeps: Sleeps, clock: Clock) -> None:
    from tests.loopback import refused_endpoint

    credentials = Credentials(token=lambda: TOKEN)
    api = GitHubDeliveries(
        api_url=refused_endpoint(), credentials=credentials, time_left=lambda: 120, sleep=sleeps, clock=clock
    )
    with pytest.raises(RunStopped, match=r"kept failing \(network failure\)") as stopped:
        api.first_page(REPO)
    assert stopped.value.reason == "network"
    assert (api.requests, sleeps) == (4, [1.0, 2.0, 4.0])


def test_no_request_is_started_without_time_for_it(github: GitHubStandIn, sleeps: Sleeps, clock: Clock) -> None:
    api = api_for(github, sleeps=sleeps, clock=clock, time_left=2.9)
    with pytest.raises(RunStopped, match="no time left") as stopped:
        api.first_page(REPO)
    assert stopped.value.reason == "time"
    assert github.received == []


def test_a_missing_hook_is_a_github_error(github: GitHubStandIn, api: GitHubDeliveries) -> None:
    with pytest.raises(GitHubError, match="answered 404 \\(Not Found\\)") as error:
        api.first_page(Hook.parse("repos/octo-org/nothing/hooks/1"))
    assert type(error.value) is GitHubError  # the hook's problem, not one delivery's


@pytest.mark.parametrize("status", [400, 404, 410, 422])
def test_a_4xx_on_a_listing_is_the_hooks_error(
    status: int, github: GitHubStandIn, api: GitHubDeliveries, sleeps: Sleeps
) -> None:
    fill(github, REPO_HOOK, 1)
    github.fail_next(Fault.RAW, status=status, body=b'{"message": "Validation Failed"}')
    with pytest.raises(GitHubError, match=f"answered {status} \\(Validation Failed\\)") as error:
        api.first_page(REPO)
    assert type(error.value) is GitHubError
    assert (api.requests, sleeps) == (1, [])


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (403, "You have exceeded a secondary rate limit. Please wait a few minutes."),
        (403, "You have triggered an abuse detection mechanism."),
        (429, "Too many requests"),
    ],
)
def test_a_secondary_limit_without_retry_after_waits_a_minute(
    status: int, message: str, github: GitHubStandIn, api: GitHubDeliveries, sleeps: Sleeps
) -> None:
    fill(github, ORG_HOOK, 1)
    github.fail_next(Fault.RAW, status=status, body=json.dumps({"message": message}).encode())
    assert len(api.first_page(ORG).items) == 1
    assert sleeps == [60.0]
    assert [r.answered for r in github.received] == [status, 200]


def test_a_403_that_is_no_rate_limit_is_not_retried(
    github: GitHubStandIn, api: GitHubDeliveries, sleeps: Sleeps
) -> None:
    fill(github, ORG_HOOK, 1)
    headers = {"x-ratelimit-remaining": "4999", "x-ratelimit-reset": "1900000000"}
    github.fail_next(
        Fault.RAW, status=403, headers=headers, body=b'{"message": "Must have admin rights to Repository."}'
    )
    with pytest.raises(GitHubError, match=r"answered 403 \(Must have admin rights to Repository\.\)"):
        api.first_page(ORG)
    assert (api.requests, sleeps) == (1, [])


# Rate limits per credential ----------------------------------------------------------------------


def test_a_spent_credential_stops_every_hook_using_it_and_no_other(
    github: GitHubStandIn, api: GitHubDeliveries, sleeps: Sleeps
) -> None:
    """One instance serves all the hooks of a run: a rate limit is the credential's, not the hook's."""
    failed = github.deliver(REPO_HOOK, 503)
    fill(github, ORG_HOOK, 1), fill(github, APP_HOOK, 1)
    github.fail_next(Fault.RATE_LIMIT, reset_in=3600)
    with pytest.raises(RunStopped, match="rate limit: waiting 3601 s would pass the run's time"):
        api.first_page(REPO)
    for call in (lambda: api.first_page(ORG), lambda: api.redeliver(REPO, failed.id), lambda: api.first_page(REPO)):
        with pytest.raises(RunStopped, match="rate limit: waiting 3601 s") as stopped:
            call()  # at once, without a request
        assert stopped.value.reason == "rate_limit"
    assert [r.path for r in github.received] == ["/repos/octo-org/hello-world/hooks/42/deliveries"]
    assert len(api.first_page(APP).items) == 1  # the App's JWT is another credential
    assert sleeps == []


def test_a_2xx_that_spends_the_limit_makes_the_next_request_wait_for_the_reset(
    github: GitHubStandIn, sleeps: Sleeps, clock: Clock
) -> None:
    """GitHub: when x-ratelimit-remaining is 0, make no request before x-ratelimit-reset, even after a 2xx;
    and a second hook with the same token waits too (without the gate it would get a 403 first)."""
    fill(github, REPO_HOOK, 1), fill(github, ORG_HOOK, 1)
    github.enforce_rate_limits(per_hour=2)
    api = api_for(github, sleeps=sleeps, clock=clock, time_left=10_000)
    start = clock()
    api.first_page(REPO)
    clock.advance(10)
    api.first_page(REPO)  # remaining: 0
    assert sleeps == []
    api.first_page(ORG)
    assert sleeps == [3600 + 1 - 10]  # until the reset, and a second more
    assert [(r.answered, r.at - start) for r in github.received] == [(200, 0), (200, 10), (200, 3601)]


def test_a_spent_limit_that_outlasts_the_run_stops_before_the_request(
    github: GitHubStandIn, api: GitHubDeliveries, sleeps: Sleeps
) -> None:
    fill(github, REPO_HOOK, 1), fill(github, ORG_HOOK, 1)
    github.enforce_rate_limits(per_hour=1)
    api.first_page(REPO)
    with pytest.raises(RunStopped, match="rate limit: waiting 3601 s would pass the run's time"):
        api.first_page(ORG)
    assert [r.answered for r in github.received] == [200]
    assert sleeps == []


def test_a_secondary_limit_longer_than_the_run_stops_the_credential_at_once(
    github: GitHubStandIn, api: GitHubDeliveries, sleeps: Sleeps
) -> None:
    failed = github.deliver(REPO_HOOK, 503)
    fill(github, APP_HOOK, 1)
    github.fail_next(Fault.RAW, status=429, headers={"retry-after": "600"}, body=b'{"message": "Too many requests"}')
    with pytest.raises(RunStopped, match="secondary rate limit: waiting 600 s would pass the run's time"):
        api.redeliver(REPO, failed.id)
    with pytest.raises(RunStopped, match="secondary rate limit: waiting 600 s") as stopped:
        api.first_page(ORG)
    assert stopped.value.reason == "rate_limit"
    assert (api.requests, sleeps) == (1, [])
    assert len(api.first_page(APP).items) == 1


def test_posts_with_one_credential_are_paced_apart(
    github: GitHubStandIn, api: GitHubDeliveries, sleeps: Sleeps, clock: Clock
) -> None:
    """GitHub's best practice for content-creating requests: one at a time, a second apart (per credential)."""
    repo, org, app = github.deliver(REPO_HOOK, 503), github.deliver(ORG_HOOK, 503), github.deliver(APP_HOOK, 503)
    api.redeliver(REPO, repo.id)
    api.first_page(REPO)  # a GET is not paced
    api.redeliver(APP, app.id)  # another credential
    assert sleeps == []
    api.redeliver(ORG, org.id)  # the token's second POST
    assert sleeps == [1.0]
    clock.advance(5)
    api.redeliver(REPO, repo.id)
    assert sleeps == [1.0]
    assert github.count("POST") == 4


def test_a_post_interval_of_zero_does_not_pace(github: GitHubStandIn, sleeps: Sleeps, clock: Clock) -> None:
    failed = github.deliver(REPO_HOOK, 503)
    api = api_for(github, sleeps=sleeps, clock=clock, post_interval=0)
    api.redeliver(REPO, failed.id), api.redeliver(REPO, failed.id)
    assert sleeps == []


def test_posts_past_the_secondary_limit_wait_retry_after(
    github: GitHubStandIn, api: GitHubDeliveries, sleeps: Sleeps
) -> None:
    failed = github.deliver(REPO_HOOK, 503)
    github.enforce_rate_limits(posts_per_minute=3)
    for _ in range(4):
        api.redeliver(REPO, failed.id)
    assert sleeps == [1.0, 1.0, 1.0, 57.0]  # paced; then the 4th, 3 s after the 1st, waits for the minute's end
    assert [r.answered for r in github.received] == [202, 202, 202, 403, 202]


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


@pytest.mark.parametrize("status", [404, 410, 422])
@pytest.mark.parametrize("by", ["id", "guid"])
def test_a_redelivery_github_refuses_is_refused_for_that_delivery(
    status: int, by: str, github: GitHubStandIn, api: GitHubDeliveries, sleeps: Sleeps
) -> None:
    failed = github.deliver(REPO_HOOK, 503)
    github.refuse(failed.id if by == "id" else failed.guid, status)
    with pytest.raises(Refused) as refused:
        api.redeliver(REPO, failed.id)
    assert refused.value.status == status
    assert str(refused.value) == (
        f"POST repos/octo-org/hello-world/hooks/42/deliveries/{failed.id}/attempts answered {status}"
        " (This delivery cannot be redelivered)"
    )
    assert (api.requests, sleeps, github.redelivered) == (1, [], [])  # not retried
    assert len(github.attempts(failed.guid)) == 1


def test_a_400_about_one_delivery_is_refused(github: GitHubStandIn, api: GitHubDeliveries) -> None:
    failed = github.deliver(REPO_HOOK, 503)
    for call in (api.redeliver, api.delivery):
        github.fail_next(Fault.RAW, status=400, body=b'{"message": "Problems parsing JSON"}')
        with pytest.raises(Refused, match="answered 400 \\(Problems parsing JSON\\)") as refused:
            call(REPO, failed.id)
        assert refused.value.status == 400


@pytest.mark.parametrize(
    ("status", "message"), [(401, "Bad credentials"), (403, "Resource not accessible by personal access token")]
)
def test_a_credential_problem_about_one_delivery_is_the_hooks(
    status: int, message: str, github: GitHubStandIn, api: GitHubDeliveries, sleeps: Sleeps
) -> None:
    """A 401 or a 403 (no rate limit) is about the token, not the delivery: every other would fail too."""
    failed = github.deliver(REPO_HOOK, 503)
    for call in (api.redeliver, api.delivery):
        github.fail_next(Fault.RAW, status=status, body=json.dumps({"message": message}).encode())
        with pytest.raises(GitHubError, match=f"answered {status} \\({message}\\)") as error:
            call(REPO, failed.id)
        assert type(error.value) is GitHubError
    assert (api.requests, sleeps) == (2, [])


@pytest.mark.parametrize("bad", ["1/../../../hooks", "12", True, -1, 1.5, None])
def test_only_a_delivery_id_reaches_the_path(bad: object, github: GitHubStandIn, api: GitHubDeliveries) -> None:
    github.hook(REPO_HOOK)
    for call in (api.redeliver, api.delivery):
        with pytest.raises(ValueError, match="not a delivery id"):
            call(REPO, bad)  # type: ignore[arg-type]
    assert github.received == []


# One delivery's record ---------------------------------------------------------------------------


def test_delivery_is_the_attempts_full_record(github: GitHubStandIn, api: GitHubDeliveries) -> None:
    sent = {"X-GitHub-Delivery": "guid-1", "X-GitHub-Event": "issues", "X-Hub-Signature-256": "sha256=ab12"}
    payload = {"action": "opened", "issue": {"number": 1}}
    original = github.deliver(
        REPO_HOOK,
        503,
        guid="guid-1",
        event="issues",
        action="opened",
        request_headers=sent,
        payload=payload,
        response_headers={"Content-Type": "application/json"},
        response_body='{"error": "forward_failed"}',
    )
    record = api.delivery(REPO, original.id)
    assert (record["id"], record["guid"], record["status_code"], record["event"]) == (
        original.id,
        "guid-1",
        503,
        "issues",
    )
    assert record["request"] == {"headers": sent, "payload": payload}
    assert record["response"] == {
        "headers": {"Content-Type": "application/json"},
        "payload": '{"error": "forward_failed"}',
    }
    assert [(r.method, r.path) for r in github.received] == [
        ("GET", f"/repos/octo-org/hello-world/hooks/42/deliveries/{original.id}")
    ]


def test_a_redeliverys_record_shows_the_same_request(github: GitHubStandIn, api: GitHubDeliveries) -> None:
    original = github.deliver(APP_HOOK, 0, request_headers={"X-GitHub-Event": "push"}, payload={"ref": "main"})
    api.redeliver(APP, original.id)
    redelivery = github.attempts(original.guid)[-1]
    record = api.delivery(APP, redelivery.id)
    assert (record["redelivery"], record["request"]) == (
        True,
        {"headers": {"X-GitHub-Event": "push"}, "payload": {"ref": "main"}},
    )


def test_a_record_without_the_request_kept_has_a_null_payload(github: GitHubStandIn, api: GitHubDeliveries) -> None:
    delivery = github.deliver(ORG_HOOK, 502)
    assert api.delivery(ORG, delivery.id)["request"] == {"headers": {}, "payload": None}


def test_the_delivery_of_an_unknown_attempt_is_refused(github: GitHubStandIn, api: GitHubDeliveries) -> None:
    github.hook(REPO_HOOK)
    with pytest.raises(Refused, match="answered 404 \\(Not Found\\)") as refused:
        api.delivery(REPO, 123)
    assert refused.value.status == 404


@pytest.mark.parametrize("body", [b"[]", b'"text"', b"null", b"<html>ok</html>", b""])
def test_a_record_that_is_not_a_json_object_is_an_error(
    body: bytes, github: GitHubStandIn, api: GitHubDeliveries
) -> None:
    delivery = github.deliver(REPO_HOOK, 503)
    github.fail_next(Fault.RAW, body=body)
    with pytest.raises(GitHubError, match=r"not a JSON object|not JSON") as error:
        api.delivery(REPO, delivery.id)
    assert type(error.value) is GitHubError


# The stand-in's opt-in knobs ---------------------------------------------------------------------


def test_the_standin_enforces_the_primary_limit_per_credential_and_hour(
    github: GitHubStandIn, clock: Clock, app_key: AppKey
) -> None:
    github.hook(REPO_HOOK), github.hook(APP_HOOK)
    github.enforce_rate_limits(per_hour=2, status=429)
    token = {"authorization": f"token {TOKEN}"}
    answers = [github.answer("GET", "/repos/octo-org/hello-world/hooks/42/deliveries", token) for _ in range(3)]
    assert [(s, h["x-ratelimit-remaining"], h["x-ratelimit-used"]) for s, h, _ in answers] == [
        (200, "1", "1"),
        (200, "0", "2"),
        (429, "0", "2"),
    ]
    assert {h["x-ratelimit-reset"] for _, h, _ in answers} == {str(int(clock()) + 3600)}
    app = Credentials(app_id=APP_ID, private_key=lambda: app_key.pem).headers(APP)
    assert github.answer("GET", "/app/hook/deliveries", app)[0] == 200  # another credential
    clock.advance(3600)
    status, headers, _ = github.answer("GET", "/repos/octo-org/hello-world/hooks/42/deliveries", token)
    assert (status, headers["x-ratelimit-remaining"]) == (200, "1")


def test_the_standin_limits_posts_to_80_a_minute_and_500_an_hour(github: GitHubStandIn, clock: Clock) -> None:
    failed = github.deliver(REPO_HOOK, 503)
    github.enforce_rate_limits()
    token = {"authorization": f"token {TOKEN}"}
    attempts = f"/repos/octo-org/hello-world/hooks/42/deliveries/{failed.id}/attempts"
    statuses = [github.answer("POST", attempts, token)[0] for _ in range(81)]
    assert statuses == [202] * 80 + [403]
    status, headers, body = github.answer("POST", attempts, token)
    assert (status, headers["retry-after"]) == (403, "60")
    assert "secondary rate limit" in body["message"]
    assert (
        github.answer("GET", "/repos/octo-org/hello-world/hooks/42/deliveries", token)[0] == 200
    )  # GETs are not limited
    for _ in range(5):
        clock.advance(60)
        assert [github.answer("POST", attempts, token)[0] for _ in range(80)] == [202] * 80
    clock.advance(60)  # 480 in the hour so far
    assert [github.answer("POST", attempts, token)[0] for _ in range(21)] == [202] * 20 + [403]
    status, headers, _ = github.answer("POST", attempts, token)
    assert (status, headers["retry-after"]) == (403, str(3600 - 360))


def test_the_standin_dates_deliveries_on_its_clock_when_asked(app_key: AppKey, clock: Clock) -> None:
    with GitHubStandIn(
        token=TOKEN, app_id=APP_ID, app_public_key=app_key.public, clock=clock, dates_from_clock=True
    ) as github:
        first = github.deliver(REPO_HOOK, 503, age=60)
        clock.advance(3600)
        later = github.deliver(REPO_HOOK, 503, at=clock() - 1)
        api = api_for(github, sleeps=Sleeps(clock), clock=clock)
        api.redeliver(REPO, first.id)
        redelivery = github.attempts(first.guid)[-1]
    assert (first.delivered_at, later.delivered_at, redelivery.delivered_at) == (
        clock() - 3660,
        clock() - 1,
        clock(),
    )
