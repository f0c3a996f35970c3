"""HTTP edge: the FastAPI app, and the Lambda handler that feeds it API Gateway HTTP API events.

``from handler.app import app, handler``: ``app`` is a plain ASGI app (uvicorn, tests);
``handler`` is the Lambda entry point (``handler.app.handler`` in template.yaml).
"""

from __future__ import annotations

import asyncio
import binascii
import gc
import json
from collections.abc import Mapping
from functools import cache
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from mangum import Mangum
from mangum.handlers import HTTPGateway
from snapshot_restore_py import register_after_restore, register_before_snapshot
from starlette.exceptions import HTTPException

from handler import errors, routes
from handler.archive import Archive
from handler.aws_clients import client
from handler.config import Settings
from handler.eventbridge import EventBus
from handler.handoff import Handoff
from handler.receiver import Receiver
from handler.secret_store import SecretStore, SsmSecrets, StaticSecrets
from handler.telemetry import count_cold_start, log_unexpected, logger, metric


# Refusals the framework decides (routing) rather than the receiver: same shape, same table.
class NotFound(errors.Rejected):
    code = "not_found"
    message = "not found: this server answers POST /webhook only"


class MethodNotAllowed(errors.Rejected):
    code = "method_not_allowed"
    message = "method not allowed: /webhook accepts POST only"


# The one place where outcomes become HTTP status codes.
STATUS: dict[type[Exception], int] = {
    errors.ForbiddenSource: 403,
    errors.PayloadTooLarge: 413,
    errors.MissingSignature: 401,
    errors.SignatureMismatch: 401,
    errors.UnsupportedMediaType: 415,
    errors.MissingHeader: 400,
    errors.InvalidHeader: 400,
    errors.MalformedPayload: 400,
    errors.InvalidEvent: 400,
    errors.InProgress: 409,
    errors.Unavailable: 503,
    NotFound: 404,
    MethodNotAllowed: 405,
}


def status_for(exc: errors.Outcome) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


@cache
def receiver() -> Receiver:
    """Built once per container, on the first request (configuration errors become 503s)."""
    settings = Settings.from_env()
    handoff = Handoff(
        archive=Archive(settings.archive_bucket) if settings.archive_bucket else None,
        bus=EventBus(settings.event_bus_name) if settings.event_bus_name else None,
        payload_bucket=settings.payload_bucket,
        max_entry_bytes=settings.event_max_entry_bytes,
    )
    dedup = None
    if settings.idempotency_table:
        from handler.dedup import Deduplicator

        dedup = Deduplicator(settings.idempotency_table, ttl_seconds=settings.dedup_ttl_seconds)
    return Receiver(settings, _secret_store(settings), handoff=handoff, dedup=dedup, router=routes.router)


@register_before_snapshot
@register_after_restore
def forget_container_state() -> None:
    """SnapStart: no secret, cached settings or AWS client (credentials, connections) goes into a
    snapshot or survives a restore; the first request after a restore builds them afresh."""
    receiver.cache_clear()
    client.cache_clear()


def _secret_store(settings: Settings) -> SecretStore:
    if settings.secret_parameter:
        return SsmSecrets(
            settings.secret_parameter,
            max_age=settings.secret_max_age,
            refresh_interval=settings.secret_refresh_interval,
        )
    return StaticSecrets(settings.secrets)


# redirect_slashes=False: "/webhook/" is not found (JSON 404), not a 307 with an empty body.
app = FastAPI(title="GitHub webhook receiver", docs_url=None, redoc_url=None, openapi_url=None, redirect_slashes=False)
_ROUTING_REFUSALS: dict[int, type[errors.Rejected]] = {404: NotFound, 405: MethodNotAllowed}


@app.exception_handler(HTTPException)
async def framework_refusal(request: Request, exc: HTTPException) -> Response:
    """Starlette's own answers (unknown path, other method) in the receiver's error shape, not
    FastAPI's ``{"detail": ...}``; its headers (``Allow: POST`` on a 405) are kept."""
    refusal = _ROUTING_REFUSALS.get(exc.status_code)
    if refusal is not None:
        return error_response(refusal(), headers=exc.headers)
    # Nothing in this app raises another status today; should one appear, it keeps the shape.
    return error_response(errors.Outcome(), status=exc.status_code, headers=exc.headers)


