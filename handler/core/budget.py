"""The time left to answer GitHub, which gives up after 10 seconds, sans I/O.

A request's budget is *active* while the receiver handles it, so that every call to AWS made on
its behalf (ours, and those Powertools makes with our clients) can ask whether it still fits:
see ``handler.aws.clients``. Each hand-off step also checks it before it starts, so a slow
dependency turns into a 503 that GitHub can redeliver instead of a Lambda timeout with no answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from handler.core.outcomes import OutOfTime

# Room left for the answer itself once the last call returns.
SAFETY_MARGIN_SECONDS = 0.5

_active: ContextVar[Budget | None] = ContextVar("budget", default=None)


class Budget:
    def __init__(self, seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._deadline = clock() + seconds

    @classmethod
    def for_request(
        cls, seconds: float, lambda_context: Any = None, *, clock: Callable[[], float] = time.monotonic
    ) -> Budget:
        """``seconds``, or less when the Lambda invocation itself would end sooner."""
        if lambda_context is not None:
            left = lambda_context.get_remaining_time_in_millis() / 1000 - SAFETY_MARGIN_SECONDS
            seconds = min(seconds, left)
        return cls(seconds, clock=clock)

    def remaining(self) -> float:
        return self._deadline - self._clock()

    def get_remaining_time_in_millis(self) -> int:
        """The Lambda context's method, so Powertools can use a budget outside Lambda."""
        return max(0, int(self.remaining() * 1000))

    def check(self, step: str) -> None:
        if self.remaining() <= 0:
            raise OutOfTime(f"time budget spent before {step}")

    @contextmanager
    def active(self) -> Iterator[Budget]:
        """Make this the budget that :func:`active_budget` returns, in this context only."""
        token = _active.set(self)
        try:
            yield self
        finally:
            _active.reset(token)


def active_budget() -> Budget | None:
    """The budget of the request being handled in this context, if any (None for tools like replay)."""
    return _active.get()
