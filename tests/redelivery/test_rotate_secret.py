"""`webhook rotate-secret` end to end: the GitHub stand-in's hook, a running `webhook serve` reading the
parameter from SSM on the emulator. At every step a delivery signed with the secret the hook has at
that moment is accepted (the stand-in's pings are signed that way); after --finish the old secret is
refused. A failure at any step, then a rerun or --rollback, leaves a working pair. No secret is printed."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from devkit.cli import main
from devkit.github import github_headers, sample_payload
from tests.receivers import emulator, free_port, served
from tests.redelivery.conftest import APP_ID, TOKEN, AppKey
from tests.redelivery.github_standin import Fault, GitHubStandIn

PARAMETER = "/rotate/secret"
OLD = "rotate-old-secret-0123456789abcdef"


@pytest.fixture
def aws_env() -> Iterator[dict[str, str]]:
    with emulator({PARAMETER: OLD}) as env:
        yield env


@pytest.fixture
def receiver(aws_env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    # Receivers re-read the parameter after a second (the rotation waits that long: --wait 1).
    settings = {
        "WEBHOOK_SECRET_PARAMETER": PARAMETER,
        "WEBHOOK_SECRET_MAX_AGE": "1",
        "WEBHOOK_SECRET_REFRESH_INTERVAL": "1",
    }
    with served(aws_env | settings, tmp_path / "serve.txt") as url:
        yield url


@pytest.fixture
def hook(receiver: str, aws_env: dict[str, str], github: GitHubStandIn, monkeypatch: pytest.MonkeyPatch) -> str:
    """A repository hook that points at the receiver and signs with the old secret; the tool's environment."""
    for name, value in aws_env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_API_URL", github.url)
    boto3.setup_default_session()
    assert (
        main(["connect", "--repo", "octo-org/hello", "--url", receiver, "--parameter", PARAMETER, "--wait", "5"]) == 0
    )
    [created] = github.webhooks.values()
    return created.path.removeprefix("/")


def rotate(spec: str, *options: str) -> int:
    return main(
        ["rotate-secret", "--hook", spec, "--parameter", PARAMETER, "--wait", "1", "--ping-wait", "5", *options]
    )


def parameter_lines() -> list[str]:
    value = boto3.client("ssm").get_parameter(Name=PARAMETER, WithDecryption=True)["Parameter"]["Value"]
    return value.split("\n")


