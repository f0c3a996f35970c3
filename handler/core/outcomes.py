"""Every answer other than 202, as a named exception with its HTTP status, sans I/O.

An outcome has a stable ``code``, the HTTP ``status`` (the one place statuses are decided, looked up
along the class hierarchy), a ``message`` for the caller (one line, never the secret, a signature or
a payload value), a ``detail`` for the log and the ``summary`` its log line says.
:func:`answer` turns one into the JSON body that every path (the HTTP app, the Lambda envelope, the
framework's own 404/405) sends; :func:`handler.core.report.report` also logs and counts it.

>>> answer(MissingHeader("X-GitHub-Event header is missing"))
(400, {'error': 'missing_header', 'message': 'X-GitHub-Event header is missing'})
>>> exc = SecretUnavailable("cannot read the secret parameter (AccessDeniedException)")
>>> answer(exc)
(503, {'error': 'secret_unavailable', 'message': 'webhook secret is unavailable'})
>>> exc.detail
'cannot read the secret parameter (AccessDeniedException)'
"""

from __future__ import annotations


class Outcome(Exception):
    """Not accepted. ``detail`` (for the log) is the instance's text; ``message`` (for the caller) is
    the same unless the class keeps it private, when it is the class's generic message."""

    code = "internal_error"
    status = 500
    message = "internal error"
    summary = "unexpected error"  # the message of its log line
    # Whether the detail may be shown to the caller. Refusals explain themselves; failures before the
    # signature is verified (the secret, the configuration) answer every caller, so they do not.
    detail_is_public = True

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail or self.message)
        self.detail = detail or self.message
        if detail and self.detail_is_public:
            self.message = detail


def answer(outcome: Outcome) -> tuple[int, dict[str, str]]:
    """The status and the one error body: ``{"error": <code>, "message": <one line>}``."""
    return outcome.status, {"error": outcome.code, "message": outcome.message}


class Rejected(Outcome):
    """The request is refused: the client (or an attacker) sent something we will not accept."""

    code = "rejected"
    status = 400
    message = "request rejected"
    summary = "delivery rejected"
    reason = "malformed"  # the DeliveryRejected metric's dimension


class ForbiddenSource(Rejected):
    code = "forbidden_source"
    status = 403
    message = "requests from this address are not accepted"
    reason = "source"


class PayloadTooLarge(Rejected):
    code = "payload_too_large"
    status = 413
    reason = "too_large"
    message = "body exceeds the configured size limit"


class MissingSignature(Rejected):
    code = "missing_signature"
    status = 401
    reason = "signature"
    message = "X-Hub-Signature-256 header is missing"


class SignatureMismatch(Rejected):
    code = "signature_mismatch"
    status = 401
    reason = "signature"
    message = "signature does not match the body"


class UnsupportedMediaType(Rejected):
    code = "unsupported_media_type"
    status = 415
    reason = "content_type"
    message = "Content-Type must be application/json or application/x-www-form-urlencoded"


class MissingHeader(Rejected):
    code = "missing_header"
    message = "a required GitHub header is missing"


class InvalidHeader(Rejected):
    code = "invalid_header"
    message = "a GitHub header has an invalid value"


class MalformedPayload(Rejected):
    code = "malformed_payload"
    message = "body is not a valid GitHub payload"


class InProgress(Rejected):
    """The same delivery id is being handed off by another invocation right now."""

    code = "in_progress"
    status = 409
    reason = "in_progress"
    message = "this delivery is already being processed; redeliver it if it does not show as accepted"


class DeliveryConflict(Rejected):
    """A validly signed body under a delivery already accepted with another body: GitHub never does
    this (a redelivery sends the same bytes), so it is refused, and nothing is forwarded."""

    code = "delivery_conflict"
    status = 422  # a 4xx that is not retried: the redelivery function treats 409 as retryable
    reason = "conflict"
    message = "this delivery id was already accepted with a different body"


class ReplayedDelivery(Rejected):
    """A signed body already accepted under another delivery id (GitHub signs no id or time, so a
    captured delivery can be resent under a fresh X-GitHub-Delivery): not forwarded again."""

    code = "replayed_delivery"
    status = 422
    reason = "replay"
    message = "this body was already accepted under another delivery id"


class InvalidEvent(Rejected):
    """The Lambda event itself is not an API Gateway HTTP API (payload 2.0) request."""

    code = "invalid_event"
    message = "not an API Gateway HTTP API payload format 2.0 event"
    summary = "invalid Lambda event"


class NotFound(Rejected):
    """A path other than /webhook (the framework's routing decides it)."""

    code = "not_found"
    status = 404
    reason = "not_found"
    message = "not found: this server answers POST /webhook only"
    summary = "request rejected"


class MethodNotAllowed(Rejected):
    code = "method_not_allowed"
    status = 405
    reason = "method"
    message = "method not allowed: /webhook accepts POST only"
    summary = "request rejected"


class Unavailable(Outcome):
    """A dependency failed: the delivery was not accepted and GitHub should redeliver it."""

    code = "unavailable"
    status = 503
    message = "a dependency is unavailable"
    summary = "delivery not accepted"
    target = "unknown"  # the HandoffFailed metric's dimension: which dependency


class SecretUnavailable(Unavailable):
    code = "secret_unavailable"
    message = "webhook secret is unavailable"
    target = "secret"
    detail_is_public = False


class ConfigurationError(Unavailable):
    code = "misconfigured"
    message = "receiver configuration is invalid"
    summary = "receiver not configured"
    target = "config"
    detail_is_public = False


class DeduplicationUnavailable(Unavailable):
    code = "deduplication_unavailable"
    message = "deduplication table is unavailable"
    target = "dedup"


class ArchiveFailed(Unavailable):
    code = "archive_failed"
    message = "delivery could not be archived"
    target = "archive"


class ForwardFailed(Unavailable):
    code = "forward_failed"
    message = "delivery could not be forwarded to the event bus"
    target = "bus"


class OutOfTime(Unavailable):
    code = "timeout"
    message = "the time budget for the hand-off was spent"
    target = "budget"