@app.post("/webhook")
async def webhook(request: Request) -> Response:
    try:
        current = receiver()
        receive = current.receive
    except errors.Unavailable as exc:  # invalid configuration
        extra = {"error": exc.code, "detail": exc.detail, **metric("HandoffFailed", target=exc.target)}
        logger.error("receiver not configured", extra=extra)
        return error_response(exc)
    except Exception as exc:  # e.g. no AWS region for a client: still a configuration problem, still JSON
        log_unexpected(exc, "receiver not configured", extra=metric("HandoffFailed", target="config"))
        return error_response(errors.ConfigurationError())
    headers = header_map(request.scope["headers"])
    # No Pydantic body model: the signature covers the exact bytes GitHub sent.
    body = await read_body(request, current.max_body_bytes)
    if body is None:
        too_large = errors.PayloadTooLarge()
        current.refuse(headers, too_large)
        return error_response(too_large)
    try:
        # API Gateway's requestContext.http.sourceIp (Mangum puts it in the ASGI client), or the peer under uvicorn.
        source_ip = request.client.host if request.client else None
        receipt = receive(headers, body, source_ip=source_ip, lambda_context=request.scope.get("aws.context"))
    except errors.Outcome as exc:
        return error_response(exc)  # the receiver has logged it
    except Exception:  # a bug, logged by the receiver: answer without leaking anything
        return json_response(500, {"error": "internal_error", "message": "internal error"})
    return json_response(202, {"status": receipt.status, "delivery_id": receipt.delivery.delivery_id})


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


def error_response(
    exc: errors.Outcome, *, status: int | None = None, headers: Mapping[str, str] | None = None
) -> Response:
    """The one error body: ``{"error": <code>, "message": <one line>}``."""
    response = json_response(status or status_for(exc), {"error": exc.code, "message": exc.public_message})
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
                raise errors.InvalidEvent("body is not valid UTF-8 text") from None
        try:
            decoded = binascii.a2b_base64(body, strict_mode=True)
            # strict_mode still lets through an extra "=" after a full group and non-zero pad bits:
            # only the canonical encoding (as API Gateway produces it) is accepted.
            tail = body[-4:]
            canonical_tail = binascii.b2a_base64(binascii.a2b_base64(tail), newline=False).decode() if tail else ""
            if len(body) % 4 or canonical_tail != tail:
                raise ValueError("not canonical base64")
        except (binascii.Error, ValueError):
            raise errors.InvalidEvent("body is marked base64 but is not valid base64") from None
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


# log_event stays off whatever POWERTOOLS_LOGGER_LOG_EVENT says: events carry signatures and payloads.
@logger.inject_lambda_context(log_event=False, clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point for API Gateway HTTP API (payload format 2.0) events."""
    # The correlation id is requestContext.requestId (Powertools' API_GATEWAY_HTTP path), read
    # directly: a JMESPath query per invocation cost more than the rest of the log line.
    context_of_request = event.get("requestContext") if isinstance(event, dict) else None
    request_id = context_of_request.get("requestId") if isinstance(context_of_request, dict) else None
    logger.set_correlation_id(request_id if isinstance(request_id, str) else None)
    global _cold_start
    if _cold_start:
        _cold_start = False
        count_cold_start()
    try:
        _check_event(event)
        return _asgi(event, context)
    except errors.InvalidEvent as exc:
        rejected = exc
    except Exception as exc:  # Mangum could not turn the event into a request (the app itself never raises)
        log_unexpected(exc, "could not process the Lambda event")
        rejected = errors.InvalidEvent()
    logger.warning(
        "invalid Lambda event", extra={"error": rejected.code, **metric("DeliveryRejected", reason=rejected.reason)}
    )
    return {
        "statusCode": status_for(rejected),
        "headers": {"content-type": "application/json"},
        "body": json.dumps({"error": rejected.code, "message": rejected.detail}),
        "isBase64Encoded": False,
    }


def _check_event(event: Any) -> None:
    if not isinstance(event, dict) or event.get("version") != "2.0":
        raise errors.InvalidEvent()
    http = event.get("requestContext", {}).get("http") if isinstance(event.get("requestContext"), dict) else None
    if not (isinstance(http, dict) and isinstance(http.get("method"), str) and isinstance(http.get("path"), str)):
        raise errors.InvalidEvent("requestContext.http is missing")
    if not isinstance(http.get("sourceIp"), str):
        raise errors.InvalidEvent("requestContext.http.sourceIp is missing")
    if not isinstance(event.get("rawQueryString", ""), str):
        raise errors.InvalidEvent("rawQueryString must be a string")
    headers = event.get("headers", {})
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise errors.InvalidEvent("headers must be an object of strings")
    if not isinstance(event.get("body") or "", str):
        raise errors.InvalidEvent("body must be a string")


# Everything imported so far lives as long as the container: move it out of the garbage
# collector's sight, so that parsing a large payload (many new objects, so many collections)
# does not walk the whole framework heap each time (bench: 5 MB warm, 84 ms -> 59 ms). Only the
# import-time heap: what holds the secret is created later, and stays collectable.
gc.freeze()
