"""GitHub's deliveries endpoints over HTTP: the :class:`~handler.core.ports.DeliveriesApi` port.

The standard library's ``http.client`` sends the requests: no extra dependency, nothing async in a
scheduled function, and it never follows a redirect (a 3xx stays the error it is, so credentials
never leave the configured API). gidgethub builds the headers and URLs; the answers are read here,
not by gidgethub's ``decipher_response``, which raises on a malformed rate-limit header and chokes
on an HTML 5xx. Everything happens within the run's time left (``time_left``):
- a request has one deadline for connect, send, headers and body together: a watchdog shuts its
  socket down, so a server that drips its answer a byte at a time cannot hold the run;
- rate limits are kept per credential (the token, the App's JWT), across hooks: after an answer
  with ``x-ratelimit-remaining: 0`` nothing is sent with that credential before ``x-ratelimit-reset``;
  a secondary limit waits ``retry-after`` (else a minute); POSTs are paced ``post_interval`` apart;
- a 5xx or a network failure (a timeout included) is retried with back-off (1 s, 2 s, 4 s);
and a wait that does not fit stops the hook cleanly (:class:`RunStopped`): the next run continues.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import json
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple
from urllib.parse import SplitResult, urljoin, urlsplit

from gidgethub import sansio

from handler.core.hooks import Hook
from handler.core.ports import GitHubError, Page, Refused, RunStopped
from handler.github.auth import Credentials

__all__ = ["GitHubDeliveries", "GitHubError", "Refused", "RunStopped", "next_link"]

PER_PAGE = 100
REQUEST_DEADLINE = 20.0  # connect, send, headers and body together
MIN_REQUEST_SECONDS = 3.0  # no request starts with less time left than this
MAX_ATTEMPTS = 4
BACKOFF_SECONDS = 1.0
SECONDARY_WAIT_SECONDS = 60.0  # GitHub: without retry-after, wait at least a minute
MAX_HEADER_WAIT = 24 * 3600.0  # a retry-after or reset further away than this is garbage, ignored
MAX_BODY_BYTES = 64 * 2**20
REFUSALS = frozenset({400, 404, 410, 422})  # about one delivery: that delivery's verdict
ANY_REFUSAL = frozenset(range(400, 500))


class GitHubDeliveries:
    """GitHub's deliveries endpoints for every hook of a run: one instance per run, since rate limits
    are per credential, whichever hook spent them."""

    def __init__(
        self,
        *,
        api_url: str,
        credentials: Credentials,
        time_left: Callable[[], float],
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        post_interval: float = 1.0,
        blocked: dict[str, tuple[float, str]] | None = None,
    ) -> None:
        self._api_url = api_url.rstrip("/")
        self._api = urlsplit(self._api_url)
        self._credentials = credentials
        self._time_left = time_left
        self._sleep = sleep
        self._clock = clock  # wall time: x-ratelimit-reset is an epoch
        self._post_interval = post_interval
        # credential -> (no request before, why). Pass the same dict to the next run's client (a warm
        # container) so that it, too, sends nothing with a spent credential before the reset.
        self._blocked: dict[str, tuple[float, str]] = {} if blocked is None else blocked
        self._last_post: dict[str, float] = {}  # credential -> when its last POST was sent
        self.requests = 0

    def first_page(self, hook: Hook) -> Page:
        return self._page(hook, self._url(hook.deliveries_path) + f"?per_page={PER_PAGE}")

    def next_page(self, hook: Hook, url: str) -> Page:
        if not self._on_api(url):
            raise GitHubError("the next page is not on the configured API")  # never send credentials elsewhere
        return self._page(hook, url)

    def redeliver(self, hook: Hook, delivery_id: int) -> None:
        """Raises :class:`Refused` when GitHub will not redeliver that attempt (400, 404, 410, 422)."""
        self._request(hook, "POST", self._url(hook.attempts_path(_delivery_id(delivery_id))), refusals=REFUSALS)

    def delivery(self, hook: Hook, delivery_id: int) -> Mapping[str, Any]:
        """Raises :class:`Refused` when GitHub has no such attempt (400, 404, 410, 422)."""
        url = self._url(hook.delivery_path(_delivery_id(delivery_id)))
        record = _json("GET", url, self._request(hook, "GET", url, refusals=REFUSALS))
        if not isinstance(record, Mapping):
            raise GitHubError(f"GET {_path(url)} answered a body that is not a JSON object")
        return record

    def call(self, hook: Hook, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        """Another endpoint of the API, for the tools that manage a hook (`webhook connect`,
        `rotate-secret`): ``path`` (``/repos/o/r/hooks``) with the credential ``hook`` selects, the same
        deadlines, rate limits and retries (a POST never sent twice). JSON in and out; None for an empty
        answer (204). Any 4xx that is not a rate limit raises :class:`Refused` with its status."""
        url = self._url(path)
        data = json.dumps(body).encode() if body is not None else None
        # A hook's secret travels in the body: an error message that echoes it is cut like the token.
        config = body.get("config") if body is not None else None
        sent = [
            body.get("secret") if body is not None else None,
            config.get("secret") if isinstance(config, Mapping) else None,
        ]
        redact = tuple(value for value in sent if isinstance(value, str) and value)
        answer = self._request(hook, method, url, refusals=ANY_REFUSAL, body=data, redact=redact)
        return _json(method, url, answer) if answer.body.strip() else None

    def _url(self, path: str) -> str:
        return sansio.format_url(path, {}, base_url=self._api_url)

    def _on_api(self, url: str) -> bool:
        """Whether ``url`` is under the configured API: same scheme, host and port, no user info, and
        nothing http.client would refuse (a refusal would look like a network failure)."""
        if not (url.isascii() and url.isprintable()) or " " in url:
            return False
        try:
            parts = urlsplit(url)
            origin = (parts.scheme, parts.hostname, _port(parts))
        except ValueError:  # a port that is not a number
            return False
        api = self._api
        return (
            origin == (api.scheme, api.hostname, _port(api))
            and parts.username is None
            and parts.password is None
            and parts.path.startswith(api.path + "/")
        )

    def _page(self, hook: Hook, url: str) -> Page:
        answer = self._request(hook, "GET", url)
        data = _json("GET", url, answer)
        if not isinstance(data, list):
            raise GitHubError("the deliveries answer is not a list")
        more = next_link(answer.headers.get("link"))
        # Every item, objects or not: the core skips and counts what is not an attempt.
        return Page(data, urljoin(url, more) if more else None)

    def _request(
        self,
        hook: Hook,
        method: str,
        url: str,
        *,
        refusals: frozenset[int] = frozenset(),
        body: bytes | None = None,
        redact: tuple[str, ...] = (),
    ) -> _Answer:
        credential, why = hook.credential, "no attempt"
        for attempt in range(MAX_ATTEMPTS):
            self._wait_turn(credential, method)
            left = self._time_left()
            if left < MIN_REQUEST_SECONDS:
                raise RunStopped("no time left for another request", reason="time")
            headers = self._credentials.headers(hook)  # a PermissionError (an OSError) is not a network failure
            if method == "POST":
                self._last_post[credential] = self._clock()
            self.requests += 1
            try:
                answer = _send(method, url, headers, min(REQUEST_DEADLINE, left), body)
            except _TooLarge as exc:
                raise GitHubError(
                    f"{method} {_path(url)} answered {exc.status} with over {MAX_BODY_BYTES} bytes"
                ) from None
            except TimeoutError:
                why = "timed out"
            except (OSError, http.client.HTTPException):  # refused, reset, TLS, a garbled answer
                why = "network failure"
            else:
                self._note_primary_limit(credential, answer.headers)
                if 200 <= answer.status < 300:
                    return answer
                if 500 <= answer.status < 600:  # whatever the body (an HTML page) and the code (520, 599)
                    why = "GitHub 5xx"
                else:
                    token = headers.get("authorization", "").partition(" ")[2]
                    message = _message(answer, secrets=(token, *redact))
                    limit = self._rate_limit(answer, message)
                    if limit is None:
                        text = f"{method} {_path(url)} answered {answer.status} ({message})"
                        if answer.status in refusals:
                            raise Refused(text, status=answer.status)
                        raise GitHubError(text)
                    wait, why = limit
                    self._block(credential, self._clock() + wait, why)
                    continue  # the next attempt waits for the credential's turn
            if method == "POST":
                # GitHub may have acted on it (a redelivery made, the answer lost): never sent twice here.
                # The caller keeps its intent; a later listing shows the outcome, or that it was never made.
                raise RunStopped(f"{method} {_path(url)} failed ({why}): it may have been made", reason="network")
            if attempt + 1 < MAX_ATTEMPTS:  # no wait after the last attempt: it would only spend the run's time
                self._pause(BACKOFF_SECONDS * 2**attempt, why, reason="network")
        reason = "rate_limit" if why.endswith("rate limit") else "network"
        raise RunStopped(f"{method} {_path(url)} kept failing ({why})", reason=reason)

    def _rate_limit(self, answer: _Answer, message: str) -> tuple[float, str] | None:
        """How long a 403 or 429 asks to wait, and why; None when it is not a rate limit."""
        if answer.status not in (403, 429):
            return None
        retry_after = _number(answer.headers.get("retry-after"))
        retry_after = retry_after if retry_after is not None and retry_after <= MAX_HEADER_WAIT else None
        if _number(answer.headers.get("x-ratelimit-remaining")) == 0:
            reset = self._reset(answer.headers)
            if reset is not None:
                return max(1.0, reset - self._clock()), "rate limit"
            return (SECONDARY_WAIT_SECONDS if retry_after is None else retry_after), "rate limit"
        if retry_after is not None:
            return retry_after, "secondary rate limit"
        lowered = message.lower()
        if answer.status == 429 or "secondary rate limit" in lowered or "abuse detection" in lowered:
            return SECONDARY_WAIT_SECONDS, "secondary rate limit"
        return None

    def _note_primary_limit(self, credential: str, headers: Mapping[str, str]) -> None:
        """Any answer (a 2xx too) that spends the credential's last request closes it until the reset."""
        reset = self._reset(headers)
        if reset is not None and _number(headers.get("x-ratelimit-remaining")) == 0:
            self._block(credential, reset, "rate limit")

    def _reset(self, headers: Mapping[str, str]) -> float | None:
        """``x-ratelimit-reset`` plus a second (it is rounded down), unless it is garbage."""
        reset = _number(headers.get("x-ratelimit-reset"))
        if reset is None or reset > self._clock() + MAX_HEADER_WAIT:
            return None
        return reset + 1

    def _block(self, credential: str, until: float, why: str) -> None:
        if until > self._blocked.get(credential, (0.0, ""))[0]:
            self._blocked[credential] = (until, why)

    def _wait_turn(self, credential: str, method: str) -> None:
        """Wait until the credential may send again (a rate limit; POSTs paced apart), or stop."""
        until, why = self._blocked.get(credential, (0.0, ""))
        reason = "rate_limit"
        if method == "POST" and credential in self._last_post:
            paced = self._last_post[credential] + self._post_interval
            if paced > until:
                until, why, reason = paced, "pacing POSTs", "time"
        wait = until - self._clock()
        if wait > 0:
            self._pause(wait, why, reason=reason)

    def _pause(self, seconds: float, why: str, *, reason: str) -> None:
        """Sleep, or stop (``reason``: rate_limit, time, network) when the wait would pass the run's time."""
        if seconds + MIN_REQUEST_SECONDS > self._time_left():
            raise RunStopped(f"{why}: waiting {seconds:.0f} s would pass the run's time", reason=reason)
        self._sleep(seconds)


