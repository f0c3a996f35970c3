"""Named outcomes the receiver refuses or cannot complete.

Each carries a stable machine-readable ``code`` and a one-line message that is
safe to return: never the secret, a signature or a payload value. The HTTP
status for each lives in exactly one place, ``handler.app``.
"""

from __future__ import annotations


class Outcome(Exception):
    """An answer other than 2xx: a ``code``, a class-level safe ``message``, an instance ``detail``."""

    code = "error"
    message = "request not accepted"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)

    @property
    def detail(self) -> str:
        return str(self)

    @property
    def public_message(self) -> str:
        return self.detail


class Rejected(Outcome):
    """The request is refused: the client (or an attacker) sent something we will not accept."""

    code = "rejected"
    message = "request rejected"
    reason = "malformed"  # the DeliveryRejected metric's dimension


class ForbiddenSource(Rejected):
    code = "forbidden_source"
    message = "requests from this address are not accepted"
    reason = "source"


class PayloadTooLarge(Rejected):
    code = "payload_too_large"
    reason = "too_large"
    message = "body exceeds the configured size limit"


class MissingSignature(Rejected):
    code = "missing_signature"
    reason = "signature"
    message = "X-Hub-Signature-256 header is missing"


class SignatureMismatch(Rejected):
    code = "signature_mismatch"
    reason = "signature"
    message = "signature does not match the body"


class UnsupportedMediaType(Rejected):
    code = "unsupported_media_type"
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
    reason = "in_progress"
    message = "this delivery is already being processed; redeliver it if it does not show as accepted"


class InvalidEvent(Rejected):
    """The Lambda event itself is not an API Gateway HTTP API (payload 2.0) request."""

    code = "invalid_event"
    message = "not an API Gateway HTTP API payload format 2.0 event"


class Unavailable(Outcome):
    """A dependency failed: the delivery was not accepted and GitHub should redeliver it."""

    code = "unavailable"
    message = "a dependency is unavailable"
    target = "unknown"  # the HandoffFailed metric's dimension: which dependency
    # Failures after verification may explain themselves to GitHub (Recent Deliveries shows it);
    # failures before it answer every caller, so they keep their detail for the log.
    detail_is_public = True

    @property
    def public_message(self) -> str:
        return self.detail if self.detail_is_public else self.message


class SecretUnavailable(Unavailable):
    code = "secret_unavailable"
    message = "webhook secret is unavailable"
    target = "secret"
    detail_is_public = False


class ConfigurationError(Unavailable):
    code = "misconfigured"
    message = "receiver configuration is invalid"
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