def status_with(url: str, secret: str) -> int:
    """A push signed with ``secret``, posted to the receiver: its answer's status."""
    body = json.dumps(sample_payload("push")).encode()
    request = urllib.request.Request(url, data=body, headers=github_headers("push", body, secret=secret), method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 (loopback)
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def test_a_rotation_refuses_no_delivery_and_finish_retires_the_old_secret(
    hook: str, receiver: str, github: GitHubStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert rotate(hook) == 0
    new, old = parameter_lines()
    assert old == OLD
    assert len(new) == 64
    assert github.secret_of("/" + hook) == new  # the hook signs with the new one...
    assert github.webhooks["/" + hook].config["url"] == receiver  # ...its other config as it was
    assert github.pings[-1].status_code == 202  # and the receiver verified its ping
    assert (status_with(receiver, old), status_with(receiver, new)) == (202, 202)  # in flight: both
    assert rotate(hook, "--finish", "--only-hook", "--drain", "0") == 0
    assert parameter_lines() == [new]
    assert github.pings[-1].status_code == 202
    # The old secret is refused once the receivers have re-read the parameter (max age: 1 s here).
    deadline = time.monotonic() + 10
    while status_with(receiver, old) != 401:
        assert time.monotonic() < deadline, "the old secret was still accepted 10 s after --finish"
        time.sleep(0.5)
    assert status_with(receiver, new) == 202
    out = capsys.readouterr()
    assert new not in out.out + out.err
    assert OLD not in out.out + out.err
    assert out.out.startswith(
        f"receivers keep the secret for 1 s (--wait)\nhook: {hook}, delivering to {receiver}\nplan: a new secret"
    )


def test_the_plan_comes_first_and_dry_run_changes_nothing(
    hook: str, github: GitHubStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert rotate(hook, "--dry-run") == 0
    assert parameter_lines() == [OLD]
    assert github.secret_of("/" + hook) == OLD
    plan = capsys.readouterr().out
    assert "plan: a new secret (32 random bytes); /rotate/secret: new, then old; wait until receivers" in plan


def test_a_refused_patch_leaves_a_working_pair_and_a_rerun_finishes_the_step(
    hook: str, receiver: str, github: GitHubStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    github.fail_next(
        Fault.RAW, method="PATCH", path="/config", status=403, body=b'{"message": "Must have admin rights"}'
    )
    assert rotate(hook) == 1
    assert "GitHub refused" in capsys.readouterr().err
    new, old = parameter_lines()
    assert github.secret_of("/" + hook) == old  # not changed: the old one is still in the parameter
    assert status_with(receiver, old) == 202
    capsys.readouterr()
    assert rotate(hook, "--show-secret") == 0  # the same new secret, not a third one
    assert parameter_lines() == [new, old]
    assert github.secret_of("/" + hook) == new
    assert capsys.readouterr().out.splitlines()[-1] == new  # printed only when asked


def test_a_failed_ping_leaves_a_working_pair_then_rollback_restores_the_old_secret(
    hook: str, receiver: str, github: GitHubStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    github.fail_next(Fault.RAW, method="POST", path="/pings", status=404, body=b'{"message": "Not Found"}')
    assert rotate(hook) == 1
    new, old = parameter_lines()
    assert github.secret_of("/" + hook) == new
    assert (status_with(receiver, old), status_with(receiver, new)) == (202, 202)
    assert rotate(hook, "--rollback", "--drain", "0") == 0
    assert parameter_lines() == [old]
    assert github.secret_of("/" + hook) == old
    assert github.pings[-1].status_code == 202
    assert rotate(hook, "--rollback") == 2  # nothing left to roll back
    assert "nothing to roll back" in capsys.readouterr().err


def test_ssm_unreachable_changes_nothing(
    hook: str, github: GitHubStandIn, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    boto3.setup_default_session()
    assert rotate(hook) == 3
    assert "SSM is unreachable" in capsys.readouterr().err
    assert github.secret_of("/" + hook) == OLD


def test_an_apps_hook_is_verified_by_its_next_delivery(
    receiver: str,
    aws_env: dict[str, str],
    github: GitHubStandIn,
    app_key: AppKey,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """No ping for an App's hook (PATCH /app/hook/config with the App's JWT): the first delivery after the change."""
    for name, value in aws_env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("GITHUB_API_URL", github.url)
    boto3.setup_default_session()
    github.app_hook(receiver, OLD)
    key = tmp_path / "app.pem"
    key.write_text(app_key.pem)
    traffic = threading.Event()

    def deliveries() -> None:  # the App's events keep coming, each signed with the secret of the moment
        while not traffic.wait(0.5):
            github.send_event("/app/hook")

    sender = threading.Thread(target=deliveries, daemon=True)
    sender.start()
    try:
        options = ["--app-id", APP_ID, "--app-key", str(key), "--ping-wait", "15"]
        finish = ["--finish", "--only-hook", "--drain", "0"]
        assert main(["rotate-secret", "--hook", "app", "--parameter", PARAMETER, "--wait", "1", *options]) == 0
        new, old = parameter_lines()
        assert old == OLD
        assert github.secret_of("/app/hook") == new
        assert main(["rotate-secret", "--hook", "app", "--parameter", PARAMETER, "--wait", "1", *finish, *options]) == 0
        assert parameter_lines() == [new]
    finally:
        traffic.set()
        sender.join(5)
    assert all(d.status_code == 202 for d in github.hooks["/app/hook"])  # none refused at any step
    out = capsys.readouterr()
    assert "waiting up to 15 s for its next delivery" in out.out
    assert new not in out.out + out.err


def test_finish_needs_to_know_no_other_hook_still_signs_with_the_old_secret(
    hook: str, github: GitHubStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    """The parameter may serve several hooks (connect sets each to its first line): removing the old
    secret refuses every one not rotated yet. Without the receiver's metric or --only-hook, it is not done."""
    assert rotate(hook, "--finish", "--drain", "0") == 2
    assert "give --function" in capsys.readouterr().err
    new, old = parameter_lines()  # rotated, verified, and both secrets still accepted
    assert github.secret_of("/" + hook) == new
    assert old == OLD


def test_a_finished_rotation_is_not_started_again_by_a_rerun(
    hook: str, github: GitHubStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    assert rotate(hook, "--finish", "--only-hook", "--drain", "0") == 0
    [new] = parameter_lines()
    assert rotate(hook, "--finish", "--only-hook", "--drain", "0") == 0  # "the same command", run again
    assert parameter_lines() == [new]
    assert github.secret_of("/" + hook) == new
    assert "finished already; nothing done" in capsys.readouterr().out


def test_two_secrets_this_command_did_not_write_are_not_guessed_at(
    hook: str, github: GitHubStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    """Old first, new second, written by hand: which one the hook has is unknown (GitHub shows ********).
    Also after a rotation of this command that finished on the same first secret (a rollback marks it so)."""
    from devkit.rotate import TAG, fingerprint

    finished = [{"Key": TAG, "Value": f"{fingerprint(OLD)}:finished"}]
    boto3.client("ssm").add_tags_to_resource(ResourceType="Parameter", ResourceId=PARAMETER, Tags=finished)
    boto3.client("ssm").put_parameter(Name=PARAMETER, Value=OLD + "\nby-hand-new", Type="SecureString", Overwrite=True)
    assert rotate(hook, "--finish", "--only-hook") == 2
    assert rotate(hook, "--rollback") == 2
    assert "did not write in that order" in capsys.readouterr().err
    assert parameter_lines() == [OLD, "by-hand-new"]
    assert github.secret_of("/" + hook) == OLD
