"""Shared by the security tests: the README's answers table as data, and switchable AWS faults."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import boto3
from botocore.exceptions import ClientError

from devkit.github import DEV_SECRET
from tests.conftest import Answer, FakeHttpResponse

# The README's "Answers" table: every status the receiver may give, and the codes each may carry.
REFUSALS: dict[int, set[str]] = {
    403: {"forbidden_source"},
    409: {"in_progress"},
    413: {"payload_too_large"},
    401: {"missing_signature", "signature_mismatch"},
    415: {"unsupported_media_type"},
    400: {"missing_header", "invalid_header", "malformed_payload", "invalid_event"},
    503: {
        "secret_unavailable",
        "misconfigured",
        "archive_failed",
        "forward_failed",
        "deduplication_unavailable",
        "timeout",
    },
}
ACCEPTED_STATUSES = {"accepted", "duplicate"}


def expected_signature(body: bytes, secret: str = DEV_SECRET) -> str:
    """What GitHub sends in X-Hub-Signature-256, computed here independently of handler.signature."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def assert_documented(answer: Answer, *, secret: str = DEV_SECRET) -> None:
    """The answer is one of the README's: 202 with the accepted/duplicate body, or a documented refusal
    whose body is exactly ``{"error", "message"}`` with a one-line message that leaks nothing. Never a 500."""
    if answer.status == 202:
        assert set(answer.body) == {"status", "delivery_id"}, answer.body
        assert answer.body["status"] in ACCEPTED_STATUSES, answer.body
        assert isinstance(answer.body["delivery_id"], str)
        return
    assert answer.status in REFUSALS, (answer.status, answer.body)
    assert set(answer.body) == {"error", "message"}, answer.body
    assert answer.body["error"] in REFUSALS[answer.status], (answer.status, answer.body)
    message = answer.body["message"]
    assert isinstance(message, str)
    assert message
    assert "\n" not in message
    assert secret not in message
    assert "sha256=" not in message


def client_error(code: str, operation: str, message: str = "injected fault", **extra: Any) -> ClientError:
    """A botocore ClientError exactly as botocore builds one from an AWS error response."""
    status = 500 if code in ("InternalError", "InternalServerError", "InternalException") else 400
    response: dict[str, Any] = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status},
        **extra,
    }
    return ClientError(response, operation)  # type: ignore[arg-type]


class Fault:
    """A fault at the AWS boundary: while ``active``, a botocore hook on the default session fails (or
    answers) one operation instead of letting the request reach moto.

    ``stage`` is ``before-call`` (the call never becomes a request: an API error or a crafted response,
    as conftest's ``inject`` does) or ``before-send`` (the request is built, signed and then fails on
    the wire, so botocore's own retries run, as for a real timeout). Unlike ``inject`` it can be
    switched off, so a test can show the same warm container recovering once the dependency is back.
    Register it before the receiver creates its clients (conftest resets them for every test).
    """

    def __init__(
        self, stage: str, service: str, operation: str, outcome: Exception | dict[str, Any], *, after: int = 0
    ) -> None:
        self.event = f"{stage}.{service}.{operation}"
        self.outcome = outcome
        self.active = True
        self.after = after  # let this many calls through before failing
        self.seen = 0
        self.calls = 0  # calls that were failed (or answered) here
        # First, so the fault fires before moto's own before-send stub answers the request.
        boto3.DEFAULT_SESSION.events.register_first(self.event, self, unique_id=f"security-fault-{id(self)}")

    def __call__(self, **_: Any) -> Any:
        if not self.active:
            return None
        self.seen += 1
        if self.seen <= self.after:
            return None
        self.calls += 1
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return FakeHttpResponse(), self.outcome

    def clear(self) -> None:
        self.active = False
