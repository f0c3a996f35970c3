"""Named outcomes the receiver refuses or cannot complete.

Each carries a stable machine-readable ``code`` and a one-line message that is
safe to return: never the secret, a signature or a payload value. The HTTP
status for each lives in exactly one place, ``handler.app``.
"""

from __future__ import annotations


class Rejected(Exception):
    """The request is refused: the client (or an attacker) sent something we will not accept."""

    code = "rejected"
    message = "request rejected"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)

    @property
    def detail(self) -> str:
        return str(self)


class PayloadTooLarge(Rejected):
    code = "payload_too_large"
    message = "body exceeds the configured size limit"


class MissingSignature(Rejected):
    code = "missing_signature"
    message = "X-Hub-Signature-256 header is missing"


class SignatureMismatch(Rejected):
    code = "signature_mismatch"
    message = "signature does not match the body"


class UnsupportedMediaType(Rejected):
    code = "unsupported_media_type"
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


class InvalidEvent(Rejected):
    """The Lambda event itself is not an API Gateway HTTP API (payload 2.0) request."""

    code = "invalid_event"
    message = "not an API Gateway HTTP API payload format 2.0 event"


class Unavailable(Exception):
    """A dependency failed: the delivery was not accepted and GitHub should redeliver it."""

    code = "unavailable"
    message = "a dependency is unavailable"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)

    @property
    def detail(self) -> str:
        return str(self)


class SecretUnavailable(Unavailable):
    code = "secret_unavailable"
    message = "webhook secret is unavailable"


class ConfigurationError(Unavailable):
    code = "misconfigured"
    message = "receiver configuration is invalid"
