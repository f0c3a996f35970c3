"""The edge and the wiring: the FastAPI app, the Lambda handler that feeds it API Gateway HTTP API
events, and the one place the core is connected to its AWS adapters.

``from handler.app import app, handler``: ``app`` is a plain ASGI app (uvicorn, tests);
``handler`` is the Lambda entry point (``handler.app.handler`` in template.yaml). Nothing here
reads configuration at import: settings, telemetry and the receiver are built per container, on
the first request.
"""

from __future__ import annotations

import asyncio
import binascii
import gc
import json
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from mangum import Mangum
from mangum.handlers import HTTPGateway
from snapshot_restore_py import register_after_restore, register_before_snapshot
from starlette.exceptions import HTTPException

from handler import listeners
from handler.aws import pipeline
from handler.aws.clients import client
from handler.aws.ssm import SsmSecrets
from handler.aws.telemetry import PowertoolsTelemetry
from handler.core import outcomes
from handler.core.outcomes import Outcome
from handler.core.ports import Secrets
from handler.core.receiver import Receiver
from handler.core.secrets import StaticSecrets
from handler.core.settings import Settings, TelemetrySettings


@cache
def telemetry() -> PowertoolsTelemetry:
    """Logs, metrics and traces for this container, named by its environment."""
    return PowertoolsTelemetry(TelemetrySettings.from_env())


@cache
def receiver() -> Receiver:
    """Built once per container, on the first request (configuration errors become 503s, and are
    tried again on the next request)."""
    settings = Settings.from_env()
    events = telemetry()
    return Receiver(
        settings,
        _secrets(settings, events),
        telemetry=events,
        handoff=pipeline.handoff(settings, events),
        once=pipeline.deduplicator(settings),
        replays=pipeline.replays(settings),
        router=listeners.router,
    )


def _secrets(settings: Settings, events: PowertoolsTelemetry) -> Secrets:
    if settings.secret_parameter:
        return SsmSecrets(
            settings.secret_parameter,
            max_age=settings.secret_max_age,
            refresh_interval=settings.secret_refresh_interval,
            telemetry=events,
        )
    return StaticSecrets(settings.secrets)


@register_before_snapshot
@register_after_restore
def forget_container_state() -> None:
    """A new container's start: no secret, cached settings or AWS client (credentials, connections)
    goes into a SnapStart snapshot or survives a restore; the first request builds them afresh.
    (Also how `webhook invoke` and the tests start each run from a given environment.)"""
    receiver.cache_clear()
    telemetry.cache_clear()
    _lambda_entry.cache_clear()
    client.cache_clear()


# redirect_slashes=False: "/webhook/" is not found (JSON 404), not a 307 with an empty body.
app = FastAPI(title="GitHub webhook receiver", docs_url=None, redoc_url=None, openapi_url=None, redirect_slashes=False)
_ROUTING_REFUSALS: dict[int, type[Outcome]] = {404: outcomes.NotFound, 405: outcomes.MethodNotAllowed}


@app.exception_handler(Outcome)
async def refusal(request: Request, exc: Outcome) -> Response:
    """Every outcome the route raises becomes the one error body (the receiver has logged it)."""
    return error_response(exc)


@app.exception_handler(HTTPException)
async def framework_refusal(request: Request, exc: HTTPException) -> Response:
    """Starlette's own answers (unknown path, other method) in the same shape, not FastAPI's
    ``{"detail": ...}``; its headers (``Allow: POST`` on a 405) are kept."""
    return error_response(_ROUTING_REFUSALS.get(exc.status_code, Outcome)(), headers=exc.headers)


@app.post("/webhook")
async def webhook(request: Request) -> Response:
    current = _configured_receiver()
    arrived = current.now()  # its time budget counts from here, whatever it waits for below
    headers = header_map(request.scope["headers"])
    # No Pydantic body model: the signature covers the exact bytes GitHub sent.
    body = await read_body(request, current.max_body_bytes)
    if body is None:
        too_large = outcomes.PayloadTooLarge()
        current.refuse(headers, too_large)
        raise too_large
    # API Gateway's requestContext.http.sourceIp (Mangum puts it in the ASGI client), or the peer under uvicorn.
    source_ip = request.client.host if request.client else None
    try:
        if "aws.event" in request.scope:  # Mangum hands the app one event at a time: run in place, as before
            context = request.scope.get("aws.context")
            receipt = current.receive(headers, body, source_ip=source_ip, lambda_context=context)
        else:
            # uvicorn: the receiver blocks (boto3), so it runs in a worker thread. On the event loop,
            # concurrent deliveries would wait for each other and outlast their time budgets.
            from starlette.concurrency import run_in_threadpool

            receipt = await run_in_threadpool(current.receive, headers, body, source_ip=source_ip, arrived=arrived)
    except Outcome:
        raise
    except Exception:  # a bug, logged by the receiver: answered without leaking anything
        raise Outcome() from None
    return json_response(202, {"status": receipt.status.value, "delivery_id": receipt.delivery.delivery_id})


