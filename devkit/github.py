"""Requests shaped exactly as GitHub sends them: headers, signatures, JSON or form bodies."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from handler.core import headers as h
from handler.core.delivery import FORM, JSON
from handler.core.signature import sign

# The development secret: events/ are signed with it and `make serve` uses it. Never deploy it.
DEV_SECRET = "dev-webhook-secret-do-not-use-in-production"  # noqa: S105 (public on purpose)

PAYLOADS = Path(__file__).resolve().parent.parent / "events" / "payloads"
HOOK_ID = "483920176"
USER_AGENT = "GitHub-Hookshot/7a1b2c3"


def sample_payload(event: str) -> dict[str, Any]:
    """A real-shaped payload for ``event`` from events/payloads/."""
    return json.loads((PAYLOADS / f"{event}.json").read_text(encoding="utf-8"))


# GitHub sends compact JSON (no spaces after separators) with non-ASCII text as UTF-8.
GITHUB_SEPARATORS = (",", ":")


def encode_body(payload: dict[str, Any] | bytes, *, form: bool = False, pretty: bool = False) -> bytes:
    """The body GitHub would send: compact JSON, or the JSON in the form field ``payload``.

    ``pretty`` indents it instead, for reading (the bytes then differ from what GitHub would send).
    """
    if isinstance(payload, bytes):
        raw = payload
    elif pretty:
        raw = json.dumps(payload, ensure_ascii=False, indent=2).encode()
    else:
        raw = json.dumps(payload, ensure_ascii=False, separators=GITHUB_SEPARATORS).encode()
    return urlencode({"payload": raw}).encode() if form else raw


def github_headers(
    event: str,
    body: bytes,
    *,
    secret: str | bytes | None = DEV_SECRET,
    delivery_id: str | None = None,
    form: bool = False,
    hook_id: str = HOOK_ID,
    target_type: str = "repository",
    target_id: str = "702345678",
) -> dict[str, str]:
    """Every header GitHub sends with a delivery, signed over ``body`` (lower-case names)."""
    headers = {
        "accept": "*/*",
        h.CONTENT_TYPE: FORM if form else JSON,
        h.USER_AGENT: USER_AGENT,
        h.DELIVERY: delivery_id or str(uuid.uuid4()),
        h.EVENT: event,
        h.HOOK_ID: hook_id,
        h.TARGET_ID: target_id,
        h.TARGET_TYPE: target_type,
    }
    if secret is not None:
        key = secret.encode() if isinstance(secret, str) else secret
        headers[h.SIGNATURE_SHA1] = sign(body, secret=key, algorithm="sha1")
        headers[h.SIGNATURE_256] = sign(body, secret=key)
    return headers
