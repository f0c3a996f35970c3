"""POST /webhook end to end, through the Lambda handler (API Gateway v2 events) and the FastAPI app: the
README's answers table on each transport, and what only the edge decides (a receiver that cannot be
built, a bug). The flow behind each answer (which check comes first, what is handed off) is tested with
fakes in tests/core/test_receiver.py; AWS failures in tests/security/test_faults.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import pytest

from devkit.apigw import http_api_event
from devkit.github import github_headers
from tests.conftest import Logs, Send, invoke, signed


def _without(header: str) -> Callable[[], tuple[bytes, dict[str, str]]]:
    def request() -> tuple[bytes, dict[str, str]]:
        body, headers = signed("push")
        del headers[header]
        return body, headers

    return request


def _with(header: str, value: str) -> Callable[[], tuple[bytes, dict[str, str]]]:
    def request() -> tuple[bytes, dict[str, str]]:
        body, headers = signed("push")
        headers[header] = value
        return body, headers

    return request


# case: (request, receiver environment, status, the whole body; "$id" is the delivery id)
ANSWERS: dict[str, tuple[Callable[[], tuple[bytes, dict[str, str]]], dict[str, str], int, dict[str, str]]] = {
    "accepted": (lambda: signed("pull_request"), {}, 202, {"status": "accepted", "delivery_id": "$id"}),
    "accepted form": (lambda: signed("push", form=True), {}, 202, {"status": "accepted", "delivery_id": "$id"}),
    "missing signature": (
        lambda: signed("push", secret=None),
        {},
        401,
        {"error": "missing_signature", "message": "X-Hub-Signature-256 header is missing"},
    ),
    "signature mismatch": (
        lambda: signed("push", secret="wrong-secret"),
        {},
        401,
        {"error": "signature_mismatch", "message": "signature does not match the body"},
    ),
    "missing header": (
        _without("x-github-event"),
        {},
        400,
        {"error": "missing_header", "message": "X-GitHub-Event header is missing"},
    ),
    "invalid header": (
        _with("x-github-delivery", "a b"),
        {},
        400,
        {"error": "invalid_header", "message": "X-GitHub-Delivery header has an invalid value"},
    ),
    "malformed payload": (
        lambda: (b"[]", github_headers("push", b"[]")),
        {},
        400,
        {"error": "malformed_payload", "message": "payload is not a JSON object"},
    ),
    "unsupported media type": (
        _with("content-type", "text/plain"),
        {},
        415,
        {
            "error": "unsupported_media_type",
            "message": "Content-Type must be application/json or application/x-www-form-urlencoded",
        },
    ),
    "payload too large": (
        lambda: signed("push"),
        {"WEBHOOK_MAX_BODY_BYTES": "1000"},
        413,
        {"error": "payload_too_large", "message": "body exceeds the configured size limit"},
    ),
    "secret unavailable": (
        lambda: signed("push"),
        {"WEBHOOK_SECRET": ""},
        503,
        {"error": "secret_unavailable", "message": "webhook secret is unavailable"},
    ),
    "misconfigured": (
        lambda: signed("push"),
        {"WEBHOOK_SECRET_MAX_AGE": "five minutes"},
        503,
        {"error": "misconfigured", "message": "receiver configuration is invalid"},
    ),
}


@pytest.mark.parametrize("case", ANSWERS)
def test_each_documented_answer_with_its_exact_body(send: Send, case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    make, env, status, expected = ANSWERS[case]
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    body, headers = make()
    answer = send(body, headers)
    assert answer.status == status
    assert answer.body == {k: headers["x-github-delivery"] if v == "$id" else v for k, v in expected.items()}


def test_invalid_configuration_is_logged_with_why(logs: Logs, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOK_SECRET_MAX_AGE", "five minutes")
    assert invoke(http_api_event(*signed("push"))).body["error"] == "misconfigured"
    [line] = logs.records
    assert line["message"] == "receiver not configured"
    assert line["detail"] == "WEBHOOK_SECRET_MAX_AGE must be an integer"
    assert logs.metrics == [("HandoffFailed", {"target": "config"})]


def test_a_bug_is_a_json_500_without_details_and_logged_without_its_message(
    logs: Logs, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(headers: Any, body: bytes) -> None:
        raise RuntimeError("payload-value-in-an-exception-message")

    monkeypatch.setattr("handler.core.receiver.parse_delivery", broken)
    answer = invoke(http_api_event(*signed("push")))
    assert answer.status == 500
    assert answer.body == {"error": "internal_error", "message": "internal error"}
    [line] = logs.records
    assert line["error_type"] == "RuntimeError"
    assert line["delivery_id"]
    assert any("receiver.py" in frame for frame in line["frames"])  # where, never what
    assert "payload-value-in-an-exception-message" not in logs.text


def test_receiver_that_cannot_be_built_answers_json_503_and_logs_it(
    logs: Logs, monkeypatch: pytest.MonkeyPatch
) -> None:
    # boto3 cannot make the DynamoDB client without a region: not an Unavailable, still no plain 500.
    monkeypatch.setenv("IDEMPOTENCY_TABLE", "deliveries")
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # not one an earlier test gave a region (replay does)
    answer = invoke(http_api_event(*signed("push")))
    assert answer.status == 503
    assert answer.body == {"error": "misconfigured", "message": "receiver configuration is invalid"}
    [line] = logs.records
    assert line["message"] == "receiver not configured"
    assert line["error_type"] == "NoRegionError"
    assert logs.metrics == [("HandoffFailed", {"target": "config"})]
