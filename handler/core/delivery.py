"""Turn a verified request (headers and raw body) into a :class:`Delivery`, sans I/O.

Call :func:`parse_delivery` only after the signature has been verified: this is the
first place the body's meaning is read.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import orjson

from handler.core import headers as h
from handler.core.outcomes import InvalidHeader, MalformedPayload, MissingHeader, UnsupportedMediaType

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"

# GitHub event names are snake_case; delivery ids are GUIDs. Both end up in S3 keys,
# DynamoDB keys and EventBridge detail types, so anything else is refused.
_EVENT_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
_DELIVERY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,99}")
_HEADER_ID = re.compile(r"[A-Za-z0-9_.:-]{1,100}")


@dataclass(frozen=True, slots=True)
class Delivery:
    """One verified GitHub delivery. ``body`` is the exact bytes GitHub signed."""

    event: str
    delivery_id: str
    action: str | None
    hook_id: str | None
    installation_target_type: str | None
    installation_target_id: str | None
    content_type: str
    # Frozen fields; the payload is the parsed JSON: treat it as read-only.
    payload: Mapping[str, Any] = field(repr=False, compare=False)
    body: bytes = field(repr=False, compare=False)
    # The JSON text of a form body's `payload` field, kept so it is never decoded twice.
    form_json: str | None = field(default=None, repr=False, compare=False)
    # Read back through GitHub's deliveries API by pull recovery, not received from GitHub.
    recovered: bool = False

    @property
    def key(self) -> str:
        """The deduplication key: the hook and the delivery, case-insensitive (``42/0b98…``), or the
        delivery alone when no hook id was sent. GitHub shares a guid between every hook an event
        reaches (an organization's and a repository's, an App's): each hook's delivery is its own.
        The receiver and pull recovery record a delivery under the same key."""
        return delivery_key(self.hook_id, self.delivery_id)

    @property
    def repository(self) -> str | None:
        """``owner/name`` of the repository the event is about, when the payload has one."""
        repository = self.payload.get("repository")
        if isinstance(repository, dict):
            name = repository.get("full_name")
            return name if isinstance(name, str) else None
        return None


def delivery_key(hook_id: str | None, delivery_id: str) -> str:
    """See :attr:`Delivery.key`."""
    return f"{hook_id.lower()}/{delivery_id.lower()}" if hook_id else delivery_id.lower()


def media_type(content_type: str | None) -> str:
    """``application/json; charset=utf-8`` -> ``application/json``."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def parse_delivery(headers: Mapping[str, str], body: bytes) -> Delivery:
    """Build a :class:`Delivery` from lower-case (or case-insensitive) headers and the raw body.

    Raises :class:`UnsupportedMediaType`, :class:`MissingHeader`, :class:`InvalidHeader`
    or :class:`MalformedPayload`.
    """
    content_type = media_type(headers.get(h.CONTENT_TYPE))
    if content_type not in (JSON, FORM):
        raise UnsupportedMediaType()
    event = _required(headers, h.EVENT, _EVENT_NAME)
    delivery_id = _required(headers, h.DELIVERY, _DELIVERY_ID)
    form_json = form_payload(body) if content_type == FORM else None
    payload = _decode_json(body if form_json is None else form_json)
    action = payload.get("action")
    return Delivery(
        event=event,
        delivery_id=delivery_id,
        action=action if isinstance(action, str) else None,
        hook_id=_optional(headers, h.HOOK_ID),
        installation_target_type=_optional(headers, h.TARGET_TYPE),
        installation_target_id=_optional(headers, h.TARGET_ID),
        content_type=content_type,
        payload=payload,
        body=body,
        form_json=form_json,
    )


def claimed_ids(headers: Mapping[str, str]) -> dict[str, str]:
    """The event and delivery id a request claims, for log context before it is verified.

    Only well-formed values are returned, so an attacker cannot put arbitrary text in a log key.
    """
    claimed = {}
    for key, name, pattern in (
        ("delivery_id", h.DELIVERY, _DELIVERY_ID),
        ("event", h.EVENT, _EVENT_NAME),
        ("hook_id", h.HOOK_ID, _HEADER_ID),
    ):
        value = headers.get(name)
        if value and pattern.fullmatch(value):
            claimed[key] = value
    return claimed


def _required(headers: Mapping[str, str], name: str, pattern: re.Pattern[str]) -> str:
    value = headers.get(name)
    if not value:
        raise MissingHeader(f"{_display(name)} header is missing")
    if not pattern.fullmatch(value):
        raise InvalidHeader(f"{_display(name)} header has an invalid value")
    return value


def _optional(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value and _HEADER_ID.fullmatch(value):
        return value
    return None


def _display(name: str) -> str:
    return "-".join("GitHub" if part == "github" else part.capitalize() for part in name.split("-"))


BOM = b"\xef\xbb\xbf"


def form_payload(body: bytes) -> str:
    """The JSON text in the ``payload`` field of a form-encoded body (a leading UTF-8 BOM ignored,
    as for a JSON body)."""
    body = body.removeprefix(BOM)
    try:
        # A form body is ASCII; the percent-escapes inside it are UTF-8.
        fields = parse_qs(
            body.decode("ascii"), keep_blank_values=True, encoding="utf-8", errors="strict", max_num_fields=64
        )
    except ValueError as exc:  # non-ASCII body, invalid UTF-8 escapes, or too many fields
        raise MalformedPayload("form body is not valid application/x-www-form-urlencoded") from exc
    values = fields.get("payload", [])
    if len(values) != 1:
        raise MalformedPayload("form body must have exactly one 'payload' field")
    return values[0]


def _decode_json(text: bytes | str) -> dict[str, Any]:
    """The payload, if it is a JSON object that can be written back as valid JSON in UTF-8.

    orjson refuses by itself what the bus could not carry: invalid UTF-8 (UTF-16/32 and encoded
    surrogates included), lone surrogate escapes, ``NaN``/``Infinity`` and numbers that overflow a double
    (``1e999``). It reads an integer beyond 64 bits as a double, though: a body with a run of 19 digits
    (GitHub's ids are far shorter) goes the exact way instead, :func:`_decode_exactly`. A BOM is ignored,
    as RFC 8259 allows.
    """
    if isinstance(text, bytes):
        text = text.removeprefix(BOM)
    if _may_have_a_long_integer(text):
        return _decode_exactly(text)
    try:
        payload = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise MalformedPayload(_why(exc, text)) from None
    if not isinstance(payload, dict):
        raise MalformedPayload("payload is not a JSON object")
    return payload


def _may_have_a_long_integer(text: bytes | str) -> bool:
    """Whether ``text`` has a run of 19 digits (the shortest integer that may not fit 64 bits,
    -9223372036854775809) that could be a number: one not right after a letter, a digit or a quote, as
    inside the hex of a commit SHA (a 40-character SHA has such a run once in about 300). A run inside
    a string after a space or a colon is taken for a number too: then the exact parser reads it, as
    correctly, more slowly. translate and find cost a tenth of orjson's parse; a regular expression a third.
    """
    if isinstance(text, str):
        return any(not _in_a_word(text[max(0, m.start() - 1) : m.start()]) for m in _LONG_NUMBER_TEXT.finditer(text))
    zeros = text.translate(_DIGITS_AS_ZERO)
    at = zeros.find(_LONG_NUMBER)
    while at >= 0:
        start = at - 1 if at and zeros[at - 1 : at] == b"-" else at
        if not _in_a_word(zeros[max(0, start - 1) : start]):
            return True
        at = zeros.find(_LONG_NUMBER, at + len(_LONG_NUMBER))
    return False


def _in_a_word(before: bytes | str) -> bool:
    """Whether what ends ``before`` makes a digit run after it part of a word, never a JSON number."""
    last = before[-1:]
    if isinstance(last, bytes):
        last = last.decode("latin-1")
    return last.isalnum() or last in ('"', "_", ".", "\\")


_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_NUMBER = b"0" * 19
_LONG_NUMBER_TEXT = re.compile(r"-?[0-9]{19}")


def _why(exc: orjson.JSONDecodeError, text: bytes | str) -> str:
    """orjson's reason, in the words the receiver has always answered with."""
    reason = str(exc)
    if "UTF-8" in reason:
        return "payload is not valid UTF-8"
    if "surrogate" in reason:
        return "payload has an invalid Unicode escape (a lone surrogate)"
    at = text[exc.pos : exc.pos + 9]
    if "infinity" in reason or (at.decode("latin-1") if isinstance(at, bytes) else at).startswith(_NON_FINITE):
        return "payload has a number JSON cannot carry (NaN, Infinity or out of range)"
    if "recursion" in reason:
        return "payload nests too deeply"
    return "payload is not valid JSON"


_NON_FINITE = ("NaN", "Infinity", "-Infinity")


def _decode_exactly(text: bytes | str) -> dict[str, Any]:
    """The standard library's parser, made as strict as orjson, for the rare payload with a long number:
    ``json.loads`` guesses UTF-16/32, lets encoded surrogates through, accepts ``NaN``/``Infinity`` and
    turns ``1e999`` into infinity, all of which would be written back as invalid JSON."""
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")  # strict: no surrogates (the BOM is already gone)
        payload = json.loads(text, parse_constant=_non_finite, parse_float=_finite_float)
    except _NonFinite:
        raise MalformedPayload("payload has a number JSON cannot carry (NaN, Infinity or out of range)") from None
    except UnicodeDecodeError:
        raise MalformedPayload("payload is not valid UTF-8") from None
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise MalformedPayload("payload is not valid JSON") from exc
    if not isinstance(payload, dict):
        raise MalformedPayload("payload is not a JSON object")
    if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(payload):
        raise MalformedPayload("payload has an invalid Unicode escape (a lone surrogate)")
    return payload


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")


class _NonFinite(ValueError):
    pass


def _non_finite(token: str) -> float:
    raise _NonFinite(token)


def _finite_float(token: str) -> float:
    value = float(token)
    if math.isinf(value):  # 1e999: valid JSON text, but not a number any JSON writer can write back
        raise _NonFinite(token)
    return value


def has_duplicate_keys(text: bytes | str, parsed: Mapping[str, Any] | None = None) -> bool:
    """Whether any object in ``text`` (a payload already accepted by :func:`parse_delivery`, ``parsed``
    from it) repeats a key.

    Python keeps the last value of a repeated key; other parsers keep the first or refuse the text. The
    entry carries the payload as parsed, so this only matters where a consumer reads the JSON text itself
    (the claim check). When orjson writes ``parsed`` back as exactly ``text`` (compact JSON, as GitHub
    sends), no key can repeat: every key of the text is in what was written, once. Otherwise a second,
    slower parse that sees every pair decides.
    """
    if parsed is not None:
        try:
            if orjson.dumps(parsed) == (text.encode() if isinstance(text, str) else text):
                return False
        except orjson.JSONEncodeError:  # beyond 64 bits or 254 levels: the slow way
            pass
    if isinstance(text, bytes):
        text = text.decode("utf-8-sig")
    try:
        json.loads(text, object_pairs_hook=_unique_keys)
    except _DuplicateKey:
        return True
    return False


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        raise _DuplicateKey()
    return document


def _has_lone_surrogate(payload: dict[str, Any]) -> bool:
    try:
        json.dumps(payload, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    except RecursionError:  # nested deeper than it can be written: refused when the entry is planned
        return False
    return False
