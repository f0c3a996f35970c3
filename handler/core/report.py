"""How an outcome is told, in one place, sans I/O: one log line carrying its metric, and the answer.

Every path that does not accept a request goes through :func:`report`: the receiver's refusals and
failures, and the edge's own (a body over the limit, a configuration that cannot be built, a Lambda
event that is not an HTTP API request, the framework's 404 and 405). Each transport only renders the
status and body it returns.

>>> from handler.core.outcomes import NotFound
>>> class Lines:
...     def log(self, level, message, *, metrics=(), dimensions=None, **fields):
...         print(level, message, list(metrics), dimensions, fields)
>>> report(Lines(), NotFound())
warning request rejected ['DeliveryRejected'] {'reason': 'not_found'} {'error': 'not_found'}
(404, {'error': 'not_found', 'message': 'not found: this server answers POST /webhook only'})
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from handler.core.outcomes import Outcome, Rejected, Unavailable, answer
from handler.core.ports import Telemetry

# A signed payload can put hundreds of kilobytes into `action` or `repository.full_name`: no value
# from a request reaches a log line longer than this.
LOG_VALUE_MAX_CHARS = 200


def capped(value: str | None) -> str | None:
    """``value`` fit for a log line: at most LOG_VALUE_MAX_CHARS characters (then "…"), and always
    encodable as UTF-8, so that no value can make a line huge or make the line fail to be written.

    >>> capped("x" * 500) == "x" * 200 + "…", capped("\\ud800")
    (True, '?')
    """
    if value is None:
        return None
    if len(value) > LOG_VALUE_MAX_CHARS:
        value = value[:LOG_VALUE_MAX_CHARS] + "…"
    return value.encode("utf-8", "replace").decode("utf-8")


def report(
    telemetry: Telemetry,
    outcome: Outcome,
    *,
    cause: BaseException | None = None,
    keys: Mapping[str, Any] | None = None,
) -> tuple[int, dict[str, str]]:
    """Log ``outcome`` once and count it, then return the status and body every transport sends.

    A refusal (4xx) is a warning counted ``DeliveryRejected`` by ``reason``; a failure (503) an error
    counted ``HandoffFailed`` by ``target``, with its detail; anything else a bug (500) counted
    ``UnexpectedError``. ``cause``: the exception behind the outcome, logged by type and code location
    only (its message may quote payload text). ``keys``: context not already bound to the logger.
    """
    fields: dict[str, Any] = {**(keys or {}), "error": outcome.code}
    if isinstance(outcome, Rejected):
        metric, level, dimensions = "DeliveryRejected", "warning", {"reason": outcome.reason}
    elif isinstance(outcome, Unavailable):
        metric, level, dimensions = "HandoffFailed", "error", {"target": outcome.target}
        fields["detail"] = capped(outcome.detail)
    else:
        metric, level, dimensions = "UnexpectedError", "error", {}
    if cause is not None:
        telemetry.unexpected(cause, outcome.summary, metrics=[metric], dimensions=dimensions, **fields)
    else:
        telemetry.log(level, outcome.summary, metrics=[metric], dimensions=dimensions, **fields)
    return answer(outcome)
