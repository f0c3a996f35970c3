"""The `webhook` command, each subcommand for real: serve as a subprocess, send over HTTP,
event -> invoke, replay against moto."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from devkit.apigw import http_api_event
from devkit.cli import main
from devkit.github import sample_payload
from tests.conftest import BUCKET, BUS, Pipeline, invoke, signed
from tests.receivers import served

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """`webhook serve` in a subprocess, with its AWS emulator (JSON lines and the bus watcher)."""
    errors = tmp_path_factory.mktemp("serve") / "stderr.txt"
    with served({}, errors, options=()) as url:
        yield url, errors


def test_serve_accepts_a_delivery_sent_by_send_and_hands_it_off(
    server: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    url, errors = server
    assert main(["send", "push", "--url", url, "--delivery-id", "cli-push-0001"]) == 0
    assert capsys.readouterr().out == 'HTTP 202 {"status":"accepted","delivery_id":"cli-push-0001"}\n'
    deadline = time.monotonic() + 10  # the emulated bus is watched and printed by serve
    while "bus <- push cli-push-0001" not in errors.read_text() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "bus <- push cli-push-0001 (payload inline; archive deliveries/" in errors.read_text()


def test_serve_deduplicates_and_rejects_a_wrong_secret(server: tuple[str, Path], capsys) -> None:
    url, _ = server
    assert main(["send", "ping", "--url", url, "--delivery-id", "cli-ping-0001", "--form"]) == 0
    assert main(["send", "ping", "--url", url, "--delivery-id", "cli-ping-0001", "--form"]) == 0
    # The same id with another body (JSON, not the form): refused, never a silent duplicate.
    assert main(["send", "ping", "--url", url, "--delivery-id", "cli-ping-0001"]) == 1
    assert main(["send", "push", "--url", url, "--secret", "wrong"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert json.loads(out[0].removeprefix("HTTP 202 "))["status"] == "accepted"
    assert json.loads(out[1].removeprefix("HTTP 202 "))["status"] == "duplicate"
    assert out[2].startswith('HTTP 422 {"error":"delivery_conflict"')
    assert out[3].startswith('HTTP 401 {"error":"signature_mismatch"')


def test_send_sends_every_github_header(monkeypatch: pytest.MonkeyPatch) -> None:
    """send's request, captured by a one-shot server, is what GitHub sends."""
    import http.server
    import threading

    seen: dict[str, object] = {}

    class Capture(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            seen["headers"] = dict(self.headers.items())
            seen["body"] = self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(202)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), Capture)
    thread = threading.Thread(target=httpd.handle_request)
    thread.start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/webhook"
    assert main(["send", "pull_request", "--url", url, "--form"]) == 0
    thread.join(10)
    httpd.server_close()
    headers = seen["headers"]
    for name in (
        "X-GitHub-Event",
        "X-GitHub-Delivery",
        "X-GitHub-Hook-ID",
        "X-GitHub-Hook-Installation-Target-Type",
        "X-GitHub-Hook-Installation-Target-ID",
        "X-Hub-Signature",
        "X-Hub-Signature-256",
    ):
        assert headers[name], name
    assert headers["User-Agent"].startswith("GitHub-Hookshot/")
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    # Exactly what the receiver accepts: replay the captured request through it, over HTTP as it came.
    from fastapi.testclient import TestClient

    from handler.app import app

    assert TestClient(app).post("/webhook", content=seen["body"], headers=headers).status_code == 202


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["send", "no-such-sample"], 2, "no such file or sample: no-such-sample"),
        (["send", "push", "--url", "ftp://example"], 2, "not an http(s) URL"),
        (["send", "push", "--url", "http://127.0.0.1:9/webhook"], 3, "cannot reach http://127.0.0.1:9/webhook"),
        (["invoke", "missing.json"], 2, "no such event file: missing.json"),
        (["event"], 2, "give a payload file or sample name"),
        (["replay"], 2, "give the archive bucket"),
        (["replay", "--bucket", "b", "--since", "yesterday"], 2, "not an ISO 8601 time"),
    ],
)
def test_errors_are_one_line_with_meaningful_exit_codes(
    argv: list[str], code: int, message: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ARCHIVE_BUCKET", raising=False)
    assert main(argv) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"webhook {argv[0]}: ")
    assert message in err[-1]


