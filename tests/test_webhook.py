"""Every answer of POST /webhook, through the Lambda handler (API Gateway v2 events) and the FastAPI app."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from devkit.github import DEV_SECRET, encode_body, github_headers, sample_payload
from handler.app import app
from tests.conftest import Logs, Send, reset_receiver, signed

EVENTS = ["ping", "push", "pull_request", "issues", "issue_comment", "workflow_run", "release", "installation"]


@pytest.mark.parametrize("event", EVENTS)
def test_signed_delivery_is_accepted_and_named(send: Send, event: str) -> None:
    body, headers = signed(event)
    answer = send(body, headers)
    assert answer.status == 202
    assert answer.body == {"status": "accepted", "delivery_id": headers["x-github-delivery"]}


def test_form_encoded_delivery_is_accepted(send: Send) -> None:
    body, headers = signed("push", form=True)
    assert send(body, headers).status == 202


@pytest.mark.parametrize("form", [False, True])
def test_base64_encoded_body_is_verified_on_the_decoded_bytes(send: Send, form: bool) -> None:
    body, headers = signed("push", form=form)
    assert send(body, headers, base64_encoded=True).status == 202


def test_signature_covers_the_exact_bytes_not_the_json_value(send: Send) -> None:
    # Same JSON value, different bytes: re-serialising the payload must break the signature.
    body, headers = signed("push")
    reformatted = encode_body(sample_payload("push")).replace(b'", "', b'","')
    assert reformatted != body
    answer = send(reformatted, headers)
    assert (answer.status, answer.body["error"]) == (401, "signature_mismatch")


def test_missing_signature_is_401(send: Send) -> None:
    body, headers = signed("push", secret=None)
    answer = send(body, headers)
    assert answer.status == 401
    assert answer.body["error"] == "missing_signature"


@pytest.mark.parametrize("secret", ["wrong-secret", DEV_SECRET + "x", ""])
def test_wrong_secret_is_401(send: Send, secret: str) -> None:
    body, headers = signed("push", secret=secret)
    answer = send(body, headers)
    assert answer.status == 401
    assert answer.body == {"error": "signature_mismatch", "message": "signature does not match the body"}


def test_tampered_body_is_401(send: Send) -> None:
    body, headers = signed("push")
    tampered = body.replace(b"refs/heads/main", b"refs/heads/evil")
    assert send(tampered, headers).status == 401


@pytest.mark.parametrize(
    "damage",
    [
        lambda h: h.pop("x-github-event"),
        lambda h: h.pop("x-github-delivery"),
        lambda h: h.update({"content-type": "text/plain"}),
        lambda h: h.pop("content-type"),
    ],
)
def test_unsigned_request_is_401_whatever_else_is_wrong(send: Send, damage) -> None:
    body, headers = signed("push", secret="not-the-secret")
    damage(headers)
    assert send(body, headers).status == 401
    body, headers = signed("push", secret=None)
    damage(headers)
    assert send(body, headers).status == 401


def test_sha1_signature_alone_is_401_unless_enabled(send: Send, monkeypatch: pytest.MonkeyPatch) -> None:
    body, headers = signed("push")
    del headers["x-hub-signature-256"]
    assert send(body, headers).body["error"] == "missing_signature"
    monkeypatch.setenv("WEBHOOK_ALLOW_SHA1", "true")
    reset_receiver()
    assert send(body, headers).status == 202


@pytest.mark.parametrize(("header", "status"), [("x-github-event", 400), ("x-github-delivery", 400)])
def test_signed_but_missing_github_header_is_400(send: Send, header: str, status: int) -> None:
    body, headers = signed("push")
    del headers[header]
    answer = send(body, headers)
    assert answer.status == status
    assert answer.body["error"] == "missing_header"


@pytest.mark.parametrize(
    ("body", "form"),
    [(b"{not json", False), (b"[]", False), (b"zen=no-payload-field", True), (b"payload=%7Bnope", True)],
)
def test_signed_but_malformed_body_is_400(send: Send, body: bytes, form: bool) -> None:
    answer = send(body, github_headers("push", body, form=form))
    assert answer.status == 400
    assert answer.body["error"] == "malformed_payload"


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "multipart/form-data; boundary=x"])
def test_signed_but_unsupported_content_type_is_415(send: Send, content_type: str) -> None:
    body, headers = signed("push")
    headers["content-type"] = content_type
    answer = send(body, headers)
    assert answer.status == 415
    assert answer.body["error"] == "unsupported_media_type"


def test_body_over_the_limit_is_413_and_at_the_limit_is_accepted(send: Send, monkeypatch: pytest.MonkeyPatch) -> None:
    body, headers = signed("push")
    monkeypatch.setenv("WEBHOOK_MAX_BODY_BYTES", str(len(body)))
    reset_receiver()
    assert send(body, headers).status == 202
    bigger = body[:-1] + b" }"
    answer = send(bigger, github_headers("push", bigger))
    assert answer.status == 413
    assert answer.body["error"] == "payload_too_large"


def test_no_secret_configured_fails_closed_with_503(send: Send, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WEBHOOK_SECRET")
    body, headers = signed("push")
    answer = send(body, headers)
    assert answer.status == 503
    assert answer.body["error"] == "secret_unavailable"


def test_invalid_configuration_fails_closed_with_503_and_logs_why(
    send: Send, logs: Logs, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEBHOOK_SECRET_MAX_AGE", "five minutes")
    body, headers = signed("push")
    answer = send(body, headers)
    assert answer.status == 503
    assert answer.body == {"error": "misconfigured", "message": "receiver configuration is invalid"}
    [line] = logs.records
    assert line["detail"] == "WEBHOOK_SECRET_MAX_AGE must be an integer"


def test_literal_secret_is_refused_in_a_deployed_function(send: Send, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "github-webhook-WebhookFunction")
    assert send(*signed("push")).body["error"] == "misconfigured"
    monkeypatch.setenv("AWS_SAM_LOCAL", "true")  # `sam local invoke` runs on the development secret
    reset_receiver()
    assert send(*signed("push")).status == 202


def test_sha256_failure_is_not_rescued_by_a_valid_sha1_even_when_enabled(
    send: Send, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEBHOOK_ALLOW_SHA1", "true")
    body, headers = signed("push")
    headers["x-hub-signature-256"] = "sha256=" + "0" * 64
    answer = send(body, headers)
    assert (answer.status, answer.body["error"]) == (401, "signature_mismatch")


def test_a_bug_is_a_json_500_without_details_and_logged_without_its_message(
    send: Send, logs: Logs, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(headers, body):
        raise RuntimeError("payload-value-in-an-exception-message")

    monkeypatch.setattr("handler.core.receiver.parse_delivery", broken)
    answer = send(*signed("push"))
    assert answer.status == 500
    assert answer.body == {"error": "internal_error", "message": "internal error"}
    [line] = logs.records
    assert line["error_type"] == "RuntimeError"
    assert line["delivery_id"]
    assert any("receiver.py" in frame for frame in line["frames"])
    assert "payload-value-in-an-exception-message" not in logs.text


def test_rotation_with_a_literal_secret_pair(send: Send, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOK_SECRET", "new-secret\nold-secret\n")
    for secret, status in (("new-secret", 202), ("old-secret", 202), (DEV_SECRET, 401)):
        body, headers = signed("push", secret=secret)
        assert send(body, headers).status == status


def test_other_routes_and_methods_are_not_served() -> None:
    http = TestClient(app)
    assert http.get("/webhook").status_code == 405
    assert http.post("/other", content=b"{}").status_code == 404
    assert http.get("/docs").status_code == 404
    assert http.get("/openapi.json").status_code == 404


def test_receiver_that_cannot_be_built_answers_json_503_and_logs_it(
    send: Send, logs: Logs, monkeypatch: pytest.MonkeyPatch
) -> None:
    # boto3 cannot make the DynamoDB client without a region: not an Unavailable, still no plain 500.
    monkeypatch.setenv("IDEMPOTENCY_TABLE", "deliveries")
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    answer = send(*signed("push"))
    assert answer.status == 503
    assert answer.body == {"error": "misconfigured", "message": "receiver configuration is invalid"}
    [line] = logs.records
    assert line["message"] == "receiver not configured"
    assert line["error_type"] == "NoRegionError"
    assert logs.metrics == [("HandoffFailed", {"target": "config"})]
