"""`webhook serve`'s development console: one short human line per request instead of JSON.

A logging formatter installed on the receiver's Powertools log handler, for ``serve`` only (with
``--json``, and on Lambda, the lines stay Powertools' JSON). It renders each record from what
Powertools would have written: the record's own fields (``extra``: ``status``, ``error``,
``detail``, ...) and the keys bound to the logger (``delivery_id``, ``event``, ``action``,
``repository``), read through the Powertools formatter it wraps. :class:`EveryRequest` adds a line
for a request nothing else logged (a crash before any line). Columns have fixed widths (ids shortened here)::

    13:25:15  202  push                          0f6c1d2e-…  octo-org/hello                archived, on the bus
    13:25:16  202  push                          same-id     octo-org/hello                duplicate: handed off …
    13:25:17  401  push                          5b1e03a7-…  -                             refused: signature_mismatch
    13:25:18  503  pull_request.opened           9a0c44f1-…  octo-org/hello                not accepted (forward_…
    13:25:19  202  pull_request_review….created  72d3162e-…  octo-org/hello                archived, on the bus
    13:25:20  404  -                             -           -                             refused: not_found (GET /)
    13:25:21  202  ping                          c8e1f0a2-…  octo-org/hello                archived, on the bus
    13:25:21       webhook ping

Key management (``append_keys``, ``remove_keys``, ``get_current_keys``, ...) is delegated to the
wrapped formatter, so the Logger works exactly as before and the JSON formatter can be put back.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import IO, Any

from aws_lambda_powertools.logging.formatter import BasePowertoolsFormatter

from handler.core import outcomes
from handler.core.delivery import claimed_ids

# What the receiver logs for a delivery (handler/core/receiver.py) and what an outcome's line says
# (handler/core/report.py); any other line is rendered generically.
ACCEPTED = "delivery accepted"
UNRECORDED = "delivery accepted but not recorded as done"
DUPLICATE = "delivery duplicate"
REJECTED = outcomes.Rejected.summary
NOT_ACCEPTED = outcomes.Unavailable.summary
NOT_CONFIGURED = outcomes.ConfigurationError.summary
REQUEST_REJECTED = outcomes.NotFound.summary  # the framework's 404 and 405, with the method and path

_RESET, _DIM, _RED, _GREEN, _YELLOW, _CYAN = "\x1b[0m", "\x1b[2m", "\x1b[31m", "\x1b[32m", "\x1b[33m", "\x1b[36m"
# Attributes every LogRecord has: anything else on a record came from `extra`.
_STANDARD = {*logging.makeLogRecord({}).__dict__, "message", "asctime"}
# Fixed columns, so each starts in the same place on every line: a longer value is cut with "…".
_EVENT_WIDTH = 28  # "pull_request.ready_for_review" is cut, "pull_request.synchronize" is not
_ID_WIDTH = 36  # a GUID, as GitHub's delivery ids are
_REPOSITORY_WIDTH = 28
# A request that made no line of its own (a crash before any was written): logged by EveryRequest
# once answered, so that the window shows every request.
REQUEST = "request answered"
_PATH_MAX_CHARS = 200
# Set by EveryRequest for the request being handled; a delivery line rendered for it marks it shown.
_shown: ContextVar[list[bool] | None] = ContextVar("shown", default=None)


def _statuses() -> dict[str, int]:
    """Each outcome's error code and its HTTP status, from handler.core.outcomes (the one place they are decided)."""
    found: dict[str, int] = {}
    pending: list[type[outcomes.Outcome]] = [outcomes.Outcome]
    while pending:
        kind = pending.pop()
        found.setdefault(kind.code, kind.status)
        pending.extend(kind.__subclasses__())
    return found


def _clean(value: Any) -> str:
    """A value fit for a terminal: control characters (an escape sequence in a signed payload's
    ``action``, say) are shown escaped, never interpreted."""
    text = str(value)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c == " " else c.encode("unicode_escape").decode() for c in text)


def _fit(text: str, width: int) -> str:
    """``text`` in exactly ``width`` characters: padded, or cut with "…"."""
    return f"{text:<{width}}" if len(text) <= width else text[: width - 1] + "…"


def _event(event: str, action: str | None) -> str:
    """The event column; a long event name is cut before its action: "pull_request_review….created"."""
    if action is None:
        return _fit(event, _EVENT_WIDTH)
    if len(event) + 1 + len(action) > _EVENT_WIDTH and len(action) <= _EVENT_WIDTH // 2:
        return f"{event[: _EVENT_WIDTH - len(action) - 2]}….{action}"
    return _fit(f"{event}.{action}", _EVENT_WIDTH)


