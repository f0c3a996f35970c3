"""Writes the sample API Gateway events in events/ (for `sam local invoke` and `make invoke`).

Every event is signed with :data:`devkit.github.DEV_SECRET` except ``bad-signature.json``.
Regenerate with ``python -m devkit.events``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from devkit.apigw import http_api_event
from devkit.github import encode_body, github_headers, sample_payload
from handler.core import headers as h

EVENTS = Path(__file__).resolve().parent.parent / "events"
_EPOCH_MS = 1796000000000  # fixed, so regenerating gives the same files

# file name -> (event, delivery id, form-encoded, base64, signed with the dev secret, expected status)
SAMPLES: dict[str, tuple[str, str, bool, bool, bool, int]] = {
    "ping.json": ("ping", "8f2c1a40-cd31-11f0-8a3e-0d9c5a7b1e01", False, False, True, 202),
    "push.json": ("push", "8f2c1a40-cd31-11f0-8a3e-0d9c5a7b1e02", False, False, True, 202),
    "pull_request.json": ("pull_request", "8f2c1a40-cd31-11f0-8a3e-0d9c5a7b1e03", False, False, True, 202),
    "push-form-base64.json": ("push", "8f2c1a40-cd31-11f0-8a3e-0d9c5a7b1e04", True, True, True, 202),
    "bad-signature.json": ("push", "8f2c1a40-cd31-11f0-8a3e-0d9c5a7b1e05", False, False, False, 401),
}


def build(name: str) -> dict[str, Any]:
    event, delivery_id, form, b64, signed, _ = SAMPLES[name]
    body = encode_body(sample_payload(event), form=form)
    headers = github_headers(event, body, delivery_id=delivery_id, form=form)
    if not signed:
        # Signed over a different body: what a forgery or a tampered delivery looks like.
        other = github_headers(event, body + b" ", delivery_id=delivery_id, form=form)
        headers[h.SIGNATURE_256] = other[h.SIGNATURE_256]
        headers[h.SIGNATURE_SHA1] = other[h.SIGNATURE_SHA1]
    return http_api_event(
        body, headers, base64_encoded=b64, request_id=f"sample-{delivery_id[-4:]}", epoch_ms=_EPOCH_MS
    )


def write_all(folder: Path = EVENTS) -> list[Path]:
    written = []
    for name in SAMPLES:
        path = folder / name
        path.write_text(json.dumps(build(name), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write_all():
        print(path)
