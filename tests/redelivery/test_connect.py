"""`webhook connect` against the GitHub stand-in and a running `webhook serve` that reads its secret from SSM
on an emulator (moto's server on loopback): the hook created, found again (never a duplicate), pinged, and
the ping's answer read back through the deliveries API; a wrong secret reported; the secret never printed."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest

from devkit.cli import main
from handler.core.hooks import Hook
from tests.receivers import emulator, free_port, served
from tests.redelivery.conftest import TOKEN
from tests.redelivery.github_standin import Fault, GitHubStandIn

PARAMETER = "/github-webhook/dev/secret"
SECRET = "connect-test-secret-0123456789abcdef"


@pytest.fixture(scope="module")
def aws_env() -> Iterator[dict[str, str]]:
    with emulator({PARAMETER: SECRET + "\n", "/other/secret": "not-the-receivers"}) as env:
        yield env


@pytest.fixture(scope="module")
def receiver(aws_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Reading its secret from SSM on the emulator (verify only)."""
    with served(
        aws_env | {"WEBHOOK_SECRET_PARAMETER": PARAMETER}, tmp_path_factory.mktemp("connect") / "serve.txt"
    ) as url:
        yield url


@pytest.fixture
def tool_env(aws_env: dict[str, str], github: GitHubStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    """The command's environment: the emulator for AWS, the stand-in for GitHub."""
    for name, value in aws_env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_API_URL", github.url)
    boto3.setup_default_session()


def connect(*args: str) -> int:
    return main(["connect", "--repo", "octo-org/hello", *args, "--wait", "5"])


def test_connect_creates_the_hook_pings_it_and_reads_the_receivers_answer(
    receiver: str, tool_env: None, github: GitHubStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    assert connect("--url", receiver, "--parameter", PARAMETER) == 0
    [hook] = github.webhooks.values()
    assert hook.config == {"url": receiver, "content_type": "json", "insecure_ssl": "0", "secret": SECRET}
    assert (hook.events, hook.active) == (["*"], True)
    assert [ping.status_code for ping in github.pings][-1] == 202  # verified by the receiver
    out = capsys.readouterr()
    assert f"created hook {hook.id} on repos/octo-org/hello" in out.out
    assert "verified it with the stack's secret" in out.out
    assert f"REDELIVERY_HOOKS entry: repos/octo-org/hello/hooks/{hook.id}" in out.out
    assert SECRET not in out.out + out.err
    # Again, with other events: the same hook, updated.
    assert connect("--url", receiver, "--parameter", PARAMETER, "--events", "push,pull_request") == 0
    [again] = github.webhooks.values()
    assert (again.id, again.events) == (hook.id, ["push", "pull_request"])
    assert f"updated hook {hook.id}" in capsys.readouterr().out


def test_a_secret_the_receiver_does_not_know_is_reported_not_hidden(
    receiver: str, tool_env: None, github: GitHubStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    assert connect("--url", receiver, "--parameter", "/other/secret") == 1
    assert github.pings[-1].status_code == 401
    out = capsys.readouterr().out
    assert "the hook's secret is not the stack's" in out
    assert "not-the-receivers" not in out


def test_a_url_nothing_answers_at_is_reported_as_unreachable(
    tool_env: None, github: GitHubStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    assert connect("--url", f"http://127.0.0.1:{free_port()}/webhook", "--parameter", PARAMETER) == 1
    assert "GitHub reached nothing at the URL" in capsys.readouterr().out


def test_github_refusing_the_token_is_exit_1_with_the_scope_it_needs(
    receiver: str,
    tool_env: None,
    github: GitHubStandIn,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_wrong")
    assert connect("--url", receiver, "--parameter", PARAMETER) == 1
    assert "GitHub refused" in capsys.readouterr().err
    assert github.webhooks == {}


def test_the_stacks_url_and_secret_parameter_come_from_cloudformation(tool_env: None) -> None:
    from devkit.connect import stack_endpoint

    template = """
Parameters:
  WebhookSecretParameterName: {Type: String, Default: /github-webhook/dev/secret}
Resources:
  Topic: {Type: AWS::SNS::Topic}
Outputs:
  WebhookUrl: {Value: https://abc123.execute-api.us-east-1.amazonaws.com/webhook}
"""
    # On the module's emulator (mock_aws would reset moto's state, which the emulator shares).
    boto3.client("cloudformation").create_stack(StackName="github-webhook-dev", TemplateBody=template)
    assert stack_endpoint("github-webhook-dev") == (
        "https://abc123.execute-api.us-east-1.amazonaws.com/webhook",
        "/github-webhook/dev/secret",
    )


@pytest.mark.parametrize(
    ("status_code", "status", "says"),
    [
        (202, "OK", "verified it with the stack's secret"),
        (401, "Invalid HTTP Response: 401", "the hook's secret is not the stack's"),
        (403, "Invalid HTTP Response: 403", "ALLOWED_SOURCE_CIDRS leave out GitHub"),
        (0, "failed to connect to host", "DNS, TLS or the network"),
        (0, "Peer certificate cannot be authenticated with given CA certificates", "DNS, TLS or the network"),
        (502, "Invalid HTTP Response: 502", "ping answered 502"),
    ],
)
def test_each_answer_to_the_ping_is_explained(status_code: int, status: str, says: str) -> None:
    from devkit.connect import explain

    assert says in explain(status_code, status)


def test_a_secret_echoed_in_githubs_error_never_reaches_the_message(github: GitHubStandIn) -> None:
    """A proxy (or a GHES) that quotes the request body in its error: the webhook secret is cut, as the token."""
    from handler.core.ports import Refused
    from handler.github.auth import Credentials
    from handler.github.deliveries import GitHubDeliveries

    api = GitHubDeliveries(api_url=github.url, credentials=Credentials(token=lambda: TOKEN), time_left=lambda: 60.0)
    echoed = json.dumps({"message": f"Invalid config: secret={SECRET} token={TOKEN}"}).encode()
    github.fail_next(Fault.RAW, method="PATCH", path="/config", status=422, body=echoed)
    hook = Hook.parse("repos/octo-org/hello/hooks/1")
    with pytest.raises(Refused) as refused:
        api.call(hook, "PATCH", "/repos/octo-org/hello/hooks/1/config", {"url": "https://x", "secret": SECRET})
    assert refused.value.status == 422
    assert SECRET not in str(refused.value)
    assert TOKEN not in str(refused.value)
    assert "secret=***" in str(refused.value)
