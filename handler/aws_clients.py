"""boto3 clients with a time budget: GitHub gives up after 10 seconds, so must we, well before."""

from __future__ import annotations

from functools import cache
from typing import Any

# Short timeouts and bounded retries turn a slow dependency into a 503 that GitHub can redeliver,
# instead of a Lambda timeout that GitHub records as a failure with no answer.
CONNECT_TIMEOUT = 1.0
READ_TIMEOUT = 2.0
MAX_ATTEMPTS = 2  # in all: the first try and one retry


@cache
def client(service: str) -> Any:
    """One client per service per container, created on first use (saves cold-start time)."""
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        retries={"total_max_attempts": MAX_ATTEMPTS, "mode": "standard"},
    )
    return boto3.client(service, config=config)


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ``ClientError`` (``ThrottlingException``), else the exception type.

    Safe to log and to return: it never carries request or response content.
    """
    response: Any = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        if isinstance(code, str) and code.isidentifier():
            return code
    return type(exc).__name__
