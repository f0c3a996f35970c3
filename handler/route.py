"""The HTTP route: the FastAPI app and its one route, ``POST /webhook``.

``from handler.route import app``: a plain ASGI app, run by uvicorn (``webhook serve``, the tests)
or by Mangum in Lambda (:mod:`handler.app`). Every answer other than 202 is an outcome reported once
(:func:`handler.core.report.report`: its log line and metric) and rendered here as the one JSON body.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from handler.core import outcomes
from handler.core.delivery import claimed_ids
from handler.core.outcomes import Outcome
from handler.core.receiver import Receiver
from handler.core.report import capped, report
from handler.wiring import receiver, telemetry

# redirect_slashes=False: "/webhook/" is not found (JSON 404), not a 307 with an empty body.
app = FastAPI(title="GitHub webhook receiver", docs_url=None, redoc_url=None, openapi_url=None, redirect_slashes=False)
_ROUTING_REFUSALS: dict[int, type[Outcome]] = {404: outcomes.NotFound, 405: outcomes.MethodNotAllowed}


@app.exception_handler(Outcome)
async def reported(request: Request, exc: Outcome) -> Response:
    """An outcome raised below (the receiver, :func:`refused`) was reported there: rendered only."""
    return render(outcomes.answer(exc))


@app.exception_handler(HTTPException)
async def framework_refusal(request: Request, exc: HTTPException) -> Response:
    """Starlette's own answers (unknown path, other method), reported and shaped like every other;
    its headers (``Allow: POST`` on a 405) are kept."""
    outcome = _ROUTING_REFUSALS.get(exc.status_code, Outcome)()
    asked = {"method": request.method, "path": capped(request.url.path)}
    return render(refused(outcome, header_map(request.scope["headers"]), keys=asked), headers=exc.headers)


@app.post("/webhook")
async def webhook(request: Request) -> Response:
    headers = header_map(request.scope["headers"])
    current = _configured_receiver(headers)
    arrived = current.now()  # its time budget counts from here, whatever it waits for below
    # No Pydantic body model: the signature covers the exact bytes GitHub sent.
    body = await read_body(request, current.max_body_bytes)
    if body is None:
        return render(refused(outcomes.PayloadTooLarge(), headers))
    # API Gateway's requestContext.http.sourceIp (Mangum puts it in the ASGI client), or the peer under uvicorn.
    source_ip = request.client.host if request.client else None
    try:
        if "aws.event" in request.scope:  # Mangum hands the app one event at a time: run in place
            context = request.scope.get("aws.context")
            receipt = current.receive(headers, body, source_ip=source_ip, lambda_context=context)
        else:
            # uvicorn: the receiver blocks (boto3), so it runs in a worker thread. On the event loop,
            # concurrent deliveries would wait for each other and outlast their time budgets.
            receipt = await run_in_threadpool(current.receive, headers, body, source_ip=source_ip, arrived=arrived)
    except Outcome:
        raise
    except Exception:  # a bug, reported by the receiver: answered without leaking anything
        raise Outcome() from None
    return render((202, {"status": receipt.status.value, "delivery_id": receipt.delivery.delivery_id}))


def refused(
    outcome: Outcome,
    headers: Mapping[str, str],
    *,
    cause: BaseException | None = None,
    keys: Mapping[str, Any] | None = None,
) -> tuple[int, dict[str, str]]:
    """An outcome decided at the edge, before the receiver: reported with the ids the request claims."""
    return report(telemetry(), outcome, cause=cause, keys={**claimed_ids(headers), **(keys or {})})


def _configured_receiver(headers: Mapping[str, str]) -> Receiver:
    try:
        return receiver()
    except outcomes.Unavailable as exc:  # an invalid configuration, named
        refused(exc, headers)
        raise
    except Exception as exc:  # e.g. no AWS region for a client: still a configuration problem, still JSON
        failure = outcomes.ConfigurationError()
        refused(failure, headers, cause=exc)
        raise failure from None


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


def render(answer: tuple[int, dict[str, Any]], *, headers: Mapping[str, str] | None = None) -> Response:
    """The JSON response for an answer (status and body)."""
    status, content = answer
    response = Response(orjson.dumps(content), status_code=status, media_type="application/json")
    if headers:
        response.headers.update(headers)
    return response
