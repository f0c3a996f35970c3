"""Pull recovery's hand-off (handler.core.pull over handler.aws.pipeline) against moto, beside the
real receiver: one record and one key for both paths, the live event contract, the claim check."""

from __future__ import annotations

import json
from typing import Any

import pytest

from devkit.github import DEV_SECRET, HOOK_ID, sample_payload
from handler.aws import pipeline as wiring
from handler.core.ports import Status
from handler.core.pull import PullRecovery, request_of
from handler.core.recovery import Unrecoverable
from handler.core.settings import Settings
from tests.conftest import Pipeline, Send, signed
from tests.fakes import Telemetry

GUID = "6a1f2e00-cc78-11e3-81ab-4c9367dc0958"


def record(payload: dict[str, Any] | None, *, guid: str = GUID, event: str = "push") -> dict[str, Any]:
    """GitHub's record of one attempt (``GET …/deliveries/{id}``), with the request it sent."""
    headers = {
        "Accept": "*/*",
        "User-Agent": "GitHub-Hookshot/abc123",
        "X-GitHub-Delivery": guid,
        "X-GitHub-Event": event,
        "X-GitHub-Hook-ID": HOOK_ID,  # the hook devkit's signed deliveries come from
        "X-GitHub-Hook-Installation-Target-ID": "79929171",
        "X-GitHub-Hook-Installation-Target-Type": "repository",
        "X-Hub-Signature-256": "sha256=" + "0" * 64,
        "content-type": "application/x-www-form-urlencoded",
    }
    return {
        "id": 12345678,
        "guid": guid,
        "delivered_at": "2026-12-03T09:00:00Z",
        "redelivery": False,
        "status": "Invalid HTTP Response: 503",
        "status_code": 503,
        "event": event,
        "action": payload.get("action") if payload else None,
        "request": {"headers": headers, "payload": payload},
        "response": {"headers": {}, "payload": '{"error":"archive_failed"}'},
    }


@pytest.fixture
def recovery(pipeline: Pipeline) -> PullRecovery:
    """The redelivery function's pull pipeline, wired as handler.redelivery wires it."""
    settings = Settings.from_env()
    return PullRecovery(
        handoff=wiring.handoff(settings, Telemetry()), once=wiring.deduplicator(settings), time_left=lambda: 60.0
    )


def test_a_recovered_delivery_has_the_live_contract_plus_recovered(recovery: PullRecovery, pipeline: Pipeline) -> None:
    payload = sample_payload("issues")
    assert recovery.recover(record(payload, event="issues")) is Status.ACCEPTED
    [event] = pipeline.forwarded()
    assert event["detail-type"] == "issues"
    detail = event["detail"]
    assert detail["payload"] == payload
    assert (detail["delivery_id"], detail["event"], detail["action"], detail["hook_id"]) == (
        GUID,
        "issues",
        "opened",
        HOOK_ID,
    )
    assert detail["installation_target"] == {"type": "repository", "id": "79929171"}
    assert detail["recovered"] is True
    [key] = pipeline.archived()
    assert json.loads(pipeline.object(detail["archive_location"]["bucket"], key)["Body"].read()) == payload


def test_a_delivery_the_receiver_accepted_is_not_put_on_the_bus_again(
    recovery: PullRecovery, pipeline: Pipeline, send: Send
) -> None:
    """GitHub recorded a timeout, but the receiver had handed it off: same key, so a duplicate."""
    payload = sample_payload("push")
    body, headers = signed("push", payload=payload, delivery_id=GUID)
    assert send(body, headers).status == 202
    assert len(pipeline.forwarded()) == 1
    assert recovery.recover(record(payload)) is Status.DUPLICATE
    assert pipeline.forwarded() == []


def test_a_recovered_delivery_redelivered_later_by_hand_is_answered_duplicate(
    recovery: PullRecovery, pipeline: Pipeline, send: Send
) -> None:
    payload = sample_payload("push")
    assert recovery.recover(record(payload)) is Status.ACCEPTED
    assert len(pipeline.forwarded()) == 1
    body, headers = signed("push", payload=payload, delivery_id=GUID)
    answer = send(body, headers)
    assert (answer.status, answer.body["status"]) == (202, "duplicate")
    assert pipeline.forwarded() == []


def test_a_payload_larger_than_lambda_accepts_is_recovered_through_the_claim_check(
    recovery: PullRecovery, pipeline: Pipeline
) -> None:
    """GitHub sends up to 25 MB; API Gateway and Lambda take 6 MB, so such a delivery fails every redelivery."""
    payload = sample_payload("push") | {"commits": [{"message": "x" * 1000, "n": n} for n in range(7000)]}
    text = json.dumps(payload, separators=(",", ":")).encode()
    assert len(text) > 6 * 1024 * 1024
    assert recovery.recover(record(payload)) is Status.ACCEPTED
    [event] = pipeline.forwarded()
    location = event["detail"]["payload_location"]
    assert "payload" not in event["detail"]
    assert json.loads(pipeline.object(location["bucket"], location["key"])["Body"].read()) == payload


def test_a_record_without_a_payload_or_a_usable_header_is_unrecoverable() -> None:
    with pytest.raises(Unrecoverable, match="no payload"):
        request_of(record(None))
    broken = record({"zen": "x"})
    broken["request"]["headers"]["X-GitHub-Event"] = "not an event!"
    from handler.core.pull import delivery_of

    with pytest.raises(Unrecoverable, match="invalid_header"):
        delivery_of(broken)


def test_the_body_is_the_payload_as_compact_json_and_the_signature_is_not_kept() -> None:
    headers, body = request_of(record({"zen": "Keep it logically awesome.", "hook_id": 42}))
    assert body == b'{"zen":"Keep it logically awesome.","hook_id":42}'
    assert headers["content-type"] == "application/json"  # the form encoding is GitHub's, not the record's
    assert headers["x-github-delivery"] == GUID
    assert DEV_SECRET not in json.dumps(headers)