def test_file_payload_needs_an_event_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    payload = tmp_path / "custom.json"
    payload.write_text('{"zen": "hi"}')
    assert main(["event", str(payload)]) == 2
    assert "--event" in capsys.readouterr().err
    assert main(["event", str(payload), "--event", "ping", "-o", str(tmp_path / "e.json")]) == 0


@pytest.mark.parametrize(
    ("options", "status"),
    [([], 202), (["--form"], 202), (["--base64"], 202), (["--form", "--base64"], 202), (["--secret", "x"], 401)],
)
def test_event_output_invoked_by_invoke(
    options: list[str], status: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    event_file = tmp_path / "event.json"
    assert main(["event", "issue_comment", "-o", str(event_file), *options]) == 0
    event = json.loads(event_file.read_text())
    assert event["version"] == "2.0"
    assert event["isBase64Encoded"] is ("--base64" in options)
    capsys.readouterr()
    assert main(["invoke", str(event_file)]) == (0 if status == 202 else 1)
    response = json.loads(capsys.readouterr().out)  # stdout holds only the response
    assert response["statusCode"] == status


def test_invoke_with_a_sam_env_vars_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env_file = tmp_path / "env.json"
    env_file.write_text(json.dumps({"WebhookFunction": {"WEBHOOK_SECRET": "team-secret"}}))
    event_file = tmp_path / "event.json"
    assert main(["event", "push", "--secret", "team-secret", "-o", str(event_file)]) == 0
    assert main(["invoke", str(event_file), "--env-vars", str(env_file)]) == 0
    assert main(["invoke", str(ROOT / "events" / "push.json"), "--env-vars", str(env_file)]) == 1
    assert main(["invoke", str(ROOT / "events" / "push.json")]) == 0  # env.local.json's development secret


def test_invoke_honours_every_variable_of_the_env_vars_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Logs and metrics too are named by the file, not by the environment the tool started in."""
    from handler import app, wiring

    env_file = tmp_path / "env.json"
    variables = {
        "WEBHOOK_SECRET": "team-secret",
        "POWERTOOLS_SERVICE_NAME": "team-webhook",
        "POWERTOOLS_METRICS_NAMESPACE": "TeamWebhooks",
    }
    env_file.write_text(json.dumps({"WebhookFunction": variables}))
    event_file = tmp_path / "event.json"
    options = ["--secret", "team-secret", "--delivery-id", "env-vars-0001", "-o", str(event_file)]
    assert main(["event", "push", *options]) == 0
    wiring.telemetry()  # a receiver already running in this process, under the defaults
    monkeypatch.setattr(app, "_cold_start", True)  # so the ColdStart count (Powertools Metrics) is written too
    capsys.readouterr()
    assert main(["invoke", str(event_file), "--env-vars", str(env_file)]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["statusCode"] == 202  # stdout holds only the response
    documents = [json.loads(line) for line in captured.err.splitlines() if line.startswith("{")]
    [accepted] = [doc for doc in documents if doc.get("message") == "delivery accepted"]
    assert accepted["delivery_id"] == "env-vars-0001"
    assert {doc["service"] for doc in documents} == {"team-webhook"}
    directives = [d for doc in documents for d in doc.get("_aws", {}).get("CloudWatchMetrics", [])]
    assert {d["Namespace"] for d in directives} == {"TeamWebhooks"}
    assert {m["Name"] for d in directives for m in d["Metrics"]} == {"ColdStart", "DeliveryAccepted"}
    # ...and only for that run: the next container is named by the environment again.
    assert wiring.telemetry().settings.service_name == "github-webhook"


def test_event_samples_regenerates_events_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from devkit import events

    written = events.write_all(tmp_path)
    for path in written:
        assert path.read_bytes() == (ROOT / "events" / path.name).read_bytes()


@pytest.fixture
def archived(pipeline: Pipeline) -> dict[str, list[str]]:
    """Deliveries accepted by the receiver (archived and forwarded), then the bus drained."""
    ids: dict[str, list[str]] = {}
    for event in ("push", "issues", "push", "release"):
        body, headers = signed(event)
        assert invoke(http_api_event(body, headers)).status == 202
        ids.setdefault(event, []).append(headers["x-github-delivery"])
    pipeline.forwarded()
    return ids


def test_replay_resends_exactly_the_chosen_event(
    archived: dict[str, list[str]], pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", "--bucket", BUCKET, "--bus", BUS, "--event", "push", "--no-progress"]) == 0
    replayed = pipeline.forwarded()
    assert sorted(e["detail"]["delivery_id"] for e in replayed) == sorted(archived["push"])
    assert all(e["detail"]["payload"]["ref"] == "refs/heads/main" for e in replayed)
    assert capsys.readouterr().out.strip() == "sent 2, failed 0"


def test_replay_one_delivery_id(archived: dict[str, list[str]], pipeline: Pipeline) -> None:
    [release] = archived["release"]
    assert main(["replay", "--bucket", BUCKET, "--bus", BUS, "--delivery-id", release, "--no-progress"]) == 0
    [event] = pipeline.forwarded()
    assert event["detail"]["delivery_id"] == release
    assert event["detail-type"] == "release"
    assert event["detail"]["action"] == "published"


def test_replay_time_range(archived: dict[str, list[str]], pipeline: Pipeline) -> None:
    everything = ["--bucket", BUCKET, "--bus", BUS, "--no-progress"]
    assert main(["replay", *everything, "--since", "2000-01-01", "--until", "2000-01-02"]) == 0
    assert pipeline.forwarded() == []
    assert main(["replay", *everything, "--since", "2000-01-01T00:00Z"]) == 0
    assert len(pipeline.forwarded()) == 4


def test_replay_dry_run_sends_nothing(
    archived: dict[str, list[str]], pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", "--bucket", BUCKET, "--bus", BUS, "--dry-run"]) == 0
    assert pipeline.forwarded() == []
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "would send 4, failed 0"
    assert len([line for line in out if line.startswith("would send deliveries/")]) == 4


def test_replay_reports_failures_and_exits_1(
    archived: dict[str, list[str]], pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    boto3.client("events").delete_event_bus(Name=BUS)
    assert main(["replay", "--bucket", BUCKET, "--bus", BUS, "--event", "issues", "--no-progress"]) == 1
    captured = capsys.readouterr()
    assert captured.out.strip() == "sent 0, failed 1"
    assert "PutEvents failed (ResourceNotFoundException)" in captured.err


def test_with_archive_mode_large_small_deliveries_reach_the_bus_only_and_replay_says_where_they_are(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The stack's default: nothing accepted is lost (on the bus), but S3 keeps only what a claim check needs."""
    from tests.conftest import reset_receiver

    monkeypatch.setenv("ARCHIVE_MODE", "large")
    reset_receiver()
    small_body, small = signed("push")
    payload = sample_payload("push")
    payload["commits"] = [payload["commits"][0] | {"message": f"commit {i} " + "x" * 900} for i in range(300)]
    large_body, large = signed("push", payload=payload)
    assert invoke(http_api_event(small_body, small)).status == 202
    assert invoke(http_api_event(large_body, large)).status == 202
    forwarded = {e["detail"]["delivery_id"]: e["detail"] for e in pipeline.forwarded()}
    assert set(forwarded) == {small["x-github-delivery"], large["x-github-delivery"]}
    assert "archive_location" not in forwarded[small["x-github-delivery"]]
    [key] = pipeline.archived()  # the large one only: its archive object is its claim check
    assert forwarded[large["x-github-delivery"]]["payload_location"] == {"bucket": BUCKET, "key": key}
    delivery_id = small["x-github-delivery"]
    assert main(["replay", "--bucket", BUCKET, "--bus", BUS, "--delivery-id", delivery_id, "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip().endswith("sent 0, failed 0")
    assert "aws events start-replay" in captured.err


def test_invoke_takes_the_region_from_aws_region_as_lambda_sets_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, aws: None
) -> None:
    """botocore reads AWS_DEFAULT_REGION only; an env-vars file written for Lambda sets AWS_REGION."""
    boto3.client("ssm", region_name="eu-west-1").put_parameter(
        Name="/team/secret", Value="team-secret", Type="SecureString"
    )
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)
    env_file = tmp_path / "env.json"
    variables = {"WEBHOOK_SECRET_PARAMETER": "/team/secret", "WEBHOOK_SECRET": "", "AWS_REGION": "eu-west-1"}
    env_file.write_text(json.dumps({"WebhookFunction": variables}))
    event_file = tmp_path / "event.json"
    assert main(["event", "push", "--secret", "team-secret", "-o", str(event_file)]) == 0
    capsys.readouterr()
    assert main(["invoke", str(event_file), "--env-vars", str(env_file)]) == 0
    assert json.loads(capsys.readouterr().out)["statusCode"] == 202
