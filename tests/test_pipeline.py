"""The delivery pipeline against moto: EventBridge hand-off, claim check, S3 archive, deduplication."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from devkit.github import encode_body, github_headers, sample_payload
from handler.aws.clients import ATTEMPT_SECONDS
from handler.core.archive import parse_key
from tests.conftest import BUCKET, BUS, Logs, Pipeline, Send, inject, reset_receiver, signed

EVENTS = ["ping", "push", "pull_request", "issues", "issue_comment", "workflow_run", "release", "installation"]


@pytest.mark.parametrize("event", EVENTS)
def test_accepted_delivery_reaches_the_bus_once_with_the_documented_detail(
    send: Send, pipeline: Pipeline, event: str
) -> None:
    body, headers = signed(event)
    answer = send(body, headers)
    assert (answer.status, answer.body["status"]) == (202, "accepted")
    [forwarded] = pipeline.forwarded()
    assert forwarded["source"] == "github.com"
    assert forwarded["detail-type"] == event
    detail = forwarded["detail"]
    [key] = pipeline.archived()
    payload = sample_payload(event)
    assert detail == {
        "delivery_id": headers["x-github-delivery"],
        "event": event,
        "action": payload.get("action"),
        "hook_id": headers["x-github-hook-id"],
        "installation_target": {"type": "repository", "id": headers["x-github-hook-installation-target-id"]},
        "archive_location": {"bucket": BUCKET, "key": key},
        "payload": payload,
    }


def test_form_encoded_delivery_forwards_the_parsed_payload(send: Send, pipeline: Pipeline) -> None:
    body, headers = signed("push", form=True)
    assert send(body, headers).status == 202
    [forwarded] = pipeline.forwarded()
    assert forwarded["detail"]["payload"] == sample_payload("push")


def test_tampered_or_malformed_delivery_forwards_archives_and_records_nothing(send: Send, pipeline: Pipeline) -> None:
    body, headers = signed("push")
    assert send(body.replace(b"main", b"evil"), headers).status == 401
    assert send(b"[]", github_headers("push", b"[]")).status == 400
    assert pipeline.forwarded() == []
    assert pipeline.archived() == []
    assert pipeline.records() == []


def test_duplicate_is_answered_duplicate_and_forwards_nothing(send: Send, pipeline: Pipeline) -> None:
    body, headers = signed("push")
    assert send(body, headers).body["status"] == "accepted"
    answer = send(body, headers)
    assert answer.status == 202
    assert answer.body == {"status": "duplicate", "delivery_id": headers["x-github-delivery"]}
    assert len(pipeline.forwarded()) == 1
    assert len(pipeline.archived()) == 1


def test_duplicate_is_recognised_by_a_new_container(send: Send, pipeline: Pipeline) -> None:
    body, headers = signed("push")
    assert send(body, headers).body["status"] == "accepted"
    reset_receiver()
    assert send(body, headers).body["status"] == "duplicate"
    assert len(pipeline.forwarded()) == 1


def test_failed_put_events_is_503_records_nothing_and_a_redelivery_forwards_once(
    send: Send, pipeline: Pipeline
) -> None:
    boto3.client("events").delete_event_bus(Name=BUS)
    body, headers = signed("push")
    answer = send(body, headers)
    assert answer.status == 503
    assert answer.body == {"error": "forward_failed", "message": "PutEvents failed (ResourceNotFoundException)"}
    assert pipeline.records() == []  # the failed hand-off is not remembered as done
    pipeline.create_bus()  # the bus is back
    answer = send(body, headers)  # GitHub's redelivery: same delivery id, same bytes
    assert answer.body["status"] == "accepted"
    assert len(pipeline.forwarded()) == 1
    assert send(body, headers).body["status"] == "duplicate"


def test_failed_entry_is_503_and_never_accepted(send: Send, pipeline: Pipeline) -> None:
    calls = inject(
        "before-call.events.PutEvents",
        {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "try again"}]},
    )
    body, headers = signed("push")
    answer = send(body, headers)
    assert calls == [1]
    assert answer.status == 503
    assert answer.body == {"error": "forward_failed", "message": "PutEvents entry failed (InternalFailure)"}
    assert pipeline.records() == []


def test_throttled_put_events_is_503(send: Send, pipeline: Pipeline) -> None:
    error = ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "PutEvents")
    inject("before-call.events.PutEvents", error)
    body, headers = signed("push")
    answer = send(body, headers)
    assert (answer.status, answer.body["error"]) == (503, "forward_failed")
    assert "ThrottlingException" in answer.body["message"]


def test_payload_over_the_entry_limit_is_claim_checked_to_the_exact_bytes(
    send: Send, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    payload = sample_payload("push")
    # About 400 KB, well over PutEvents' 256 KB entry limit (the default EVENT_MAX_ENTRY_BYTES).
    payload["commits"] = [payload["commits"][0] | {"message": f"commit {i} " + "é" * 400} for i in range(400)]
    body, headers = signed("push", payload=payload)
    assert len(body) > 256 * 1024
    assert send(body, headers).status == 202
    [forwarded] = pipeline.forwarded()
    detail = forwarded["detail"]
    assert "payload" not in detail
    location = detail["payload_location"]
    assert pipeline.object(location["bucket"], location["key"])["Body"].read() == body
    # A JSON delivery's archive object is the payload: it is pointed at, not written twice.
    assert location == detail["archive_location"]
    assert pipeline.archived() == [location["key"]]


def test_form_delivery_over_the_limit_is_claim_checked_as_json(
    send: Send, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVENT_MAX_ENTRY_BYTES", "2048")
    body, headers = signed("push", form=True)
    assert send(body, headers).status == 202
    [forwarded] = pipeline.forwarded()
    location = forwarded["detail"]["payload_location"]
    assert location["key"].startswith("payloads/")
    stored = pipeline.object(location["bucket"], location["key"])
    assert stored["ContentType"] == "application/json"
    assert json.loads(stored["Body"].read()) == sample_payload("push")


def test_claim_check_without_a_bucket_is_503_not_a_truncated_event(
    send: Send, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ARCHIVE_BUCKET")
    monkeypatch.setenv("EVENT_MAX_ENTRY_BYTES", "2048")
    body, headers = signed("push")
    answer = send(body, headers)
    assert (answer.status, answer.body["error"]) == (503, "forward_failed")
    assert pipeline.forwarded() == []


def test_payload_under_the_limit_stays_inline(send: Send, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENT_MAX_ENTRY_BYTES", str(64 * 1024))
    body, headers = signed("pull_request")
    assert send(body, headers).status == 202
    [forwarded] = pipeline.forwarded()
    assert forwarded["detail"]["payload"] == sample_payload("pull_request")


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


def test_archive_keys_sort_by_time(send: Send, pipeline: Pipeline) -> None:
    ids = []
    for event in ("ping", "push", "issues"):
        body, headers = signed(event)
        assert send(body, headers).status == 202
        ids.append(headers["x-github-delivery"])
    keys = pipeline.archived()  # S3 lists keys in lexicographic order
    assert [parse_key(key)["delivery_id"] for key in keys] == ids


def test_failed_archive_is_503_and_nothing_is_forwarded_or_recorded(send: Send, pipeline: Pipeline) -> None:
    s3 = boto3.client("s3")
    s3.delete_bucket(Bucket=BUCKET)
    body, headers = signed("push")
    answer = send(body, headers)
    assert answer.status == 503
    assert answer.body == {"error": "archive_failed", "message": "S3 PutObject failed (NoSuchBucket)"}
    assert pipeline.forwarded() == []
    assert pipeline.records() == []
    s3.create_bucket(Bucket=BUCKET)
    assert send(body, headers).body["status"] == "accepted"
    assert len(pipeline.forwarded()) == 1


def test_unavailable_table_is_503_and_nothing_is_handed_off(send: Send, pipeline: Pipeline) -> None:
    boto3.client("dynamodb").delete_table(TableName="github-webhook-deliveries")
    body, headers = signed("push")
    answer = send(body, headers)
    assert answer.status == 503
    assert answer.body["error"] == "deduplication_unavailable"
    assert "ResourceNotFoundException" in answer.body["message"]
    assert pipeline.forwarded() == []
    assert pipeline.archived() == []


def test_bus_only_and_archive_only_configurations(send: Send, pipeline: Pipeline, monkeypatch) -> None:
    monkeypatch.delenv("ARCHIVE_BUCKET")
    monkeypatch.delenv("IDEMPOTENCY_TABLE")
    body, headers = signed("push")
    assert send(body, headers).status == 202
    assert send(body, headers).body["status"] == "accepted"  # no table: no deduplication
    assert len(pipeline.forwarded()) == 2
    assert pipeline.archived() == []
    monkeypatch.delenv("EVENT_BUS_NAME")
    monkeypatch.setenv("ARCHIVE_BUCKET", BUCKET)
    reset_receiver()
    assert send(body, headers).status == 202
    assert pipeline.forwarded() == []
    assert len(pipeline.archived()) == 1


def test_concurrent_duplicate_gets_409_while_the_first_is_in_flight(pipeline: Pipeline) -> None:
    """The second copy arrives while the first is still archiving: it is not accepted."""
    from tests.conftest import invoke_in_thread

    release, entered = threading.Event(), threading.Event()

    def slow_archive(**_: object) -> None:
        entered.set()
        release.wait(5)

    boto3.DEFAULT_SESSION.events.register("before-call.s3.PutObject", slow_archive)
    body, headers = signed("push")
    first = invoke_in_thread(body, headers)
    assert entered.wait(5)
    second = invoke_in_thread(body, headers)
    second.join()
    release.set()
    first.join()
    assert (second.answer.status, second.answer.body["error"]) == (409, "in_progress")
    assert first.answer.status == 202
    assert first.answer.body["status"] == "accepted"
    assert len(pipeline.forwarded()) == 1


def test_lambda_context_is_registered_so_in_progress_records_expire_with_the_invocation(
    pipeline: Pipeline,
) -> None:
    from tests.conftest import invoke

    body, headers = signed("push")
    from devkit.apigw import http_api_event

    assert invoke(http_api_event(body, headers)).status == 202
    [record] = pipeline.records()
    assert record["status"]["S"] == "COMPLETED"
    assert int(record["expiration"]["N"]) > time.time() + 3 * 24 * 3600  # remembered past GitHub's 3 days


def test_every_aws_client_has_a_short_time_budget(pipeline: Pipeline) -> None:
    from handler.aws.clients import client

    for service in ("ssm", "events", "s3", "dynamodb"):
        config = client(service).meta.config
        assert config.connect_timeout <= 1
        assert config.read_timeout <= 2
        assert config.retries["total_max_attempts"] <= 2


def test_unreachable_bus_endpoint_is_a_503_not_a_timeout(send: Send, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENT_BUS_NAME", BUS)
    monkeypatch.setenv("AWS_ENDPOINT_URL_EVENTBRIDGE", "http://127.0.0.1:9")
    body, headers = signed("push")
    answer = send(body, headers)
    assert (answer.status, answer.body["error"]) == (503, "forward_failed")


def test_body_keeps_non_ascii_json_intact_on_the_bus(send: Send, pipeline: Pipeline) -> None:
    payload = sample_payload("push")
    body = encode_body(payload)
    assert send(body, github_headers("push", body)).status == 202
    [forwarded] = pipeline.forwarded()
    assert forwarded["detail"]["payload"]["head_commit"]["message"] == payload["head_commit"]["message"]


def test_readme_rule_pattern_matches_an_opened_pull_request_and_nothing_else(send: Send, pipeline: Pipeline) -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    after = readme.split("A rule for opened pull requests", 1)[1]
    pattern = after.split("```json\n", 1)[1].split("```", 1)[0]
    events, sqs = boto3.client("events"), boto3.client("sqs")
    queue = sqs.create_queue(QueueName="readme-rule")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="readme", EventBusName=BUS, EventPattern=pattern)
    events.put_targets(Rule="readme", EventBusName=BUS, Targets=[{"Id": "q", "Arn": arn}])
    for event in ("pull_request", "push", "issues"):
        assert send(*signed(event)).status == 202
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
    assert [json.loads(m["Body"])["detail-type"] for m in messages] == ["pull_request"]


def test_table_failing_after_the_hand_off_still_accepts_the_delivery_once(
    send: Send, pipeline: Pipeline, logs: Logs
) -> None:
    """The event is on the bus: a 503 would make GitHub's redelivery forward it a second time."""
    error = ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}}, "UpdateItem")
    calls = inject("before-call.dynamodb.UpdateItem", error)
    body, headers = signed("push")
    answer = send(body, headers)
    assert calls == [1]
    assert (answer.status, answer.body["status"]) == (202, "accepted")
    assert len(pipeline.forwarded()) == 1
    [line] = logs.records
    assert line["message"] == "delivery accepted but not recorded as done"
    assert logs.metrics == [("DeliveryAccepted", {"event": "push"}), ("DedupRecordFailed", {"event": "push"})]