# One request ------------------------------------------------------------------------------------


class _Answer(NamedTuple):
    status: int
    reason: str
    headers: dict[str, str]  # names in lower case
    body: bytes


class _TooLarge(Exception):
    def __init__(self, status: int) -> None:
        self.status = status


class _Watchdog:
    """Shuts a request's socket down at its deadline: whatever the server does (stays silent, drips a
    byte at a time), the blocked connect, handshake, write or read fails at once. A socket timeout
    alone bounds each read, not the request."""

    def __init__(self, seconds: float) -> None:
        self._deadline = time.monotonic() + seconds
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._stopped = False
        self.expired = False
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def left(self) -> float:
        left = self._deadline - time.monotonic()
        if left <= 0 or self.expired:
            raise TimeoutError("the request's deadline passed")
        return left

    def watch(self, sock: socket.socket | None) -> None:
        """Watch ``sock`` (None before closing it: the watchdog never touches a closed socket)."""
        with self._lock:
            self._sock = sock

    def stop(self) -> None:
        with self._lock:
            self._stopped, self._sock = True, None
        self._timer.cancel()

    def _expire(self) -> None:
        with self._lock:
            if self._stopped:
                return
            self.expired = True
            if self._sock is not None:
                # The plain socket's shutdown, also under TLS: ssl.SSLSocket.shutdown would drop the TLS
                # state under the reading thread's feet (a ValueError there, not an OSError).
                with contextlib.suppress(OSError):
                    socket.socket.shutdown(self._sock, socket.SHUT_RDWR)


