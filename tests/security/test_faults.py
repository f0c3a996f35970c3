"""Fault injection for every AWS call the receiver makes, with the whole pipeline on (secret in SSM,
archive, bus, deduplication), through the Lambda handler and the HTTP app.

Each fault is injected at the botocore boundary (or as moto state) and each case checks four things:
the documented answer; that nothing was reported accepted that was not handed off (the bus and the
archive); that the idempotency record does not mark the failed delivery as done; and that once the
fault is gone the same warm container accepts the next healthy request (GitHub's redelivery).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError

from devkit.github import DEV_SECRET
from handler.aws import clients
from handler.aws.clients import MAX_ATTEMPTS
from tests import fakes
from tests.conftest import SECRET_PARAMETER, Pipeline, Send, put_secret, signed
from tests.security.support import Fault, assert_documented, client_error
from tests.test_secret_store import Throttle

GENERIC_SECRET_ANSWER = {"error": "secret_unavailable", "message": "webhook secret is unavailable"}
REFRESH_INTERVAL = 30  # after a failed read, the SSM store fails fast for this long


@pytest.fixture(autouse=True)
def backoff_on_the_budget_clock(backoff: list[float]) -> list[float]:
    """Every test here: retries wait on the budget's clock (a throttle is retried until the budget runs
    out), with the longest back-off botocore can draw (conftest's ``backoff``)."""
    return backoff


def _record_item(status: str) -> dict[str, Any]:
    """A Powertools idempotency record, as DynamoDB returns it with ReturnValuesOnConditionCheckFailure."""
    now = time.time()
    return {
        "id": {"S": "github-delivery#existing"},
        "expiration": {"N": str(int(now) + 3600)},
        "in_progress_expiration": {"N": str(int(now * 1000) + 60_000)},
        "status": {"S": status},
    }


def conditional_failure(item_status: str | None) -> Exception:
    extra = {"Item": _record_item(item_status)} if item_status else {}
    return client_error("ConditionalCheckFailedException", "PutItem", "The conditional request failed", **extra)


@dataclass
class FaultCase:
    name: str
    arm: Callable[[], list[Fault]]  # inject the fault (before the receiver creates its clients)
    status: int
    error: str  # the answer's error code, or its status ("accepted", "duplicate") for a 202
    message: str | None = None  # a part of the message (the AWS error code) the README promises
    archived: int = 0  # archive objects left by the failed attempt
    forwarded: int = 0  # bus events from the failed attempt (only a 202 may forward)
    record: str | None = None  # idempotency record left: None, or its status (never COMPLETED on failure)
    redelivery: str = "accepted"  # what GitHub's redelivery (same id) gets once the fault is gone
    attempts: int | None = None  # calls the fault saw: botocore's bounded retries for a timeout
    throttled: bool = False  # retried past MAX_ATTEMPTS, each attempt only while it fits the budget
    restore: Callable[[], None] = field(default=lambda: None)


def api_error(service: str, operation: str, code: str) -> Callable[[], list[Fault]]:
    return lambda: [Fault("before-call", service, operation, client_error(code, operation))]


def on_the_wire(service: str, operation: str, error: type[Exception]) -> Callable[[], list[Fault]]:
    """The request is built and signed, then the connection fails: botocore retries, then gives up."""
    endpoint = f"https://{service}.us-east-1.amazonaws.com/"
    return lambda: [Fault("before-send", service, operation, error(endpoint_url=endpoint))]


def throttled(service: str, operation: str) -> Callable[[], list[Fault]]:
    """Every attempt throttled on the wire, so that the retries run: until the budget has no room left."""
    return lambda: [Throttle(service, operation)]  # type: ignore[list-item]


def missing_parameter() -> list[Fault]:
    boto3.client("ssm").delete_parameter(Name=SECRET_PARAMETER)
    return []


def update_fails() -> list[Fault]:
    return [Fault("before-call", "dynamodb", "UpdateItem", client_error("InternalServerError", "UpdateItem"))]


def archive_and_delete_fail() -> list[Fault]:
    return [
        Fault("before-call", "s3", "PutObject", client_error("InternalError", "PutObject")),
        Fault("before-call", "dynamodb", "DeleteItem", client_error("ProvisionedThroughputExceededException", "X")),
    ]


SSM = [
    FaultCase("ssm_throttled", api_error("ssm", "GetParameter", "ThrottlingException"), 503, "secret_unavailable"),
    FaultCase("ssm_throttled_throughout", throttled("ssm", "GetParameter"), 503, "secret_unavailable", throttled=True),
    FaultCase(
        "ssm_access_denied", api_error("ssm", "GetParameter", "AccessDeniedException"), 503, "secret_unavailable"
    ),
    FaultCase(
        "ssm_parameter_missing",
        missing_parameter,
        503,
        "secret_unavailable",
        restore=lambda: put_secret(DEV_SECRET),
    ),
    FaultCase(
        "ssm_read_timeout",
        on_the_wire("ssm", "GetParameter", ReadTimeoutError),
        503,
        "secret_unavailable",
        attempts=MAX_ATTEMPTS,
    ),
    FaultCase(
        "ssm_connect_timeout",
        on_the_wire("ssm", "GetParameter", ConnectTimeoutError),
        503,
        "secret_unavailable",
        attempts=MAX_ATTEMPTS,
    ),
    FaultCase(
        "ssm_connection_refused",
        on_the_wire("ssm", "GetParameter", EndpointConnectionError),
        503,
        "secret_unavailable",
        attempts=MAX_ATTEMPTS,
    ),
]
EVENTBRIDGE = [
    # The archive is written before PutEvents, so a failed forward leaves its archive object behind.
    FaultCase(
        "eventbridge_api_error",
        api_error("events", "PutEvents", "InternalException"),
        503,
        "forward_failed",
        "PutEvents failed (InternalException)",
        archived=1,
    ),
    FaultCase(
        "eventbridge_entry_failed",
        lambda: [
            Fault(
                "before-call",
                "events",
                "PutEvents",
                {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "try again"}]},
            )
        ],
        503,
        "forward_failed",
        "PutEvents entry failed (InternalFailure)",
        archived=1,
    ),
    FaultCase(
        "eventbridge_throttled",
        api_error("events", "PutEvents", "ThrottlingException"),
        503,
        "forward_failed",
        "PutEvents failed (ThrottlingException)",
        archived=1,
    ),
    FaultCase(
        "eventbridge_throttled_throughout",
        throttled("events", "PutEvents"),
        503,
        "forward_failed",
        "PutEvents failed (ThrottlingException)",
        archived=1,
        throttled=True,
    ),
    FaultCase(
        "eventbridge_read_timeout",
        on_the_wire("events", "PutEvents", ReadTimeoutError),
        503,
        "forward_failed",
        "PutEvents failed (ReadTimeoutError)",
        archived=1,
        attempts=MAX_ATTEMPTS,
    ),
    FaultCase(
        "eventbridge_connection_refused",
        on_the_wire("events", "PutEvents", EndpointConnectionError),
        503,
        "forward_failed",
        "PutEvents failed (EndpointConnectionError)",
        archived=1,
        attempts=MAX_ATTEMPTS,
    ),
]
DYNAMODB = [
    FaultCase(
        "dynamodb_error",
        api_error("dynamodb", "PutItem", "InternalServerError"),
        503,
        "deduplication_unavailable",
        "InternalServerError",
    ),
    FaultCase(
        "dynamodb_throttled",
        api_error("dynamodb", "PutItem", "ProvisionedThroughputExceededException"),
        503,
        "deduplication_unavailable",
        "ProvisionedThroughputExceededException",
    ),
    FaultCase(
        "dynamodb_throttled_throughout",
        throttled("dynamodb", "PutItem"),
        503,
        "deduplication_unavailable",
        "ProvisionedThroughputExceededException",
        throttled=True,
    ),
    FaultCase(
        "dynamodb_read_timeout",
        on_the_wire("dynamodb", "PutItem", ReadTimeoutError),
        503,
        "deduplication_unavailable",
        "ReadTimeoutError",
        attempts=MAX_ATTEMPTS,
    ),
    FaultCase(
        "dynamodb_connection_refused",
        on_the_wire("dynamodb", "PutItem", EndpointConnectionError),
        503,
        "deduplication_unavailable",
        "EndpointConnectionError",
        attempts=MAX_ATTEMPTS,
    ),
    # A conditional failure with no record to read back: the table contradicts itself.
    FaultCase(
        "dynamodb_conditional_failure_without_record",
        lambda: [Fault("before-call", "dynamodb", "PutItem", conditional_failure(None))],
        503,
        "deduplication_unavailable",
        "idempotency store failed",
    ),
    # The conditional write failed because another invocation holds the record: 409, not accepted.
    FaultCase(
        "dynamodb_conditional_failure_in_progress",
        lambda: [Fault("before-call", "dynamodb", "PutItem", conditional_failure("INPROGRESS"))],
        409,
        "in_progress",
    ),
    # ...or because the delivery was already handed off: duplicate, and nothing is sent again.
    FaultCase(
        "dynamodb_conditional_failure_completed",
        lambda: [Fault("before-call", "dynamodb", "PutItem", conditional_failure("COMPLETED"))],
        202,
        "duplicate",
    ),
    # The hand-off succeeded and only the "completed" write failed: accepted (README, Deduplication),
    # the record stays in progress until the invocation's deadline, so a redelivery meanwhile is 409.
    FaultCase(
        "dynamodb_update_after_hand_off_fails",
        update_fails,
        202,
        "accepted",
        archived=1,
        forwarded=1,
        record="INPROGRESS",
        redelivery="in_progress",
    ),
    # The archive fails and then so does Powertools' delete of the in-progress record.
    FaultCase(
        "dynamodb_delete_after_failed_hand_off_fails",
        archive_and_delete_fail,
        503,
        "deduplication_unavailable",
        "ProvisionedThroughputExceededException",
        record="INPROGRESS",
        redelivery="in_progress",
    ),
]
S3 = [
    FaultCase(
        "s3_error",
        api_error("s3", "PutObject", "InternalError"),
        503,
        "archive_failed",
        "S3 PutObject failed (InternalError)",
    ),
    FaultCase(
        "s3_access_denied",
        api_error("s3", "PutObject", "AccessDenied"),
        503,
        "archive_failed",
        "S3 PutObject failed (AccessDenied)",
    ),
    FaultCase(
        "s3_throttled_throughout",
        throttled("s3", "PutObject"),
        503,
        "archive_failed",
        "S3 PutObject failed (SlowDown)",
        throttled=True,
    ),
    FaultCase(
        "s3_read_timeout",
        on_the_wire("s3", "PutObject", ReadTimeoutError),
        503,
        "archive_failed",
        "S3 PutObject failed (ReadTimeoutError)",
        attempts=MAX_ATTEMPTS,
    ),
    FaultCase(
        "s3_connect_timeout",
        on_the_wire("s3", "PutObject", ConnectTimeoutError),
        503,
        "archive_failed",
        "S3 PutObject failed (ConnectTimeoutError)",
        attempts=MAX_ATTEMPTS,
    ),
    FaultCase(
        "s3_connection_refused",
        on_the_wire("s3", "PutObject", EndpointConnectionError),
        503,
        "archive_failed",
        "S3 PutObject failed (EndpointConnectionError)",
        attempts=MAX_ATTEMPTS,
    ),
]
CASES = SSM + EVENTBRIDGE + DYNAMODB + S3


