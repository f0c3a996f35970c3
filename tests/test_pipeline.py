"""The hand-off against moto, end to end: the event contract on a real bus (with the README's rule), the
archive object, the claim check in S3, the idempotency records, and the adapters' own limits. The flow
(what is handed off when, and what is not) is tested with fakes in tests/core/; each AWS failure in
tests/security/test_faults.py."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import boto3
import pytest
from fastapi.testclient import TestClient

from devkit.apigw import LambdaContext, http_api_event
from devkit.github import sample_payload
from handler.aws.clients import ATTEMPT_SECONDS
from handler.core.archive import parse_key
from tests import fakes
from tests.conftest import BUCKET, BUS, Answer, Logs, Pipeline, Send, invoke, reset_receiver, signed


def post(body: bytes, headers: dict[str, str]) -> Answer:
    """Through the FastAPI app, as under uvicorn."""
    from handler.app import app

    response = TestClient(app).post("/webhook", content=body, headers=headers)
    return Answer(response.status_code, response.json(), dict(response.headers))


def test_accepted_deliveries_reach_a_real_bus_in_the_documented_shape_matched_by_the_readme_rule(
    send: Send, pipeline: Pipeline
) -> None:
    """The event contract as consumers see it: envelope, detail, and the README's example rule."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    after = readme.split("A rule for opened pull requests", 1)[1]
    pattern = after.split("```json\n", 1)[1].split("```", 1)[0]
    events, sqs = boto3.client("events"), boto3.client("sqs")
    queue = sqs.create_queue(QueueName="readme-rule")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="readme", EventBusName=BUS, EventPattern=pattern)
    events.put_targets(Rule="readme", EventBusName=BUS, Targets=[{"Id": "q", "Arn": arn}])

    sent = {}
    for event in ("pull_request", "issues", "push"):  # issues and push carry non-ASCII text
        body, headers = signed(event)
        answer = send(body, headers)
        assert (answer.status, answer.body["status"]) == (202, "accepted")
        sent[headers["x-github-delivery"]] = (event, headers)
    forwarded = pipeline.forwarded()
    archived = {parse_key(key)["delivery_id"]: key for key in pipeline.archived()}
    assert sorted(e["detail"]["delivery_id"] for e in forwarded) == sorted(sent)
    for envelope in forwarded:
        event, headers = sent[envelope["detail"]["delivery_id"]]
        assert (envelope["source"], envelope["detail-type"]) == ("github.com", event)
        payload = sample_payload(event)
        assert envelope["detail"] == {
            "delivery_id": headers["x-github-delivery"],
            "event": event,
            "action": payload.get("action"),
            "hook_id": headers["x-github-hook-id"],
            "installation_target": {"type": "repository", "id": headers["x-github-hook-installation-target-id"]},
            "archive_location": {"bucket": BUCKET, "key": archived[headers["x-github-delivery"]]},
            "payload": payload,
        }
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
    assert [json.loads(m["Body"])["detail-type"] for m in messages] == ["pull_request"]


def test_duplicate_is_recognised_by_a_new_container_and_forwards_nothing(send: Send, pipeline: Pipeline) -> None:
    body, headers = signed("push")
    assert send(body, headers).body["status"] == "accepted"
    reset_receiver()
    answer = send(body, headers)
    assert answer.status == 202
    assert answer.body == {"status": "duplicate", "delivery_id": headers["x-github-delivery"]}
    assert len(pipeline.forwarded()) == 1
    assert len(pipeline.archived()) == 1
    assert [record["status"]["S"] for record in pipeline.records()] == ["COMPLETED"]


def test_payload_over_the_entry_limit_is_claim_checked_to_the_exact_bytes(pipeline: Pipeline) -> None:
    payload = sample_payload("push")
    # About 400 KB, well over PutEvents' 256 KB entry limit (the default EVENT_MAX_ENTRY_BYTES).
    payload["commits"] = [payload["commits"][0] | {"message": f"commit {i} " + "é" * 400} for i in range(400)]
    body, headers = signed("push", payload=payload)
    assert len(body) > 256 * 1024
    assert invoke(http_api_event(body, headers)).status == 202
    [forwarded] = pipeline.forwarded()
    detail = forwarded["detail"]
    assert "payload" not in detail
    location = detail["payload_location"]
    assert pipeline.object(location["bucket"], location["key"])["Body"].read() == body
    # A JSON delivery's archive object is the payload: it is pointed at, not written twice.
    assert location == detail["archive_location"]
    assert pipeline.archived() == [location["key"]]