def wants_color(stream: IO[str], environ: Mapping[str, str] = os.environ) -> bool:
    """Colour only on a terminal, and never when ``NO_COLOR`` is set to anything (https://no-color.org)."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and not environ.get("NO_COLOR") and environ.get("TERM") != "dumb"


def handoff_summary(environ: Mapping[str, str] = os.environ) -> str:
    """What "accepted" means with this environment's settings: archived, on the bus, or verified only."""
    steps = (("ARCHIVE_BUCKET", "archived"), ("EVENT_BUS_NAME", "on the bus"))
    done = [what for name, what in steps if environ.get(name)]
    return ", ".join(done) or "verified (no hand-off configured)"


class ConsoleFormatter(BasePowertoolsFormatter):
    """Human lines for the records of a Powertools Logger whose formatter (``structured``) it wraps."""

    def __init__(self, structured: BasePowertoolsFormatter, *, color: bool = False, accepted: str = "accepted") -> None:
        super().__init__()
        self.structured = structured
        self.color = color
        self.accepted = accepted
        self._status = _statuses()

    # The Logger's key management goes to the formatter it found on its handler: this one, now.
    def append_keys(self, **additional_keys: Any) -> None:
        self.structured.append_keys(**additional_keys)

    def get_current_keys(self) -> dict[str, Any]:
        return self.structured.get_current_keys()

    def remove_keys(self, keys: Iterable[str]) -> None:
        self.structured.remove_keys(keys)

    def clear_state(self) -> None:
        self.structured.clear_state()

    @contextmanager
    def append_context_keys(self, **additional_keys: Any) -> Iterator[None]:
        with self.structured.append_context_keys(**additional_keys):
            yield

    def thread_safe_append_keys(self, **additional_keys: Any) -> None:
        self.structured.thread_safe_append_keys(**additional_keys)

    def thread_safe_get_current_keys(self) -> dict[str, Any]:
        return self.structured.thread_safe_get_current_keys()

    def thread_safe_remove_keys(self, keys: Iterable[str]) -> None:
        self.structured.thread_safe_remove_keys(keys)

    def thread_safe_clear_keys(self) -> None:
        self.structured.thread_safe_clear_keys()

    def format(self, record: logging.LogRecord) -> str:
        fields = {k: v for k, v in record.__dict__.items() if k not in _STANDARD}
        # As Powertools merges them: the bound keys, the thread's keys, then the record's own fields.
        keys = {**self.get_current_keys(), **self.thread_safe_get_current_keys(), **fields}
        message = record.getMessage()
        clock = self._paint(_DIM, time.strftime("%H:%M:%S", time.localtime(record.created)))
        line = self._delivery(clock, message, keys)
        if line is None:
            line = self._generic(clock, record.levelno, message, fields)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line

    def _delivery(self, clock: str, message: str, keys: Mapping[str, Any]) -> str | None:
        if message == ACCEPTED:
            status, colour, outcome = 202, _GREEN, self.accepted
        elif message == UNRECORDED:
            status, colour = 202, _YELLOW
            outcome = f"{self.accepted}; not recorded as done (a redelivery would be forwarded again)"
        elif message == DUPLICATE:
            status, colour, outcome = 202, _CYAN, "duplicate: handed off before, nothing sent again"
        elif message == REJECTED:
            code = _clean(keys.get("error") or "rejected")
            status, colour, outcome = self._status.get(code, 400), _YELLOW, f"refused: {code}"
        elif message in (NOT_ACCEPTED, NOT_CONFIGURED):
            code = _clean(keys.get("error") or "unavailable")
            detail = _clean(keys["detail"]) if keys.get("detail") else None
            status, colour = self._status.get(code, 503), _RED
            outcome = f"not accepted ({code}): {detail}" if detail else f"not accepted ({code})"
        elif message == REQUEST_REJECTED:
            code = _clean(keys.get("error") or "rejected")
            request = _clean(f"{keys.get('method')} {keys.get('path')}")
            status, colour, outcome = self._status.get(code, 400), _YELLOW, f"refused: {code} ({request})"
        elif message == REQUEST:
            status, code = keys["answer"], _clean(keys.get("error") or "-")
            request = _clean(f"{keys['method']} {keys['path']}")
            if status >= 500:
                colour, outcome = _RED, f"not accepted ({code}): {request}"
            elif status >= 400:
                colour, outcome = _YELLOW, f"refused: {code} ({request})"
            else:
                colour, outcome = _GREEN, f"answered ({request})"
        else:
            return None
        if (shown := _shown.get()) is not None:
            shown.append(True)
        columns = [
            clock,
            self._paint(colour, str(status)),
            _event(_clean(keys.get("event") or "-"), _clean(keys["action"]) if keys.get("action") else None),
            _fit(_clean(keys.get("delivery_id") or "-"), _ID_WIDTH),
            _fit(_clean(keys.get("repository") or "-"), _REPOSITORY_WIDTH),
            outcome if message == ACCEPTED else self._paint(colour, outcome),
        ]
        return "  ".join(columns)

    def _generic(self, clock: str, level: int, message: str, fields: Mapping[str, Any]) -> str:
        """Any other line (a ping route's, a secret refresh, a listener's failure): its message and fields."""
        metrics = {
            metric.get("Name")
            for directive in fields.get("_aws", {}).get("CloudWatchMetrics", [])
            for metric in directive.get("Metrics", [])
        }
        shown = []
        for name, value in fields.items():
            if name == "_aws" or name in metrics or value is None:
                continue
            if name == "frames" and isinstance(value, list) and value:
                name, value = "at", value[-1]
            text = _clean(value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False))
            shown.append(f"{name}={json.dumps(text, ensure_ascii=False) if ' ' in text else text}")
        if level >= logging.ERROR:
            colour, message = _RED, f"error: {message}"
        elif level >= logging.WARNING:
            colour, message = _YELLOW, f"warning: {message}"
        else:
            colour = _DIM
        # Under the delivery columns, past the status: it belongs to the delivery line above (or below).
        return f"{clock}       {self._paint(colour, '  '.join([_clean(message), *shown]))}"

    def _paint(self, colour: str, text: str) -> str:
        return f"{colour}{text}{_RESET}" if self.color and colour else text


