"""Credentials never follow a redirect or reach a log line, and one hook's failure never stops the others."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest

from handler.aws.telemetry import PowertoolsTelemetry
from handler.core.redelivery import Hook, MemoryStateStore
from handler.core.settings import RedeliverySettings, TelemetrySettings
from handler.github.auth import Credentials
from handler.github.deliveries import GitHubDeliveries, GitHubError
from handler.redelivery import run
from tests.redelivery.conftest import ORG_HOOK, REPO_HOOK, TOKEN
from tests.redelivery.github_standin import GitHubStandIn


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


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_an_error_and_the_token_never_follows_it(elsewhere: _Server, status: int) -> None:
    api = _Server(status, location=elsewhere.url.replace("127.0.0.1", "localhost"))
    try:
        client = GitHubDeliveries(api_url=api.url, credentials=Credentials(token=lambda: TOKEN), time_left=lambda: 60.0)
        hook = Hook.parse(REPO_HOOK)
        with pytest.raises(GitHubError, match=f"answered {status}"):
            client.first_page(hook)
        with pytest.raises(GitHubError, match=f"answered {status}"):
            client.redeliver(hook, 7)  # a redirected POST must not become a GET elsewhere either
    finally:
        api.stop()
    assert api.authorizations == [f"token {TOKEN}"] * 2
    assert elsewhere.authorizations == []


def test_a_token_on_two_lines_is_refused_without_showing_it(github: GitHubStandIn) -> None:
    two = f"{TOKEN}\nghp_second0token"
    settings = RedeliverySettings(hooks=(Hook.parse(REPO_HOOK),), api_url=github.url, token=two)
    telemetry = PowertoolsTelemetry(TelemetrySettings())
    summary = run(settings, telemetry, time_left=lambda: 60.0, store=MemoryStateStore())
    error = summary["hooks"][REPO_HOOK]["error"]
    assert "one word of printable ASCII" in error
    assert TOKEN not in repr(summary)
    assert github.count("GET") == 0


def test_one_hook_failing_unexpectedly_does_not_stop_the_others(
    github: GitHubStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    github.deliver(ORG_HOOK, 503, guid="org-failed")
    store = MemoryStateStore()
    original_load = store.load

    def load(hook: Hook):
        if hook.spec == REPO_HOOK:
            raise RuntimeError(f"state table broke while holding {TOKEN}")  # text that must not be shown
        return original_load(hook)

    monkeypatch.setattr(store, "load", load)
    hooks = (Hook.parse(REPO_HOOK), Hook.parse(ORG_HOOK))
    settings = RedeliverySettings(hooks=hooks, api_url=github.url, token=TOKEN)
    summary = run(settings, PowertoolsTelemetry(TelemetrySettings()), time_left=lambda: 60.0, store=store)
    assert summary["hooks"][REPO_HOOK] == {"error": "RuntimeError"}
    assert summary["hooks"][ORG_HOOK]["redelivered"] == 1
    assert summary["redelivered"] == 1
    assert TOKEN not in repr(summary)
