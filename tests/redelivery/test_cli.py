"""`webhook deliveries` and `webhook redeliver` against the GitHub stand-in, with GITHUB_TOKEN."""

from __future__ import annotations

import pytest

from devkit.cli import main
from tests.redelivery.conftest import REPO_HOOK, TOKEN
from tests.redelivery.github_standin import GitHubStandIn


@pytest.fixture
def laptop(github: GitHubStandIn, monkeypatch: pytest.MonkeyPatch) -> GitHubStandIn:
    monkeypatch.setenv("GITHUB_API_URL", github.url)
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    github.deliver(REPO_HOOK, 200, guid="ok-guid", age=600)
    github.deliver(REPO_HOOK, 503, guid="failed-guid", age=500, event="issues", action="opened")
    github.deliver(REPO_HOOK, 401, guid="refused-guid", age=400)
    return github


def test_deliveries_lists_one_row_per_delivery_and_failed_narrows_it(
    laptop: GitHubStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["deliveries", "--hook", REPO_HOOK]) == 0
    out = capsys.readouterr().out
    assert "ok-guid" in out
    assert "failed-guid" in out
    assert "issues.opened" in out
    assert main(["deliveries", "--hook", REPO_HOOK, "--failed"]) == 0
    failed = capsys.readouterr().out
    assert "ok-guid" not in failed
    assert "failed-guid" in failed
    assert "refused-guid" in failed  # failed, though not something a retry can fix
    assert laptop.count("POST") == 0


def test_redeliver_dry_run_asks_for_nothing_and_redeliver_asks_once(
    laptop: GitHubStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["redeliver", "--hook", REPO_HOOK, "--dry-run", "--no-progress"]) == 0
    assert capsys.readouterr().out.startswith("would redeliver 1;")
    assert laptop.count("POST") == 0
    assert main(["redeliver", "--hook", REPO_HOOK, "--no-progress"]) == 0
    summary = capsys.readouterr().out
    assert summary.startswith("redelivered 1;")
    assert "refused 1" in summary
    assert laptop.count("POST", "/attempts") == 1
    assert [a.redelivery for a in laptop.attempts("failed-guid")] == [False, True]
    assert TOKEN not in summary


def test_without_a_token_the_cli_says_what_to_set(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    assert main(["deliveries", "--hook", REPO_HOOK]) == 2
    assert "set GITHUB_TOKEN" in capsys.readouterr().err


def test_a_bad_hook_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["redeliver", "--hook", "repos/only-two"]) == 2
    assert "not a hook" in capsys.readouterr().err
