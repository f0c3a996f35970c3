"""The GitHub adapter against what a network and GitHub can send: credentials never follow a redirect,
reach another host or an error's text; one deadline per request, whatever the server drips; garbage
rate-limit headers, HTML 5xx pages, bodies that are not JSON or too large, malformed items."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from handler.core.hooks import Hook
from handler.core.ports import GitHubError, Refused, RunStopped
from handler.github import deliveries
from handler.github.auth import Credentials
from handler.github.deliveries import GitHubDeliveries
from tests.fakes import Clock
from tests.loopback import BlackHole, self_signed_tls
from tests.redelivery.conftest import APP_ID, REPO_HOOK, TOKEN, AppKey
from tests.redelivery.github_standin import Fault, GitHubStandIn, malformed_items
from tests.redelivery.test_github import Sleeps, api_for, fill

REPO = Hook.parse(REPO_HOOK)
LISTING = "/repos/octo-org/hello-world/hooks/42/deliveries"


class _Server:
    """A one-purpose HTTP server on loopback that records the Authorization headers it receives."""

    def __init__(self, answer: int, location: str = "") -> None:
        self.authorizations: list[str | None] = []
        seen = self.authorizations

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                seen.append(self.headers.get("Authorization"))
                self.send_response(answer)
                if location:
                    self.send_header("Location", location + self.path)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"[]")

            do_GET = do_POST = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def elsewhere() -> Iterator[_Server]:
    server = _Server(200)
    yield server
    server.stop()


@pytest.fixture
def sleeps(clock: Clock) -> Sleeps:
    return Sleeps(clock)


def real_time_left(seconds: float) -> Callable[[], float]:
    """A run that really ends ``seconds`` from now (for the deadline tests: the server's time is real)."""
    end = time.monotonic() + seconds
    return lambda: end - time.monotonic()


# Credentials stay where they belong --------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_an_error_and_the_token_never_follows_it(elsewhere: _Server, status: int) -> None:
    api = _Server(status, location=elsewhere.url.replace("127.0.0.1", "localhost"))
    try:
        client = GitHubDeliveries(api_url=api.url, credentials=Credentials(token=lambda: TOKEN), time_left=lambda: 60.0)
        with pytest.raises(GitHubError, match=f"answered {status}"):
            client.first_page(REPO)
        with pytest.raises(GitHubError, match=f"answered {status}"):
            client.redeliver(REPO, 7)  # a redirected POST must not become a GET elsewhere either
    finally:
        api.stop()
    assert api.authorizations == [f"token {TOKEN}"] * 2
    assert elsewhere.authorizations == []


def test_a_token_on_two_lines_is_refused_without_showing_it(
    github: GitHubStandIn, sleeps: Sleeps, clock: Clock
) -> None:
    two = f"{TOKEN}\nghp_second0token"
    api = api_for(github, sleeps=sleeps, clock=clock, token=two)
    with pytest.raises(PermissionError, match="one word of printable ASCII") as refused:
        api.first_page(REPO)
    assert TOKEN not in str(refused.value)
    assert (github.received, api.requests) == ([], 0)


def test_githubs_message_is_short_printable_and_never_the_credential(
    github: GitHubStandIn, sleeps: Sleeps, clock: Clock
) -> None:
    """A server that echoes the Authorization header (or sends control characters) cannot put either in a log."""
    failed = github.deliver(REPO_HOOK, 503)
    api = api_for(github, sleeps=sleeps, clock=clock)
    message = f"echo: token {TOKEN}\r\nX-Injected: yes " + "x" * 1000
    github.fail_next(Fault.RAW, status=422, body=json.dumps({"message": message}).encode())
    with pytest.raises(Refused) as refused:
        api.redeliver(REPO, failed.id)
    text = str(refused.value)
    assert text.startswith(f"POST repos/octo-org/hello-world/hooks/42/deliveries/{failed.id}/attempts answered 422")
    assert "(echo: token ***  X-Injected: yes xxx" in text
    assert TOKEN not in text
    assert text.isprintable()
    assert len(text) < 300


def test_https_verifies_the_certificate_before_sending_anything(
    app_key: AppKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real transport (TLS), on loopback: a certificate the system does not trust gets no request,
    the trusted one works, and the deadline holds during TLS too."""
    server, client = self_signed_tls()
    with GitHubStandIn(token=TOKEN, app_id=APP_ID, app_public_key=app_key.public, tls=server) as github:
        fill(github, REPO_HOOK, 1)
        api = GitHubDeliveries(
            api_url=github.url,
            credentials=Credentials(token=lambda: TOKEN),
            time_left=lambda: 60.0,
            sleep=lambda _: None,
        )
        assert github.url.startswith("https://")
        with pytest.raises(RunStopped, match=r"kept failing \(network failure\)"):
            api.first_page(REPO)
        assert github.received == []
        monkeypatch.setattr(deliveries, "_tls", lambda: client)
        assert len(api.first_page(REPO).items) == 1
        github.fail_next(Fault.DRIP, every=0.5)
        started = time.monotonic()
        api = GitHubDeliveries(
            api_url=github.url, credentials=Credentials(token=lambda: TOKEN), time_left=real_time_left(5.0)
        )
        with pytest.raises(RunStopped):
            api.first_page(REPO)
        assert time.monotonic() - started < 15
        assert [r.answered for r in github.received] == [200, 200]


# One deadline per request ------------------------------------------------------------------------


def test_a_dripping_answer_is_cut_at_the_runs_end(github: GitHubStandIn, sleeps: Sleeps, clock: Clock) -> None:
    """Headers, then a byte every half second for a minute: every read returns in time, so only a
    deadline for the whole request ends it (here the run's, 5 s: shorter than REQUEST_DEADLINE)."""
    github.hook(REPO_HOOK)
    github.fail_next(Fault.DRIP, every=0.5, seconds=60)
    api = api_for(github, sleeps=sleeps, clock=clock, time_left=real_time_left(5.0))
    started = time.monotonic()
    with pytest.raises(RunStopped, match="timed out") as stopped:
        api.first_page(REPO)
    assert time.monotonic() - started < 15
    assert stopped.value.reason == "network"
    assert (api.requests, sleeps) == (1, [])


def test_a_request_past_its_deadline_is_retried_like_a_network_failure(
    github: GitHubStandIn, sleeps: Sleeps, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deliveries, "REQUEST_DEADLINE", 1.5)
    fill(github, REPO_HOOK, 1)
    github.fail_next(Fault.DRIP, every=0.5, seconds=60)
    api = api_for(github, sleeps=sleeps, clock=clock)
    started = time.monotonic()
    assert len(api.first_page(REPO).items) == 1
    assert time.monotonic() - started < 15
    assert sleeps == [1.0]
    assert api.requests == 2


def test_a_server_that_never_answers_is_retried_then_stops_the_run(
    sleeps: Sleeps, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deliveries, "REQUEST_DEADLINE", 0.5)
    hole = BlackHole()
    try:
        for url in (hole.url, hole.url.replace("http://", "https://")):  # no answer; no TLS handshake
            api = GitHubDeliveries(
                api_url=url,
                credentials=Credentials(token=lambda: TOKEN),
                time_left=lambda: 120,
                sleep=sleeps,
                clock=clock,
            )
            started = time.monotonic()
            with pytest.raises(RunStopped, match=r"kept failing \(timed out\)"):
                api.first_page(REPO)
            assert time.monotonic() - started < 15
            assert api.requests == 4
    finally:
        hole.stop()
    assert sleeps == [1.0, 2.0, 4.0] * 2


# What GitHub (or a proxy in front of it) sends ---------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 504, 520, 599])
def test_any_5xx_with_an_html_page_is_retried(status: int, github: GitHubStandIn, sleeps: Sleeps, clock: Clock) -> None:
    fill(github, REPO_HOOK, 1)
    github.fail_next(Fault.HTML, status=status)
    api = api_for(github, sleeps=sleeps, clock=clock)
    assert len(api.first_page(REPO).items) == 1
    assert sleeps == [1.0]
    assert [r.answered for r in github.received] == [status, 200]


@pytest.mark.parametrize(
    "body",
    [b"<html>OK</html>", b"", b"\xff\xfe[]", b"[" * 100_000 + b"]" * 100_000, b'{"message": "OK"}'],
    ids=["html", "empty", "not-utf8", "too-deep", "an-object"],
)
def test_a_listing_that_is_not_a_json_list_is_an_error(
    body: bytes, github: GitHubStandIn, sleeps: Sleeps, clock: Clock
) -> None:
    github.hook(REPO_HOOK)
    github.fail_next(Fault.RAW, status=200, body=body)
    api = api_for(github, sleeps=sleeps, clock=clock)
    with pytest.raises(GitHubError, match=r"answered 200 with a body that is not JSON|not a list"):
        api.first_page(REPO)
    assert (api.requests, sleeps) == (1, [])


GARBAGE = ["soon", "-5", "1e9", "nan", "inf", "99999999999999", "", "0x10", "1,2", "Wed, 21 Oct 2026 07:28:00 GMT"]


@pytest.mark.parametrize("value", GARBAGE)
def test_garbage_rate_limit_headers_are_ignored(
    value: str, github: GitHubStandIn, sleeps: Sleeps, clock: Clock
) -> None:
    fill(github, REPO_HOOK, 1)
    api = api_for(github, sleeps=sleeps, clock=clock)
    spent = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": value, "retry-after": value}
    github.fail_next(Fault.RAW, headers=spent, body=b"[]")
    github.fail_next(Fault.RAW, headers={"x-ratelimit-remaining": value, "x-ratelimit-reset": "0"}, body=b"[]")
    api.first_page(REPO), api.first_page(REPO), api.first_page(REPO)  # a 2xx's unusable reset closes nothing
    assert sleeps == []
    github.fail_next(Fault.RAW, status=403, headers=spent, body=b'{"message": "API rate limit exceeded"}')
    api.first_page(REPO)  # spent, with no usable reset or retry-after: a minute
    github.fail_next(Fault.RAW, status=429, headers={"retry-after": value}, body=b"{}")
    api.first_page(REPO)
    assert sleeps == [60.0, 60.0]


def test_a_body_past_the_cap_is_refused_without_reading_it(
    github: GitHubStandIn, sleeps: Sleeps, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    github.hook(REPO_HOOK)
    api = api_for(github, sleeps=sleeps, clock=clock)
    # Announced (and never sent): refused from the header, at once, not after the deadline.
    github.fail_next(Fault.RAW, headers={"content-length": str(2**40)})
    started = time.monotonic()
    with pytest.raises(GitHubError, match=f"answered 200 with over {64 * 2**20} bytes"):
        api.first_page(REPO)
    assert time.monotonic() - started < 15
    # Chunked, with no length: refused once the cap is passed.
    monkeypatch.setattr(deliveries, "MAX_BODY_BYTES", 1000)
    chunk = b"258\r\n" + b" " * 600 + b"\r\n"
    github.fail_next(Fault.RAW, headers={"transfer-encoding": "chunked"}, body=chunk * 3 + b"2\r\n[]\r\n0\r\n\r\n")
    with pytest.raises(GitHubError, match="answered 200 with over 1000 bytes"):
        api.first_page(REPO)
    github.fail_next(Fault.RAW, headers={"transfer-encoding": "chunked"}, body=chunk + b"2\r\n[]\r\n0\r\n\r\n")
    assert api.first_page(REPO).items == []  # under the cap
    assert sleeps == []


def test_malformed_items_reach_the_caller_as_github_sent_them(
    github: GitHubStandIn, sleeps: Sleeps, clock: Clock
) -> None:
    """The adapter passes on every item, objects or not: the core judges (and counts) each."""
    valid = github.deliver(REPO_HOOK, 503)
    variants = malformed_items(valid.item())
    github.inject(REPO_HOOK, *variants.values())
    api = api_for(github, sleeps=sleeps, clock=clock)
    items = api.first_page(REPO).items
    assert items == [*list(variants.values())[::-1], valid.item()]


def test_a_looping_link_is_followed_as_given(github: GitHubStandIn, sleeps: Sleeps, clock: Clock) -> None:
    """The stand-in's loop (page 2 links to itself): the adapter follows what it is given; stopping a
    loop is the caller's job."""
    fill(github, REPO_HOOK, 3)
    github.loop_next(REPO_HOOK)
    api = api_for(github, sleeps=sleeps, clock=clock)
    first = api.first_page(REPO)
    assert first.next_url is not None
    second = api.next_page(REPO, first.next_url)
    assert second.next_url == first.next_url
    assert api.next_page(REPO, second.next_url).next_url == first.next_url