def test_table_failing_to_forget_a_failed_hand_off_is_503_then_409_until_the_record_expires(
    send: Send, pipeline: Pipeline
) -> None:
    boto3.client("events").delete_event_bus(Name=BUS)
    inject("before-call.dynamodb.DeleteItem", ClientError({"Error": {"Code": "InternalServerError"}}, "DeleteItem"))
    body, headers = signed("push")
    answer = send(body, headers)
    assert (answer.status, answer.body["error"]) == (503, "deduplication_unavailable")
    assert send(body, headers).status == 409  # the INPROGRESS record is left until the invocation's deadline


def test_hand_off_that_would_outlast_the_time_budget_is_503_and_leaves_nothing(
    send: Send, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEBHOOK_TIME_BUDGET_SECONDS", "4")

    def slow_archive(**_: object) -> None:
        # S3 answers, but leaves less than one whole attempt (connect + read timeout) for PutEvents.
        time.sleep(4 - ATTEMPT_SECONDS + 0.1)

    boto3.DEFAULT_SESSION.events.register("before-call.s3.PutObject", slow_archive)
    body, headers = signed("push")
    answer = send(body, headers)
    assert answer.status == 503
    assert answer.body == {"error": "timeout", "message": "not enough time left for a call to AWS"}
    assert pipeline.forwarded() == []
    # No time was left to delete the record either: it stays INPROGRESS (never COMPLETED) and expires
    # with the invocation (or the request's budget under uvicorn), so GitHub's redelivery is processed.
    assert [record["status"]["S"] for record in pipeline.records()] == ["INPROGRESS"]
    [record] = pipeline.records()
    assert int(record["in_progress_expiration"]["N"]) <= time.time() * 1000 + 10_000


def test_failed_claim_check_write_is_503(send: Send, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ARCHIVE_BUCKET")
    monkeypatch.setenv("PAYLOAD_BUCKET", "no-such-bucket")
    monkeypatch.setenv("EVENT_MAX_ENTRY_BYTES", "2048")
    body, headers = signed("push")
    answer = send(body, headers)
    assert (answer.status, answer.body["error"]) == (503, "archive_failed")
    assert "NoSuchBucket" in answer.body["message"]
    assert pipeline.forwarded() == []
    assert pipeline.records() == []


def test_claim_check_object_is_encrypted(send: Send, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENT_MAX_ENTRY_BYTES", "2048")
    assert send(*signed("issues", form=True)).status == 202
    location = pipeline.forwarded()[0]["detail"]["payload_location"]
    assert pipeline.object(location["bucket"], location["key"])["ServerSideEncryption"] == "AES256"


@pytest.mark.parametrize(("slack", "inline"), [(1, True), (0, False)])
def test_entry_size_boundary_counts_utf8_bytes_of_source_type_and_detail(
    send: Send, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, slack: int, inline: bool
) -> None:
    from handler.core.delivery import parse_delivery
    from handler.core.envelope import detail, entry_size

    body, headers = signed("push")  # carries multibyte text: bytes, not characters, must be counted
    size = entry_size("push", detail(parse_delivery(headers, body)))
    assert size > len(detail(parse_delivery(headers, body))) + len("push")  # multibyte, and more than Detail
    monkeypatch.delenv("ARCHIVE_BUCKET")
    monkeypatch.setenv("PAYLOAD_BUCKET", BUCKET)
    monkeypatch.setenv("EVENT_MAX_ENTRY_BYTES", str(size + slack))  # PutEvents wants less than the limit
    assert send(body, headers).status == 202
    [forwarded] = pipeline.forwarded()
    assert ("payload" in forwarded["detail"]) is inline
    assert ("payload_location" in forwarded["detail"]) is not inline


def test_in_progress_record_expires_with_the_lambda_invocation(pipeline: Pipeline) -> None:
    from devkit.apigw import LambdaContext, http_api_event
    from handler.app import handler

    body, headers = signed("push")
    before = time.time() * 1000
    handler(http_api_event(body, headers), LambdaContext(timeout_ms=5000))
    [record] = pipeline.records()
    expiry = int(record["in_progress_expiration"]["N"])
    assert before + 3500 <= expiry <= time.time() * 1000 + 5000  # the invocation's 5 s, not a default


def test_cold_start_and_hand_off_failures_are_counted(
    pipeline: Pipeline, logs: Logs, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from devkit.apigw import http_api_event
    from handler import app
    from tests.conftest import emf_metrics, invoke

    monkeypatch.setattr(app, "_cold_start", True)
    boto3.client("events").delete_event_bus(Name=BUS)
    invoke(http_api_event(*signed("push")))
    invoke(http_api_event(*signed("push")))
    # ColdStart is a line of its own (Powertools Metrics); each delivery's metrics ride on its log line.
    stdout = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert emf_metrics(stdout) == [("ColdStart", {})]
    assert logs.metrics == [("HandoffFailed", {"target": "bus"}), ("HandoffFailed", {"target": "bus"})]