def _send(method: str, url: str, headers: Mapping[str, str], seconds: float, body: bytes | None = None) -> _Answer:
    """One request, over within ``seconds`` whatever the server does (the DNS lookup aside: see _connect)."""
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    watchdog = _Watchdog(seconds)
    connection: http.client.HTTPConnection | None = None
    response: http.client.HTTPResponse | None = None
    answer: _Answer | None = None
    try:
        # A connection with its socket already open (and TLS set up): http.client only sends and reads.
        connection = http.client.HTTPConnection(parts.hostname or "", _port(parts))
        connection.sock = _connect(parts, watchdog)
        # Only the configured API URL (https; loopback in tests) is ever requested: next pages are
        # checked in next_page, and http.client never follows a redirect.
        sent = {**headers, "host": parts.netloc.rpartition("@")[2]}
        if body is not None:
            sent["content-type"] = "application/json"
        elif method in ("POST", "PATCH"):
            body = b""
        connection.request(method, target, body=body, headers=sent)
        response = connection.getresponse()
        answer = _Answer(response.status, response.reason, _lower(response.getheaders()), _read(response))
    except Exception:
        if not watchdog.expired:
            raise
        # Cut by the watchdog: whatever the client raised (a reset, an incomplete read) is a timeout.
    finally:
        watchdog.stop()  # before closing: the watchdog never shuts down a socket number that was reused
        if response is not None:
            response.close()
        if connection is not None:
            connection.close()
    if watchdog.expired or answer is None:  # a body cut short can look complete
        raise TimeoutError(f"no whole answer within {seconds:.1f} s")
    return answer


