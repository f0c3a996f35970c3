"""Telemetry with Powertools: JSON log lines (Logger) that carry their own metrics (CloudWatch EMF),
the cold-start count (Metrics) and X-Ray spans (Tracer). A :class:`~handler.core.ports.Telemetry`.

Built from :class:`~handler.core.settings.TelemetrySettings` (once per container by the receiver,
once per run by the redelivery function), never at import,
so that the service name, namespace and tracing switch come from the environment of the moment
(``webhook invoke --env-vars`` included).
"""

from __future__ import annotations

import logging
import os
import time
import traceback
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cached_property
from typing import Any

from aws_lambda_powertools import Logger

from handler.core.settings import TelemetrySettings

# At DEBUG these log raw requests and responses: the decrypted secret from SSM, payloads sent to
# AWS, the session token in signed headers. Clamped so that turning on DEBUG (for example Lambda's
# log-level control, which sets the root logger) cannot leak any of it.
_WIRE_LOGGERS = ("botocore", "boto3", "urllib3", "s3transfer")
# What Powertools' inject_lambda_context would put on every line, written once per container instead.
_CONTAINER_CONSTANTS = (
    ("function_name", "function_name"),
    ("function_version", "function_version"),
    ("function_memory_size", "memory_limit_in_mb"),
    ("function_arn", "invoked_function_arn"),
)


class PowertoolsTelemetry:
    def __init__(self, settings: TelemetrySettings) -> None:
        self.settings = settings
        # Each line pays for its bytes (CloudWatch Logs ingestion): no "location" (our own code's line
        # number), no "timestamp" (CloudWatch stamps every line, and a line with metrics carries
        # _aws.Timestamp), no asyncio "taskName", the X-Ray trace id only when the trace is recorded;
        # the Lambda context's constants go on the container's first line only (start_invocation).
        logging.logAsyncioTasks = False  # type: ignore[attr-defined]  # (3.12+; typeshed lacks it)
        try:
            self.logger = Logger(service=settings.service_name)
        except ValueError:  # POWERTOOLS_LOG_LEVEL is not a level: log at INFO, and say so, rather than fail
            self.logger = Logger(service=settings.service_name, level="INFO")
            self.logger.warning("POWERTOOLS_LOG_LEVEL is not a log level; logging at INFO")
        self._lean()
        for name in _WIRE_LOGGERS:
            logging.getLogger(name).setLevel(logging.INFO)
        # One JSON line per delivery is ours; Mangum's plain-text access line would be a second.
        logging.getLogger("mangum").setLevel(logging.WARNING)

    def _lean(self) -> None:
        """Leave out the keys that cost bytes on every line and say nothing a reader needs (see above).
        Applied to the formatter whoever built it: Powertools configures a service's logger once per
        process, and clear_state restores the keys it was built with. None disables the trace id."""
        self.logger.remove_keys(["location", "timestamp"])
        self.logger.append_keys(xray_trace_id=None)

    # Per thread, not on the formatter every thread shares: `webhook serve` handles deliveries at once
    # in worker threads, and one delivery's keys must never land on another's lines.
    def bind(self, **keys: Any) -> None:
        self.logger.thread_safe_append_keys(**keys)

    def unbind(self, *names: str) -> None:
        self.logger.thread_safe_remove_keys(list(names))

    def log(
        self,
        level: str,
        message: str,
        *,
        metrics: Sequence[str] | Mapping[str, int] = (),
        dimensions: Mapping[str, str] | None = None,
        **fields: Any,
    ) -> None:
        extra = {**fields, **self.emf(metrics, dimensions or {})} if metrics else fields
        # stacklevel 3: the line's "location" is the caller's, not this method's.
        getattr(self.logger, level)(message, extra=extra, stacklevel=3)

    def emf(self, metrics: Sequence[str] | Mapping[str, int], dimensions: Mapping[str, str]) -> dict[str, Any]:
        """CloudWatch EMF fields that make a log line also count ``metrics`` (by ``service`` and ``dimensions``).

        CloudWatch extracts metrics from any JSON log line with an ``_aws`` block, so the one line a
        delivery logs carries its metrics too: one line to read, and no second EMF line to write.
        """
        return {
            "_aws": {
                "Timestamp": int(time.time() * 1000),
                "CloudWatchMetrics": [
                    {
                        "Namespace": self.settings.metrics_namespace,
                        "Dimensions": [["service", *dimensions]],
                        "Metrics": [{"Name": name, "Unit": "Count"} for name in metrics],
                    }
                ],
            },
            **(dict(metrics) if isinstance(metrics, Mapping) else dict.fromkeys(metrics, 1)),
            **dimensions,
        }

    def unexpected(
        self,
        exc: BaseException,
        message: str,
        *,
        metrics: Sequence[str] = (),
        dimensions: Mapping[str, str] | None = None,
        **fields: Any,
    ) -> None:
        """A bug, without its message (which may quote payload text): type and code locations only."""
        frames = [
            f"{frame.filename}:{frame.lineno} in {frame.name}" for frame in traceback.extract_tb(exc.__traceback__)
        ]
        fields |= {"error_type": type(exc).__name__, "frames": frames[-8:]}
        self.log("error", message, metrics=metrics, dimensions=dimensions, **fields)

    def start_invocation(self, context: Any, *, correlation_id: str | None, cold_start: bool) -> None:
        """A new invocation's keys: nothing left from the last one (as Powertools' ``clear_state``) but
        its correlation id, API Gateway's request id. The API's access log line pairs that with Lambda's
        request id (template.yaml), so it is not repeated here. The container's constants (function name,
        ARN, memory) are written once, on the cold start's line, not on every delivery's."""
        self.logger.clear_state()
        self._lean()
        self.logger.set_correlation_id(correlation_id)
        # Lambda's trace header: the id on this invocation's lines only when X-Ray records the trace.
        trace = os.environ.get("_X_AMZN_TRACE_ID", "")
        if "Sampled=1" in trace.split(";"):
            self.logger.append_keys(xray_trace_id=trace)  # any value but None: Powertools writes the Root part
        if cold_start:
            self.count_cold_start(context)

    def count_cold_start(self, context: Any = None) -> None:
        """The ColdStart count, once per container, on a line of its own (Powertools Metrics), with the
        container's constants."""
        from aws_lambda_powertools.metrics import MetricUnit, single_metric

        namespace = self.settings.metrics_namespace
        with single_metric(name="ColdStart", unit=MetricUnit.Count, value=1, namespace=namespace) as cold_start:
            cold_start.add_dimension(name="service", value=self.settings.service_name)
            for key, attribute in _CONTAINER_CONSTANTS:
                value = getattr(context, attribute, None)
                if isinstance(value, str | int):
                    cold_start.add_metadata(key=key, value=value)

    @contextmanager
    def span(self, name: str) -> Iterator[None]:
        """An X-Ray subsegment (a no-op outside Lambda or with tracing off)."""
        if not self.settings.tracing:
            # Powertools would make this a no-op too, but only after importing aws-xray-sdk.
            yield
            return
        with self._tracer.provider.in_subsegment(name):
            yield

    @cached_property
    def _tracer(self) -> Any:
        # aws-xray-sdk is one of the heaviest imports: only paid once a hand-off is traced.
        from aws_lambda_powertools import Tracer

        # disabled=False: our settings decided to trace; Powertools would otherwise parse
        # POWERTOOLS_TRACE_DISABLED itself, on the first traced delivery, and fail on "" (a 500).
        return Tracer(service=self.settings.service_name, disabled=False)
