"""boto3 clients bound by the request's time budget: GitHub gives up after 10 seconds, so must we.

Timeouts alone do not bound a call: botocore's worst case is (connect + read timeout) for each
attempt plus the back-off between attempts (which honours a server's ``x-amz-retry-after``). So
every client checks the active budget (``handler.core.budget``) before each attempt, and retries only
when the back-off and one more whole attempt still fit. A call that does not fit is not started:
it raises :class:`~handler.core.outcomes.OutOfTime` (a ``503 timeout``; a secret already read keeps
verifying instead), or, for a retry, the failure it would have retried stands. This holds for the
calls Powertools makes with these clients too (idempotency's put, update and delete; the SSM read).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from handler.core.budget import active_budget
from handler.core.outcomes import OutOfTime

CONNECT_TIMEOUT = 1.0
READ_TIMEOUT = 2.0
MAX_ATTEMPTS = 2  # in all: the first try and one retry
# The longest one attempt can wait on the network.
ATTEMPT_SECONDS = CONNECT_TIMEOUT + READ_TIMEOUT
# botocore sends S3 uploads with "Expect: 100-continue" and waits up to 1 s for it before the body.
EXPECT_CONTINUE_SECONDS = 1.0


@cache
def client(service: str) -> Any:
    """One client per service per container, created on first use (saves cold-start time)."""
    import boto3
    from botocore.config import Config

    # botocore's own retry handler is given one attempt, so that it never retries: _BudgetedRetry decides.
    config = Config(
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        retries={"total_max_attempts": 1, "mode": "standard"},
    )
    aws = boto3.client(service, config=config)
    name = aws.meta.service_model.service_id.hyphenize()
    attempt = attempt_seconds(service)
    aws.meta.events.register_first(f"before-send.{name}", _AttemptFits(attempt))
    aws.meta.events.register(f"needs-retry.{name}", _BudgetedRetry(name, attempt))
    return aws


def attempt_seconds(service: str) -> float:
    """The longest one attempt of a call to ``service`` can take: what must be left to start one."""
    return ATTEMPT_SECONDS + (EXPECT_CONTINUE_SECONDS if service == "s3" else 0.0)


class _AttemptFits:
    """Before each attempt (the first and any retry): refuse to start one that could outlast the budget."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds

    def __call__(self, **_: Any) -> None:
        budget = active_budget()
        if budget is not None and budget.remaining() < self._seconds:
            raise OutOfTime("not enough time left for a call to AWS")


class _BudgetedRetry:
    """botocore's standard retry rules (which errors are transient, exponential back-off with jitter),
    up to MAX_ATTEMPTS, but only when the back-off and a whole attempt fit in the active budget."""

    def __init__(self, service: str, attempt: float) -> None:
        from botocore.retries import standard

        self._attempt = attempt
        self._adapter = standard.RetryEventAdapter()
        self._conditions = standard.StandardRetryConditions(max_attempts=MAX_ATTEMPTS)
        throttling = standard.ThrottlingErrorDetector(self._adapter)
        self._backoff = standard.ExponentialBackoff(service_name=service, throttling_detector=throttling)

    def __call__(self, **kwargs: Any) -> float | None:
        context = self._adapter.create_retry_context(**kwargs)
        if not self._conditions.is_retryable(context):
            return None
        delay = self._backoff.delay_amount(context)
        budget = active_budget()
        if budget is not None and budget.remaining() < delay + self._attempt:
            return None  # the failure stands: a 503 now beats an answer after GitHub has given up
        return delay


def causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and what led to it, latest first: Powertools and botocore wrap the errors they catch, so
    an :class:`OutOfTime` refused here may arrive inside another exception."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ``ClientError`` (``ThrottlingException``), else the exception type.

    Safe to log and to return: it never carries request or response content.
    """
    response: Any = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        if isinstance(code, str) and code.isidentifier() and len(code) <= 64:
            return code
    return type(exc).__name__
