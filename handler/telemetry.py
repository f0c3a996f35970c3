"""Logs (Powertools Logger, JSON), metrics (CloudWatch EMF on those log lines; Powertools Metrics for
the cold start) and traces (Powertools Tracer)."""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from handler.config import metrics_namespace, service_name, tracing_enabled

logger = Logger(service=service_name())

# At DEBUG these log raw requests and responses: the decrypted secret from SSM, payloads sent to
# AWS, the session token in signed headers. Clamp them so that turning on DEBUG (for example
# Lambda's log-level control, which sets the root logger) cannot leak any of it.
for _name in ("botocore", "boto3", "urllib3", "s3transfer"):
    logging.getLogger(_name).setLevel(logging.INFO)
# One JSON line per delivery is ours; Mangum's plain-text access line would be a second.
logging.getLogger("mangum").setLevel(logging.WARNING)

_NAMESPACE = metrics_namespace()
_TRACING = tracing_enabled()
_SERVICE = service_name()


# A signed payload can put hundreds of kilobytes into `action` or `repository.full_name`: no value
# from a request reaches a log line longer than this.
LOG_VALUE_MAX_CHARS = 200


def capped(value: str | None) -> str | None:
    """``value`` fit for a log line: at most LOG_VALUE_MAX_CHARS characters (then "…"), and always
    encodable as UTF-8, so that no value can make a line huge or make the line fail to be written."""
    if value is None:
        return None
    if len(value) > LOG_VALUE_MAX_CHARS:
        value = value[:LOG_VALUE_MAX_CHARS] + "…"
    return value.encode("utf-8", "replace").decode("utf-8")


def metric(*names: str, **dimensions: str) -> dict[str, Any]:
    """CloudWatch EMF fields that make a log line also count ``names`` (by ``service`` and ``dimensions``).

    CloudWatch extracts metrics from any JSON log line with an ``_aws`` block, so the one line a
    delivery logs carries its metrics too: half the per-request cost of a second EMF line from
    Powertools Metrics, and one line to read. Merge it into ``extra``.
    """
    return {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": _NAMESPACE,
                    "Dimensions": [["service", *dimensions]],
                    "Metrics": [{"Name": name, "Unit": "Count"} for name in names],
                }
            ],
        },
        **dict.fromkeys(names, 1),
        **dimensions,
    }


def count_cold_start() -> None:
    """The ColdStart count, once per container, on a line of its own (Powertools Metrics)."""
    with single_metric(name="ColdStart", unit=MetricUnit.Count, value=1, namespace=_NAMESPACE) as cold_start:
        cold_start.add_dimension(name="service", value=_SERVICE)


def log_unexpected(exc: BaseException, message: str = "unexpected error", extra: dict[str, Any] | None = None) -> None:
    """Log a bug without its message (which may quote payload text): type and code locations only."""
    frames = [f"{frame.filename}:{frame.lineno} in {frame.name}" for frame in traceback.extract_tb(exc.__traceback__)]
    logger.error(message, extra={"error_type": type(exc).__name__, "frames": frames[-8:], **(extra or {})})


@cache
def _tracer() -> Any:
    # aws-xray-sdk is one of the heaviest imports: only paid once a hand-off is traced.
    from aws_lambda_powertools import Tracer

    return Tracer(service=_SERVICE)


@contextmanager
def traced(name: str) -> Iterator[None]:
    """An X-Ray subsegment around a hand-off call (a no-op outside Lambda or with tracing off)."""
    if not _TRACING:
        # Powertools would make this a no-op too, but only after importing aws-xray-sdk.
        yield
        return
    with _tracer().provider.in_subsegment(name):
        yield
