"""DEDUP_MODE=after (handler/aws/record_after.py) through the real handler against moto: one DynamoDB write
per delivery, and the promises of deduplication kept: a duplicate sends nothing, another body under an
accepted key is refused, a failed hand-off records nothing, a record that fails after it is still a 202."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError

from devkit.github import sample_payload
from tests.conftest import Pipeline, Send, inject, reset_receiver, signed


@pytest.fixture
def after(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    monkeypatch.setenv("DEDUP_MODE", "after")
    reset_receiver()
    return pipeline


def writes() -> list[str]:
    """Every DynamoDB write the receiver makes from now on, by operation."""
    seen: list[str] = []
    for operation in ("PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems"):
        boto3.DEFAULT_SESSION.events.register(
            f"before-call.dynamodb.{operation}", lambda operation=operation, **_: seen.append(operation)
        )
    return seen


def test_one_write_a_delivery_and_a_duplicate_sends_nothing(send: Send, after: Pipeline) -> None:
    written = writes()
    body, headers = signed("push")
    assert send(body, headers).body["status"] == "accepted"
    assert written == ["PutItem"]  # Powertools' mode writes twice (INPROGRESS, then COMPLETED)
    reset_receiver()  # a new container: the record is in the table, not in memory
    assert send(body, headers).body["status"] == "duplicate"
    assert written == ["PutItem"]
    assert len(after.forwarded()) == 1
    [record] = after.records()
    assert record["status"]["S"] == "COMPLETED"


def test_another_body_under_an_accepted_key_is_refused(send: Send, after: Pipeline) -> None:
    body, headers = signed("issues")
    assert send(body, headers).status == 202
    other = sample_payload("issues") | {"action": "deleted"}
    other_body, other_headers = signed("issues", payload=other, delivery_id=headers["x-github-delivery"])
    answer = send(other_body, other_headers)
    assert (answer.status, answer.body["error"]) == (422, "delivery_conflict")
    assert len(after.forwarded()) == 1


def test_a_failed_hand_off_records_nothing_and_the_redelivery_goes_through(send: Send, after: Pipeline) -> None:
    body, headers = signed("push")
    bus_down = [True]

    def put_events(**_: object) -> None:
        if bus_down:
            raise ClientError({"Error": {"Code": "InternalFailure"}}, "PutEvents")

    boto3.DEFAULT_SESSION.events.register("before-call.events.PutEvents", put_events)
    assert send(body, headers).status == 503
    assert after.records() == []
    bus_down.clear()
    reset_receiver()
    assert send(body, headers).body["status"] == "accepted"
    assert len(after.forwarded()) == 1


def test_a_record_that_fails_after_the_hand_off_is_still_accepted(send: Send, after: Pipeline) -> None:
    """The delivery is on the bus: a 503 would make GitHub's redelivery forward it again."""
    inject("before-call.dynamodb.PutItem", ClientError({"Error": {"Code": "InternalServerError"}}, "PutItem"))
    body, headers = signed("push")
    assert send(body, headers).body["status"] == "accepted"
    assert len(after.forwarded()) == 1
