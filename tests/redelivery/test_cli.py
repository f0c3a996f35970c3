"""`webhook deliveries` and `webhook redeliver` against the GitHub stand-in, with GITHUB_TOKEN."""

from __future__ import annotations

import time

import pytest

from devkit.cli import main
from tests.loopback import refused_endpoint
from tests.redelivery.conftest import REPO_HOOK, TOKEN
from tests.redelivery.github_standin import Fault, GitHubStandIn


@pytest.fixture
def laptop(github: GitHubStandIn, monkeypatch: pytest.MonkeyPatch) -> GitHubStandIn:
    monkeypatch.setenv("GITHUB_API_URL", github.url)
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    github.clock = time.time  # the command's client reads the real clock: so do the rate-limit resets
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
    assert main(["deliveries", "--hook", REPO_HOOK.upper().replace("HOOKS", "hooks"), "--failed"]) == 0
    failed = capsys.readouterr().out
    assert "ok-guid" not in failed
    assert "failed-guid" in failed
    assert "refused-guid" in failed  # failed, though not something a retry can fix
    assert laptop.count("POST") == 0


def test_redeliver_dry_run_asks_for_nothing_and_redeliver_asks_once(
    laptop: GitHubStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["redeliver", "--hook", REPO_HOOK, "--dry-run"]) == 0
    assert capsys.readouterr().out.startswith("would redeliver 1;")
    assert laptop.count("POST") == 0
    assert main(["redeliver", "--hook", REPO_HOOK]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("redelivered 1;")
    assert "refused by the receiver 1" in out
    assert "redelivering" not in err  # no progress bar when stderr is not a terminal
    assert laptop.count("POST", "/attempts") == 1
    assert [a.redelivery for a in laptop.attempts("failed-guid")] == [False, True]
    assert TOKEN not in out + err


def test_a_run_stopped_midway_still_prints_its_summary_and_exits_1(
    laptop: GitHubStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    laptop.fail_next(Fault.RATE_LIMIT, method="POST", reset_in=3600)
    assert main(["redeliver", "--hook", REPO_HOOK]) == 1
    out = capsys.readouterr().out
    assert out.startswith("redelivered 0;")
    assert "stopped early (rate_limit" in out


def test_github_refusing_the_token_exits_1_and_nothing_answering_exits_3(
    laptop: GitHubStandIn, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_wrong")
    assert main(["redeliver", "--hook", REPO_HOOK]) == 1
    assert "401" in capsys.readouterr().out
    assert main(["deliveries", "--hook", REPO_HOOK]) == 1
    monkeypatch.setenv("GITHUB_API_URL", refused_endpoint())
    assert main(["deliveries", "--hook", REPO_HOOK]) == 3
    assert main(["redeliver", "--hook", REPO_HOOK]) == 3
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "environment", "message"),
    [
        (["redeliver", "--hook", "repos/only-two"], {}, "not a hook"),
        (["redeliver", "--hook", REPO_HOOK, "--max-attempts", "0"], {}, "--max-attempts must be at least 1"),
        (["deliveries", "--hook", REPO_HOOK], {"GITHUB_API_URL": "http://api.example.com"}, "must be an https://"),
        (["deliveries", "--hook", REPO_HOOK], {"GITHUB_TOKEN": ""}, "set GITHUB_TOKEN"),
        (["deliveries", "--hook", "app"], {}, "--app-id and --app-key"),
        (
            ["redeliver", "--hook", REPO_HOOK, "--since", "2026-12-01"],
            {"REDELIVERY_STATE_TABLE": "deliveries"},
            "--since cannot",
        ),
        (["deliveries", "--hook", "app", "--app-id", "1", "--app-key", "/no/such.pem"], {}, "cannot read"),
    ],
)
def test_usage_errors_exit_2_and_say_what_to_fix(
    argv: list[str],
    environment: dict[str, str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert main(argv) == 2
    assert message in capsys.readouterr().err
