"""`webhook send`: post a payload to a URL exactly as GitHub would."""

from __future__ import annotations

import http.client
from urllib.parse import urlsplit

from devkit.errors import UNREACHABLE, USAGE, CliError
from handler.core import headers as h

# GitHub's own spelling of its headers (HTTP does not care, people reading a capture do).
_GITHUB_CASE = {
    "accept": "Accept",
    h.CONTENT_TYPE: "Content-Type",
    h.USER_AGENT: "User-Agent",
    h.DELIVERY: "X-GitHub-Delivery",
    h.EVENT: "X-GitHub-Event",
    h.HOOK_ID: "X-GitHub-Hook-ID",
    h.TARGET_ID: "X-GitHub-Hook-Installation-Target-ID",
    h.TARGET_TYPE: "X-GitHub-Hook-Installation-Target-Type",
    h.SIGNATURE_SHA1: "X-Hub-Signature",
    h.SIGNATURE_256: "X-Hub-Signature-256",
}


def check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CliError(f"not an http(s) URL: {url}", USAGE)
    try:
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError:
        raise CliError(f"not a valid port in URL: {url}", USAGE) from None


def post(url: str, body: bytes, headers: dict[str, str], *, timeout: float = 15.0) -> tuple[int, bytes]:
    """POST ``body`` with ``headers``; returns the status and the answer's body."""
    check_url(url)
    parts = urlsplit(url)
    port = parts.port
    connection_type = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = connection_type(parts.hostname, port, timeout=timeout)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.putrequest("POST", path)
        for name, value in headers.items():
            connection.putheader(_GITHUB_CASE.get(name, name), value)
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, response.read()
    except (TimeoutError, OSError, http.client.HTTPException) as exc:
        raise CliError(f"cannot reach {url}: {exc.__class__.__name__}: {exc}", UNREACHABLE) from None
    finally:
        connection.close()