def test_form_delivery_over_the_limit_is_claim_checked_as_encrypted_json(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVENT_MAX_ENTRY_BYTES", "2048")
    body, headers = signed("push", form=True)
    assert invoke(http_api_event(body, headers)).status == 202
    [forwarded] = pipeline.forwarded()
    location = forwarded["detail"]["payload_location"]
    assert location["key"].startswith("payloads/")
    stored = pipeline.object(location["bucket"], location["key"])
    assert stored["ContentType"] == "application/json"
    assert stored["ServerSideEncryption"] == "AES256"
    assert json.loads(stored["Body"].read()) == sample_payload("push")


def test_a_claim_check_for_a_payload_that_repeats_a_key_carries_what_was_routed(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first-key-wins consumer of the claim check must not read `opened` where the receiver routed `closed`."""
    monkeypatch.setenv("EVENT_MAX_ENTRY_BYTES", "2048")
    text = json.dumps({**sample_payload("pull_request"), "action": "closed"}, separators=(",", ":")).encode()
    body, headers = signed("pull_request", payload=b'{"action":"opened",' + text.removeprefix(b"{"))
    assert invoke(http_api_event(body, headers)).status == 202
    [forwarded] = pipeline.forwarded()
    detail = forwarded["detail"]
    assert detail["action"] == "closed"
    location = detail["payload_location"]
    assert location != detail["archive_location"]
    claim_check = pipeline.object(location["bucket"], location["key"])["Body"].read()
    first_key_wins = json.loads(claim_check, object_pairs_hook=lambda pairs: dict(reversed(pairs)))
    assert first_key_wins["action"] == "closed"
    assert pipeline.object(BUCKET, detail["archive_location"]["key"])["Body"].read() == body


def test_archive_holds_the_exact_body_and_headers_but_no_signature(send: Send, pipeline: Pipeline) -> None:
    body, headers = signed("pull_request", form=True)
    assert send(body, headers).status == 202
    [key] = pipeline.archived()
    assert parse_key(key) == {
        "stamp": key.rsplit("/", 1)[1].split("_", 1)[0],
        "event": "pull_request",
        "delivery_id": headers["x-github-delivery"],
    }
    stored = pipeline.object(BUCKET, key)
    assert stored["Body"].read() == body
    assert stored["ContentType"] == "application/octet-stream"
    assert stored["Metadata"]["content-type"] == "application/x-www-form-urlencoded"
    assert stored["ServerSideEncryption"] == "AES256"
    metadata = stored["Metadata"]
    assert metadata["x-github-event"] == "pull_request"
    assert metadata["x-github-delivery"] == headers["x-github-delivery"]
    assert metadata["x-github-hook-id"] == headers["x-github-hook-id"]
    assert metadata["user-agent"].startswith("GitHub-Hookshot/")
    assert not any("signature" in name for name in metadata)
    assert headers["x-hub-signature-256"] not in json.dumps(metadata)


def test_bus_only_and_archive_only_configurations(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ARCHIVE_BUCKET")
    monkeypatch.delenv("IDEMPOTENCY_TABLE")
    event = http_api_event(*signed("push"))
    assert invoke(event).status == 202
    assert invoke(event).body["status"] == "accepted"  # no table: no deduplication
    assert len(pipeline.forwarded()) == 2
    assert pipeline.archived() == []
    monkeypatch.delenv("EVENT_BUS_NAME")
    monkeypatch.setenv("ARCHIVE_BUCKET", BUCKET)
    reset_receiver()
    assert invoke(event).status == 202
    assert pipeline.forwarded() == []
    assert len(pipeline.archived()) == 1


def test_concurrent_duplicate_gets_409_while_the_first_is_in_flight(pipeline: Pipeline) -> None:
    """The second copy arrives while the first is still archiving: it is not accepted."""
    from tests.conftest import invoke_in_thread

    release, entered = threading.Event(), threading.Event()

    def slow_archive(**_: object) -> None:
        entered.set()
        release.wait(60)  # released as soon as the second has answered; the bound only ends a hang

    boto3.DEFAULT_SESSION.events.register("before-call.s3.PutObject", slow_archive)
    body, headers = signed("push")
    first = invoke_in_thread(body, headers)
    assert entered.wait(60)
    second = invoke_in_thread(body, headers)
    second.join()
    release.set()
    first.join()
    assert (second.answer.status, second.answer.body["error"]) == (409, "in_progress")
    assert first.answer.status == 202
    assert first.answer.body["status"] == "accepted"
    assert len(pipeline.forwarded()) == 1


def test_a_completed_record_is_remembered_past_githubs_three_days(pipeline: Pipeline) -> None:
    assert invoke(http_api_event(*signed("push"))).status == 202
    [record] = pipeline.records()
    assert record["status"]["S"] == "COMPLETED"
    assert int(record["expiration"]["N"]) > time.time() + 3 * 24 * 3600


def test_a_deliverys_record_is_found_by_its_id(pipeline: Pipeline) -> None:
    """devkit's record_status finds the record under the key the receiver's Deduplicator writes
    (tests/test_answer_time.py tells its scenarios' records apart with it)."""
    body, headers = signed("push")
    assert invoke(http_api_event(body, headers)).status == 202
    assert pipeline.resources.record_status(headers["x-github-delivery"], headers["x-github-hook-id"]) == "COMPLETED"
    assert pipeline.resources.record_status("another-delivery") is None


def test_every_aws_client_has_a_short_time_budget(pipeline: Pipeline) -> None:
    from handler.aws.clients import client

    for service in ("ssm", "events", "s3", "dynamodb"):
        config = client(service).meta.config
        assert config.connect_timeout <= 1
        assert config.read_timeout <= 2
        assert config.retries["total_max_attempts"] <= 2


def test_unreachable_bus_endpoint_is_a_503_not_a_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENT_BUS_NAME", BUS)
    monkeypatch.setenv("AWS_ENDPOINT_URL_EVENTBRIDGE", "http://127.0.0.1:9")
    answer = invoke(http_api_event(*signed("push")))
    assert (answer.status, answer.body["error"]) == (503, "forward_failed")


def test_hand_off_that_would_outlast_the_time_budget_is_503_and_leaves_nothing(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, budget_clock: fakes.Clock
) -> None:
    """Under uvicorn, where the request's budget stands in for the Lambda context as the record's deadline
    (the Lambda context's own: test_in_progress_record_expires_with_the_lambda_invocation)."""
    monkeypatch.setenv("WEBHOOK_TIME_BUDGET_SECONDS", "5")

    def slow_archive(**_: object) -> None:
        # S3 answers, but leaves less than one whole attempt (connect + read timeout) for PutEvents.
        budget_clock.advance(5 - ATTEMPT_SECONDS + 0.1)

    boto3.DEFAULT_SESSION.events.register("after-call.s3.PutObject", slow_archive)
    body, headers = signed("push")
    answer = post(body, headers)
    assert answer.status == 503
    assert answer.body == {"error": "timeout", "message": "not enough time left for a call to AWS"}
    assert pipeline.forwarded() == []
    # No time was left to delete the record either: it stays INPROGRESS (never COMPLETED) and expires
    # with the invocation (or the request's budget under uvicorn), so GitHub's redelivery is processed.
    assert [record["status"]["S"] for record in pipeline.records()] == ["INPROGRESS"]
    [record] = pipeline.records()
    assert int(record["in_progress_expiration"]["N"]) <= time.time() * 1000 + 5000  # the budget's 5 s


def test_failed_claim_check_write_is_503(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ARCHIVE_BUCKET")
    monkeypatch.setenv("PAYLOAD_BUCKET", "no-such-bucket")
    monkeypatch.setenv("EVENT_MAX_ENTRY_BYTES", "2048")
    answer = invoke(http_api_event(*signed("push")))
    assert (answer.status, answer.body["error"]) == (503, "archive_failed")
    assert answer.body["message"] == "S3 PutObject of the payload failed (NoSuchBucket)"
    assert pipeline.forwarded() == []
    assert pipeline.records() == []


class FiveSecondsLeft(LambdaContext):
    """An invocation that always has 5 s left, however long this machine takes to reach the table."""

    def get_remaining_time_in_millis(self) -> int:
        return 5000


def test_in_progress_record_expires_with_the_lambda_invocation(pipeline: Pipeline) -> None:
    from handler.app import handler

    body, headers = signed("push")
    before = time.time() * 1000
    handler(http_api_event(body, headers), FiveSecondsLeft())
    [record] = pipeline.records()
    expiry = int(record["in_progress_expiration"]["N"])
    # The invocation's 5 s, not a default (1 ms: Powertools truncates its clock to whole milliseconds).
    assert before + 5000 - 1 <= expiry <= time.time() * 1000 + 5000


def test_cold_start_and_hand_off_failures_are_counted(
    pipeline: Pipeline, logs: Logs, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from handler import app
    from tests.conftest import emf_metrics

    monkeypatch.setattr(app, "_cold_start", True)
    boto3.client("events").delete_event_bus(Name=BUS)
    invoke(http_api_event(*signed("push")))
    invoke(http_api_event(*signed("push")))
    # ColdStart is a line of its own (Powertools Metrics); each delivery's metrics ride on its log line.
    stdout = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert emf_metrics(stdout) == [("ColdStart", {})]
    assert logs.metrics == [("HandoffFailed", {"target": "bus"}), ("HandoffFailed", {"target": "bus"})]