def _configured_receiver() -> Receiver:
    try:
        return receiver()
    except outcomes.Unavailable as exc:  # invalid configuration
        telemetry().log(
            "error",
            "receiver not configured",
            metrics=["HandoffFailed"],
            dimensions={"target": exc.target},
            error=exc.code,
            detail=exc.detail,
        )
        raise
    except Exception as exc:  # e.g. no AWS region for a client: still a configuration problem, still JSON
        telemetry().unexpected(
            exc, "receiver not configured", metrics=["HandoffFailed"], dimensions={"target": "config"}
        )
        raise outcomes.ConfigurationError() from None


async def read_body(request: Request, limit: int) -> bytes | None:
    """The raw body, or None when it is over ``limit``, without ever holding more than ``limit`` bytes.

    Under uvicorn a declared Content-Length over the limit is refused before any of the body is
    read, and a body without one (chunked) is read chunk by chunk until it passes the limit. Under
    Mangum the event already holds the whole body: it goes to the receiver as before, which checks
    the source, then the size.
    """
    if "aws.event" in request.scope:
        return await request.body()
    try:
        declared = int(request.headers.get("content-length", ""))
    except ValueError:  # absent (the server rejects a malformed one): the stream is bounded below
        declared = None
    if declared is not None and declared > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def header_map(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """ASGI headers (names already lower-case, per the ASGI spec) as a plain dict for the core.

    A repeated header is joined with commas, as API Gateway does, so both transports see the same
    value. One pass here instead of a linear search of the raw list on every lookup.
    """
    headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in raw}
    if len(headers) < len(raw):  # a repeated header: rare, so the join is off the common path
        headers = {}
        for name, value in raw:
            key, text = name.decode("latin-1"), value.decode("latin-1")
            headers[key] = f"{headers[key]},{text}" if key in headers else text
    return headers


def json_response(status: int, content: dict[str, Any]) -> Response:
    return Response(json.dumps(content).encode(), status_code=status, media_type="application/json")


def error_response(exc: Outcome, *, headers: Mapping[str, str] | None = None) -> Response:
    status, body = outcomes.answer(exc)
    response = json_response(status, body)
    if headers:
        response.headers.update(headers)
    return response


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
    return _lambda_entry()(event, context)


@cache
def _lambda_entry() -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    # Built per container, so that the logger is named by the environment of the moment. log_event
    # stays off whatever POWERTOOLS_LOGGER_LOG_EVENT says: events carry signatures and payloads.
    return telemetry().logger.inject_lambda_context(log_event=False, clear_state=True)(_invoke)


def _invoke(event: dict[str, Any], context: Any) -> dict[str, Any]:
    events = telemetry()
    # The correlation id is requestContext.requestId (Powertools' API_GATEWAY_HTTP path), read
    # directly: cheaper than a JMESPath query per invocation.
    context_of_request = event.get("requestContext") if isinstance(event, dict) else None
    request_id = context_of_request.get("requestId") if isinstance(context_of_request, dict) else None
    events.logger.set_correlation_id(request_id if isinstance(request_id, str) else None)
    global _cold_start
    if _cold_start:
        _cold_start = False
        events.count_cold_start()
    try:
        _check_event(event)
        return _asgi(event, context)
    except outcomes.InvalidEvent as exc:
        rejected = exc
    except Exception as exc:  # Mangum could not turn the event into a request (the app itself never raises)
        events.unexpected(exc, "could not process the Lambda event")
        rejected = outcomes.InvalidEvent()
    events.log(
        "warning",
        "invalid Lambda event",
        metrics=["DeliveryRejected"],
        dimensions={"reason": rejected.reason},
        error=rejected.code,
    )
    status, body = outcomes.answer(rejected)
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
