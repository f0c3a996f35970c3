"""boto3 clients bound by the request's time budget: GitHub gives up after 10 seconds, so must we.

Timeouts alone do not bound a call: botocore's worst case is (connect + read timeout) for each
attempt plus the back-off between attempts (which honours a server's ``x-amz-retry-after``). So
every client checks the active budget (``handler.core.budget``) before each attempt, and retries only
when the back-off and one more whole attempt still fit. A call that does not fit is not started:
it raises :class:`~handler.core.outcomes.OutOfTime` (a ``503 timeout``; a secret already read keeps
verifying instead), or, for a retry, the failure it would have retried stands. This holds for the
calls Powertools makes with these clients too (idempotency's put, update and delete; the SSM read).

A throttled call (SSM's 40 GetParameter a second shared by every new container, DynamoDB or
EventBridge at a burst) did nothing and will likely work a moment later, while a 503 is lost until
someone redelivers it (GitHub never does by itself). So within a request's budget a throttle is
retried, with jittered exponential back-off, for as long as the back-off and an attempt fit; other
errors (5xx, timeouts, refused connections) get one retry, as without a budget do throttles.
"""

from __future__ import annotations

import random
import time
from functools import cache
from typing import Any, Literal

from handler.core.budget import active_budget
from handler.core.outcomes import OutOfTime

CONNECT_TIMEOUT = 1.0
READ_TIMEOUT = 2.0
MAX_ATTEMPTS = 2  # in all: the first try and one retry
# A throttle within a budget: the budget decides; this only caps the calls one request can make when
# back-off is drawn short near the end of the budget.
THROTTLED_MAX_ATTEMPTS = 8
# The longest one attempt can wait on the network.
ATTEMPT_SECONDS = CONNECT_TIMEOUT + READ_TIMEOUT
# botocore sends S3 uploads with "Expect: 100-continue" and waits up to 1 s for it before the body.
EXPECT_CONTINUE_SECONDS = 1.0
# The secret is read before the hand-off, whose archive write needs its own attempt's time left to
# start (the dedup write before it gets half a second). A later read only ends in a 503 timeout, and
# spends one of the calls SSM allows a second that another container could have used.
SSM_LEAVES_SECONDS = ATTEMPT_SECONDS + EXPECT_CONTINUE_SECONDS + 0.5

# How retries wait and draw their jitter; tests swap these for a fake clock's advance and a fixed draw.
sleep = time.sleep
draw = random.random


# The services the receiver and the redelivery function call (boto3's overloads are per service name).
Service = Literal["dynamodb", "events", "s3", "ssm"]


@cache
def client(service: Service) -> Any:
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
    leaves = SSM_LEAVES_SECONDS if service == "ssm" else 0.0
    aws.meta.events.register(f"needs-retry.{name}", _BudgetedRetry(name, max(attempt, leaves)))
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
    """botocore's standard retry rules (which errors are transient or throttling, exponential back-off
    with full jitter: up to 1 s, 2 s, 4 s... after a throttle), but a retry only when the back-off and
    ``needed`` seconds (a whole attempt, or more: SSM_LEAVES_SECONDS) fit in the active budget.

    Sleeps itself (through :data:`sleep`) and tells botocore to wait 0 s more, so that tests can run
    the back-off on a fake clock.
    """

    def __init__(self, service: str, needed: float) -> None:
        from botocore.retries import standard

        self._needed = needed
        self._adapter = standard.RetryEventAdapter()
        self._conditions = standard.StandardRetryConditions(max_attempts=THROTTLED_MAX_ATTEMPTS)
        self._throttling = standard.ThrottlingErrorDetector(self._adapter)
        self._backoff = standard.ExponentialBackoff(
            service_name=service, throttling_detector=self._throttling, random=lambda: draw()
        )

    def __call__(self, **kwargs: Any) -> float | None:
        context = self._adapter.create_retry_context(**kwargs)
        budget = active_budget()
        throttled = budget is not None and self._throttling.is_throttling_error_from_context(context)
        if context.attempt_number >= (THROTTLED_MAX_ATTEMPTS if throttled else MAX_ATTEMPTS):
            return None
        if not self._conditions.is_retryable(context):
            return None
        delay = self._backoff.delay_amount(context)
        if budget is not None:
            room = budget.remaining() - self._needed
            if throttled and delay > room > 0 and not _asks_to_wait(context):
                # Drawn again within what is left, not given up: the budget, not the draw, decides.
                delay = draw() * room
            if delay > room:
                return None  # the failure stands: a 503 now beats an answer after GitHub has given up
        sleep(delay)
        return 0.0


def _asks_to_wait(context: Any) -> bool:
    """The service said how long to wait (``x-amz-retry-after``): retrying sooner would be refused too."""
    response = context.http_response
    return response is not None and "x-amz-retry-after" in response.headers


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