def _statuses(pipeline: Pipeline) -> list[str]:
    return [record["status"]["S"] for record in pipeline.records()]


@pytest.mark.parametrize("case", [pytest.param(case, id=case.name) for case in CASES])
def test_fault_gives_the_documented_answer_hands_off_nothing_false_and_recovers(
    case: FaultCase,
    send: Send,
    pipeline: Pipeline,
    ssm_secret: str,
    ssm_clock: fakes.Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WEBHOOK_SECRET_REFRESH_INTERVAL", str(REFRESH_INTERVAL))
    faults = case.arm()
    body, headers = signed("push")
    delivery_id = headers["x-github-delivery"]

    answer = send(body, headers)
    assert_documented(answer)
    assert answer.status == case.status, answer.body
    assert (answer.body.get("error") or answer.body.get("status")) == case.error, answer.body
    if case.error == "secret_unavailable":  # before verification: the caller learns nothing about SSM
        assert answer.body == GENERIC_SECRET_ANSWER
    if case.message is not None:
        assert case.message in answer.body["message"]
    if case.attempts is not None:
        assert [fault.calls for fault in faults] == [case.attempts]
    elif case.throttled:
        [fault] = faults
        assert fault.calls > MAX_ATTEMPTS
        assert min(fault.seen) >= clients.attempt_seconds(fault.service)  # every attempt fitted the budget
    else:
        assert all(fault.calls >= 1 for fault in faults)

    # Nothing reported accepted that was not handed off; nothing failed recorded as done.
    forwarded = pipeline.forwarded()
    assert len(forwarded) == case.forwarded
    assert all(event["detail"]["delivery_id"] == delivery_id for event in forwarded)
    assert len(pipeline.archived()) == case.archived
    assert _statuses(pipeline) == ([case.record] if case.record else [])
    if answer.status != 202:
        assert "COMPLETED" not in _statuses(pipeline)

    # The dependency is back: the same warm container serves GitHub's redelivery (same id, same bytes).
    for fault in faults:
        fault.clear()
    case.restore()
    if case.name.startswith("ssm_"):
        ssm_clock.advance(REFRESH_INTERVAL)
    again = send(body, headers)
    if case.redelivery == "in_progress":
        assert (again.status, again.body["error"]) == (409, "in_progress")
        body, headers = signed("push")  # the next delivery, then
        delivery_id = headers["x-github-delivery"]
        again = send(body, headers)
    assert again.body == {"status": "accepted", "delivery_id": delivery_id}
    [event] = pipeline.forwarded()
    assert event["detail"]["delivery_id"] == delivery_id
    assert event["detail"]["archive_location"]["key"] in pipeline.archived()
    assert send(body, headers).body == {"status": "duplicate", "delivery_id": delivery_id}
    assert pipeline.forwarded() == []


THROTTLED = [("ssm", "GetParameter"), ("dynamodb", "PutItem"), ("s3", "PutObject"), ("events", "PutEvents")]


@pytest.mark.parametrize(("service", "operation"), THROTTLED, ids=[service for service, _ in THROTTLED])
def test_a_burst_throttled_twice_is_retried_and_accepted(
    service: str,
    operation: str,
    send: Send,
    pipeline: Pipeline,
    ssm_secret: str,
    backoff_on_the_budget_clock: list[float],
) -> None:
    """Throttled twice at a burst (the longest back-off drawn both times), then AWS answers: the delivery
    is accepted and recorded once. With one retry, as other errors get, it was a 503."""
    throttle = Throttle(service, operation, times=2)
    body, headers = signed("push")
    assert send(body, headers).body == {"status": "accepted", "delivery_id": headers["x-github-delivery"]}
    assert throttle.calls == 2
    assert backoff_on_the_budget_clock == [1.0, 2.0]
    [event] = pipeline.forwarded()
    assert event["detail"]["archive_location"]["key"] in pipeline.archived()
    assert _statuses(pipeline) == ["COMPLETED"]
