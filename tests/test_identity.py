"""A delivery's identity through the real handler against moto: the key (hook and delivery,
case-insensitive), the body bound to the record, replay protection, and what each costs in
DynamoDB writes."""

from __future__ import annotations

import boto3
import pytest

from devkit.github import encode_body, sample_payload
from tests.conftest import Pipeline, Send, signed

GUID = "72d3162e-cc78-11e3-81ab-4c9367dc0958"


@pytest.fixture
def writes(pipeline: Pipeline) -> list[str]:
    """The DynamoDB write operations the receiver makes (PutItem, UpdateItem, DeleteItem)."""
    seen: list[str] = []
    for operation in ("PutItem", "UpdateItem", "DeleteItem"):
        boto3.DEFAULT_SESSION.events.register(
            f"before-call.dynamodb.{operation}", lambda operation=operation, **_: seen.append(operation)
        )
    return seen


def test_the_same_delivery_with_its_id_in_upper_case_is_forwarded_once(pipeline: Pipeline, send: Send) -> None:
    body, headers = signed("push", delivery_id=GUID)
    assert send(body, headers).status == 202
    answer = send(body, {**headers, "x-github-delivery": GUID.upper()})
    assert (answer.status, answer.body["status"]) == (202, "duplicate")
    assert len(pipeline.forwarded()) == 1


def test_one_event_through_two_hooks_reaches_the_bus_once_per_hook(pipeline: Pipeline, send: Send) -> None:
    """GitHub shares one guid between an organization's hook and a repository's: both are delivered."""
    org_body, org = signed("issues", delivery_id=GUID, hook_id="7")
    app_payload = {**sample_payload("issues"), "installation": {"id": 1}}  # an App's payload differs
    app_body, app = signed("issues", payload=app_payload, delivery_id=GUID, hook_id="42")
    assert send(org_body, org).body["status"] == "accepted"
    assert send(app_body, app).body["status"] == "accepted"
    assert sorted(event["detail"]["hook_id"] for event in pipeline.forwarded()) == ["42", "7"]


def test_a_different_body_under_an_accepted_delivery_is_422_and_nothing_is_forwarded(
    pipeline: Pipeline, send: Send
) -> None:
    body, headers = signed("push", delivery_id=GUID)
    assert send(body, headers).status == 202
    pipeline.forwarded()
    other = encode_body({**sample_payload("push"), "after": "0" * 40})
    _, resigned = signed("push", payload=other, delivery_id=GUID)
    answer = send(other, resigned)
    assert (answer.status, answer.body["error"]) == (422, "delivery_conflict")
    assert pipeline.forwarded() == []


def test_without_replay_protection_a_replayed_body_is_a_new_delivery_at_two_writes(
    pipeline: Pipeline, send: Send, writes: list[str]
) -> None:
    body, headers = signed("push", delivery_id=GUID)
    replayed = {**headers, "x-github-delivery": "0b989ba4-242f-11e5-81e1-c7b6966d2516"}
    # Off (the code's default): the replay is a new delivery. Two writes a delivery (Powertools:
    # the record in progress, then completed).
    assert send(body, headers).status == 202
    assert writes == ["PutItem", "UpdateItem"]
    assert send(body, replayed).body["status"] == "accepted"
    assert len(pipeline.forwarded()) == 2


def test_with_replay_protection_on_as_the_template_sets_it_a_replay_is_422_at_one_more_write(
    pipeline: Pipeline, send: Send, writes: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEBHOOK_REPLAY_PROTECTION", "true")
    body, headers = signed("push", delivery_id=GUID)
    assert send(body, headers).status == 202
    assert writes == ["PutItem", "PutItem", "UpdateItem"]  # one more: the body's record
    replayed = {**headers, "x-github-delivery": "0b989ba4-242f-11e5-81e1-c7b6966d2516"}
    answer = send(body, replayed)
    assert (answer.status, answer.body["error"]) == (422, "replayed_delivery")
    assert send(body, headers).body["status"] == "duplicate"  # GitHub's own redelivery
    assert len(pipeline.forwarded()) == 1


def test_with_replay_protection_a_changed_hook_header_does_not_forward_a_captured_delivery_again(
    pipeline: Pipeline, send: Send, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEBHOOK_REPLAY_PROTECTION", "true")
    body, headers = signed("push", delivery_id=GUID, hook_id="7")
    assert send(body, headers).body["status"] == "accepted"
    for hook_id in ("8", "9"):
        assert send(body, {**headers, "x-github-hook-id": hook_id}).body["status"] == "duplicate"
    unhooked = {name: value for name, value in headers.items() if name != "x-github-hook-id"}
    assert send(body, unhooked).body["status"] == "duplicate"
    assert len(pipeline.forwarded()) == 1