def _connect(parts: SplitResult, watchdog: _Watchdog) -> socket.socket:
    """socket.create_connection, with one deadline for every address tried, then the TLS handshake."""
    # The DNS lookup is not bounded: getaddrinfo cannot be interrupted, and there is no socket yet for
    # the watchdog to shut down (as for the receiver's AWS clients: README, "Answers").
    addresses = socket.getaddrinfo(parts.hostname, _port(parts), type=socket.SOCK_STREAM)
    error: OSError = OSError(f"no address for {parts.hostname}")
    for family, kind, proto, _, address in addresses:
        sock = socket.socket(family, kind, proto)
        watchdog.watch(sock)
        try:
            sock.settimeout(watchdog.left())  # a shutdown may not stop a connect under way: the timeout does
            sock.connect(address)
            if parts.scheme == "https":
                sock = _tls().wrap_socket(sock, server_hostname=parts.hostname, do_handshake_on_connect=False)
                watchdog.watch(sock)
                sock.do_handshake()
            return sock
        except OSError as exc:
            watchdog.watch(None)
            sock.close()
            error = exc
    raise error


@functools.cache
def _tls() -> ssl.SSLContext:
    """The system's trusted certificates, host names checked (made on first use, not at import)."""
    return ssl.create_default_context()


def _read(response: http.client.HTTPResponse) -> bytes:
    """The body, refused past MAX_BODY_BYTES without reading it whole."""
    if response.length is not None and response.length > MAX_BODY_BYTES:
        raise _TooLarge(response.status)
    chunks, size = [], 0
    while chunk := response.read(2**20):
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _TooLarge(response.status)
        chunks.append(chunk)
    return b"".join(chunks)


