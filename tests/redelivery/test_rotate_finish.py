"""rotate-secret's last check before --finish leaves one secret: the receiver's own metric must show that
no delivery still verifies with the old secret (another hook may share the parameter). Against moto's
CloudWatch, on a clock the test moves."""

from __future__ import annotations

from datetime import UTC, datetime

import boto3
import pytest

from devkit.errors import REJECTED, CliError
from devkit.rotate import QUIET_SECONDS, Rotation, previous_verified
from handler.core.hooks import Hook

PATCHED_AT = 1_796_000_000.0


def rotation(now: float, aws_metric: bool = True) -> Rotation:
    clock = [now]  # sleeping (a drain) moves it
    return Rotation(
        api=None,
        ssm=None,  # type: ignore[arg-type]  (not reached: only the check runs)
        hook=Hook.parse("repos/o/r/hooks/1"),
        name="/p",
        max_age=1,
        say=lambda line: None,
        sleep=lambda seconds: clock.__setitem__(0, clock[0] + seconds),
        clock=lambda: clock[0],
        previous_verified=previous_verified("GitHubWebhook", "github-webhook") if aws_metric else None,
    )


def verified_with_previous(at: float, count: float) -> None:
    boto3.client("cloudwatch").put_metric_data(
        Namespace="GitHubWebhook",
        MetricData=[
            {
                "MetricName": "SecretVerified",
                "Dimensions": [{"Name": "service", "Value": "github-webhook"}, {"Name": "secret", "Value": "previous"}],
                "Timestamp": datetime.fromtimestamp(at, UTC),
                "Value": count,
                "Unit": "Count",
            }
        ],
    )


def test_deliveries_verified_with_the_old_secret_after_the_change_stop_the_finish(aws: None) -> None:
    later = PATCHED_AT + 10 * 60
    verified_with_previous(PATCHED_AT + 5 * 60, 3)  # another hook, still on the old secret
    with pytest.raises(CliError, match="3 deliveries verified with the old secret") as refused:
        rotation(later)._check_old_secret_unused(PATCHED_AT, drain=0)
    assert refused.value.code == REJECTED


def test_the_old_secret_unused_since_the_change_lets_the_finish_go_on(aws: None) -> None:
    verified_with_previous(PATCHED_AT + 10, 5)  # before the quiet window: deliveries already on their way
    rotation(PATCHED_AT + 10 * 60)._check_old_secret_unused(PATCHED_AT, drain=0)


def test_too_soon_after_the_change_nothing_can_be_told(aws: None) -> None:
    with pytest.raises(CliError, match="too soon"):
        rotation(PATCHED_AT + QUIET_SECONDS)._check_old_secret_unused(PATCHED_AT, drain=0)
    # Long enough a drain makes the window: checked after it.
    rotation(PATCHED_AT)._check_old_secret_unused(PATCHED_AT, drain=2 * QUIET_SECONDS)


def test_without_the_receivers_metric_or_only_hook_it_is_not_done() -> None:
    with pytest.raises(CliError, match="give --function"):
        rotation(PATCHED_AT + 3600, aws_metric=False)._check_old_secret_unused(PATCHED_AT, drain=0)


def test_a_parameter_the_receiver_does_not_read_is_refused_before_anything_changes(
    aws: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The hook would get a secret its receiver never reads: every delivery refused, and its old secret lost."""
    import io
    import zipfile

    from devkit.cli import main
    from tests.redelivery.conftest import TOKEN

    role = boto3.client("iam").create_role(RoleName="receiver", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("handler/app.py", "def handler(event, context): ...\n")
    boto3.client("lambda").create_function(
        FunctionName="receiver",
        Runtime="python3.13",
        Role=role,
        Handler="handler.app.handler",
        Code={"ZipFile": code.getvalue()},
        Environment={"Variables": {"WEBHOOK_SECRET_PARAMETER": "/prod/secret", "WEBHOOK_SECRET_MAX_AGE": "300"}},
    )
    boto3.client("ssm").put_parameter(Name="/dev/secret", Value="dev", Type="SecureString")
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_API_URL", "http://127.0.0.1:9")  # never reached
    hook = ["--hook", "repos/o/r/hooks/1", "--parameter", "/dev/secret", "--function", "receiver"]
    assert main(["rotate-secret", *hook, "--region", "us-east-1"]) == 2
    assert "receiver reads /prod/secret, not /dev/secret" in capsys.readouterr().err
    stored = boto3.client("ssm").get_parameter(Name="/dev/secret", WithDecryption=True)["Parameter"]["Value"]
    assert stored == "dev"
