"""The Lambda entry point: API Gateway HTTP API (payload format 2.0) events, through Mangum, to the
HTTP route. ``handler.app.handler`` in template.yaml.

``from handler.app import handler``. The ASGI app itself is :mod:`handler.route`'s (re-exported here
as ``app``), and what it is wired to, per container, is :mod:`handler.wiring`'s. An event Mangum
cannot carry is reported (:func:`handler.core.report.report`) and answered here, in the same JSON shape.
"""

from __future__ import annotations

import asyncio
import binascii
import gc
import json
from typing import Any

from mangum import Mangum
from mangum.handlers import HTTPGateway

from handler.core import outcomes
from handler.core.report import report
from handler.route import app
from handler.wiring import telemetry

__all__ = ["app", "handler"]


class _HttpApiV2(HTTPGateway):
    """Mangum's HTTP API handler, limited to payload 2.0 and strict about base64 bodies.

    Mangum's own decoder silently drops non-alphabet characters; a body that is not valid
    base64 is refused here instead of being verified in a mangled form.
    """

    @classmethod
    def infer(cls, event: Any, context: Any, config: Any) -> bool:
        return True  # handler() has already checked the event's shape

    @property
    def body(self) -> bytes:
        body = self.event.get("body") or ""
        if not self.event.get("isBase64Encoded"):
            try:
                return body.encode()
            except UnicodeEncodeError:  # lone surrogates cannot come from API Gateway
                raise outcomes.InvalidEvent("body is not valid UTF-8 text") from None
        try:
            decoded = binascii.a2b_base64(body, strict_mode=True)
            # strict_mode still lets through an extra "=" after a full group and non-zero pad bits:
            # only the canonical encoding (as API Gateway produces it) is accepted.
            tail = body[-4:]
            canonical_tail = binascii.b2a_base64(binascii.a2b_base64(tail), newline=False).decode() if tail else ""
            if len(body) % 4 or canonical_tail != tail:
                raise ValueError("not canonical base64")
        except (binascii.Error, ValueError):
            raise outcomes.InvalidEvent("body is marked base64 but is not valid base64") from None
        return decoded


def _event_loop_for_mangum() -> None:
    """Give this thread an event loop before Mangum looks for one.

    Mangum calls ``asyncio.get_event_loop()`` when it is built and on every invocation; since
    Python 3.12 that warns when the thread has no loop yet (3.14 raises). Under uvicorn the app is
    imported inside a running loop and Mangum is never called, so nothing is set there.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())


_event_loop_for_mangum()
_asgi = Mangum(app, lifespan="off", custom_handlers=[_HttpApiV2])
_cold_start = True


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point for API Gateway HTTP API (payload format 2.0) events."""
    events = telemetry()
    # The correlation id is requestContext.requestId (Powertools' API_GATEWAY_HTTP path), read
    # directly: cheaper than a JMESPath query per invocation. The event itself is never logged: it
    # carries signatures and payloads (so no Powertools inject_lambda_context and its log_event).
    context_of_request = event.get("requestContext") if isinstance(event, dict) else None
    request_id = context_of_request.get("requestId") if isinstance(context_of_request, dict) else None
    global _cold_start
    cold_start, _cold_start = _cold_start, False
    events.start_invocation(
        context, correlation_id=request_id if isinstance(request_id, str) else None, cold_start=cold_start
    )
    try:
        _check_event(event)
        return _asgi(event, context)
    except outcomes.InvalidEvent as exc:
        answer = report(events, exc)
    except Exception as exc:  # Mangum could not turn the event into a request (the app itself never raises)
        answer = report(events, outcomes.InvalidEvent(), cause=exc)
    status, body = answer
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def _check_event(event: Any) -> None:
    if not isinstance(event, dict) or event.get("version") != "2.0":
        raise outcomes.InvalidEvent()
    http = event.get("requestContext", {}).get("http") if isinstance(event.get("requestContext"), dict) else None
    if not (isinstance(http, dict) and isinstance(http.get("method"), str) and isinstance(http.get("path"), str)):
        raise outcomes.InvalidEvent("requestContext.http is missing")
    if not isinstance(http.get("sourceIp"), str):
        raise outcomes.InvalidEvent("requestContext.http.sourceIp is missing")
    if not isinstance(event.get("rawQueryString", ""), str):
        raise outcomes.InvalidEvent("rawQueryString must be a string")
    headers = event.get("headers", {})
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise outcomes.InvalidEvent("headers must be an object of strings")
    if not isinstance(event.get("body") or "", str):
        raise outcomes.InvalidEvent("body must be a string")


# Everything imported so far lives as long as the container: move it out of the garbage
# collector's sight, so that parsing a large payload (many new objects, so many collections)
# does not walk the whole framework heap each time (bench/RESULTS.md has the figures). Only the
# import-time heap: what holds the secret is created later, and stays collectable.
gc.freeze()