@contextmanager
def installed(
    logger: Any, *, stream: IO[str] | None = None, color: bool | None = None, accepted: str | None = None
) -> Iterator[ConsoleFormatter]:
    """The console on ``logger``'s handler (a Powertools Logger's ``registered_handler``) while the block runs.

    ``stream``: where the lines go instead (serve: stderr, with its own messages); ``color``: by
    default, whether that stream is a terminal and ``NO_COLOR`` is unset; ``accepted``: what an
    accepted delivery went through (by default, from ARCHIVE_BUCKET and EVENT_BUS_NAME).
    """
    handler = logger.registered_handler
    previous = handler.formatter
    formatter = ConsoleFormatter(
        previous,
        color=wants_color(stream or handler.stream) if color is None else color,
        accepted=handoff_summary() if accepted is None else accepted,
    )
    handler.setFormatter(formatter)
    previous_stream = handler.setStream(stream) if stream is not None else None
    try:
        yield formatter
    finally:
        handler.setFormatter(previous)
        if previous_stream is not None:
            handler.setStream(previous_stream)


class EveryRequest:
    """ASGI middleware for serve: a line for each request that made no delivery line of its own
    (a crash before any was written), with its status and error code."""

    def __init__(self, app: Any, logger: Any) -> None:
        self.app = app
        self.logger = logger

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        answer: dict[str, Any] = {"answer": 500}  # what the server sends if the app raises

        async def watch(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                answer["answer"] = message["status"]
            elif message["type"] == "http.response.body" and "error" not in answer:
                answer["error"] = _error_code(message.get("body", b""))
            await send(message)

        shown: list[bool] = []
        token = _shown.set(shown)  # the receiver's thread sees the same list: contexts are copied, not the list
        try:
            await self.app(scope, receive, watch)
        finally:
            _shown.reset(token)
            if not shown:
                self._log(scope, answer)

    def _log(self, scope: dict[str, Any], answer: dict[str, Any]) -> None:
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
        path = scope["path"] if len(scope["path"]) <= _PATH_MAX_CHARS else scope["path"][:_PATH_MAX_CHARS] + "…"
        # Only well-formed ids, as in the receiver's lines (nothing was verified); every column is given,
        # so that none comes from keys bound to the logger.
        claimed = {"event": None, "delivery_id": None, **claimed_ids(headers)}
        fields = {**answer, "method": scope["method"], "path": path, **claimed, "action": None, "repository": None}
        level = "error" if answer["answer"] >= 500 else "warning" if answer["answer"] >= 400 else "info"
        getattr(self.logger, level)(REQUEST, extra=fields)


def _error_code(body: bytes) -> str | None:
    """The ``error`` of the receiver's JSON error body, if that is what ``body`` is."""
    try:
        answer = json.loads(body)
    except ValueError:
        return None
    return answer.get("error") if isinstance(answer, dict) else None
