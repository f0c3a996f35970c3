"""boto3 clients with a time budget: GitHub gives up after 10 seconds, so must we, well before."""

from __future__ import annotations

from functools import cache
from typing import Any

# Short timeouts and bounded retries turn a slow dependency into a 503 that GitHub can redeliver,
# instead of a Lambda timeout that GitHub records as a failure with no answer.
CONNECT_TIMEOUT = 1.0
READ_TIMEOUT = 2.0
MAX_ATTEMPTS = 2


@cache
def client(service: str) -> Any:
    """One client per service per container, created on first use (saves cold-start time)."""
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        retries={"max_attempts": MAX_ATTEMPTS, "mode": "standard"},
    )
    return boto3.client(service, config=config)
