"""`webhook send`: post a payload to a URL exactly as GitHub would."""

from __future__ import annotations

import http.client
from urllib.parse import urlsplit

from devkit.errors import UNREACHABLE, USAGE, CliError

# GitHub's own spelling of its headers (HTTP does not care, people reading a capture do).
_GITHUB_CASE = {
    "accept": "Accept",
    "content-type": "Content-Type",
    "user-agent": "User-Agent",
    "x-github-delivery": "X-GitHub-Delivery",
    "x-github-event": "X-GitHub-Event",
    "x-github-hook-id": "X-GitHub-Hook-ID",
    "x-github-hook-installation-target-id": "X-GitHub-Hook-Installation-Target-ID",
    "x-github-hook-installation-target-type": "X-GitHub-Hook-Installation-Target-Type",
    "x-hub-signature": "X-Hub-Signature",
    "x-hub-signature-256": "X-Hub-Signature-256",
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