def _lower(items: list[tuple[str, str]]) -> dict[str, str]:
    """Header names in lower case; a repeated header's values joined with commas, as HTTP allows."""
    headers: dict[str, str] = {}
    for name, value in items:
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers


# Reading answers ---------------------------------------------------------------------------------

_LINK = re.compile(r'<([^>]*)>((?:\s*;\s*[^;,=\s]+\s*(?:=\s*(?:"[^"]*"|[^;,]*))?)*)')
_PARAM = re.compile(r';\s*([^;,=\s]+)\s*(?:=\s*("[^"]*"|[^;,]*))?')
_NUMBER = re.compile(r"\d{1,15}(?:\.\d{1,9})?")


def next_link(value: str | None) -> str | None:
    """The ``rel="next"`` target of a ``Link`` header (RFC 8288), or None.

    >>> next_link('<https://api.github.com/x?cursor=b>; rel="next", <https://api.github.com/x>; rel="first"')
    'https://api.github.com/x?cursor=b'
    >>> next_link('<https://api.github.com/x>; rel="prev"') is None
    True
    """
    for target, params in _LINK.findall(value or ""):
        for name, rel in _PARAM.findall(params):
            if name.lower() == "rel" and "next" in rel.strip().strip('"').lower().split():
                link: str = target.strip()
                return link
    return None


def _number(value: str | None) -> float | None:
    """A header's non-negative number, or None for anything else (absent, ``-1``, ``nan``, ``1e99``, text)."""
    if value is None or not _NUMBER.fullmatch(value.strip()):
        return None
    return float(value)


def _json(method: str, url: str, answer: _Answer) -> Any:
    try:
        return json.loads(answer.body)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, nested too deep
        raise GitHubError(f"{method} {_path(url)} answered {answer.status} with a body that is not JSON") from None


def _message(answer: _Answer, *, secrets: tuple[str, ...]) -> str:
    """GitHub's ``message``, else the reason phrase: printable, short, and never the credential (nor a
    webhook secret the request carried)."""
    try:
        data = json.loads(answer.body)
    except (ValueError, RecursionError):
        data = None
    message = data.get("message") if isinstance(data, dict) else None
    text = message if isinstance(message, str) and message else answer.reason or "no message"
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")  # a server that echoes the Authorization header, or the body
    return "".join(c if c.isprintable() else " " for c in text)[:200]


def _path(url: str) -> str:
    return url.split("?", 1)[0].split("://", 1)[-1].split("/", 1)[-1][:200]


def _port(parts: SplitResult) -> int | None:
    return parts.port or {"https": 443, "http": 80}.get(parts.scheme)


def _delivery_id(delivery_id: int) -> int:
    """An attempt's id, as GitHub lists it: a number, never text that would change the path."""
    if isinstance(delivery_id, bool) or not isinstance(delivery_id, int) or delivery_id < 0:
        raise ValueError(f"not a delivery id: {str(delivery_id)[:40]!r}")
    return delivery_id
