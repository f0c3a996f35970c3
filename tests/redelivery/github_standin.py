"""A stand-in for GitHub's webhook deliveries API on loopback, for the redelivery tests.

It models what the redelivery function relies on (FACTS.md, "GitHub's deliveries API"):
- per hook (``/repos/O/R/hooks/ID``, ``/orgs/O/hooks/ID``, ``/app/hook``) a list of delivery attempts,
  listed newest first by ``GET …/deliveries?per_page=N&cursor=C``, pages chained by a ``Link`` header;
- authentication: ``token <TOKEN>`` for repository and organization hooks, ``bearer <JWT>`` for the
  App's hook, the JWT verified as GitHub does (RS256 with the App's public key, ``iss`` the App id,
  at most 10 minutes between ``iat`` and ``exp``, ``iat`` not in the future);
- scripted faults, each answered once: a primary rate limit (403, ``x-ratelimit-remaining: 0``), a
  secondary one (403 or 429 with ``retry-after``), a 502;
- ``POST …/deliveries/{id}/attempts``: 202, recorded, and a new attempt (``redelivery: true``, same
  guid) whose outcome the test scripts, or which really re-posts the original request to a receiver.

Everything is kept in memory behind one lock; :attr:`GitHubStandIn.requests` counts requests per path.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt

MAX_PER_PAGE = 100  # GitHub's cap on per_page
DEFAULT_PER_PAGE = 30
MAX_JWT_SECONDS = 600  # GitHub refuses an App JWT that lives longer than 10 minutes
CLOCK_SKEW_SECONDS = 60


@dataclass
class Delivery:
    """One attempt, as GitHub keeps it (with the request it sent, when the test gave one)."""

    id: int
    guid: str
    delivered_at: float
    redelivery: bool
    status_code: int
    status: str
    event: str
    action: str | None
    request_body: bytes | None = None
    request_headers: dict[str, str] | None = None

    def item(self) -> dict[str, Any]:
        """The item ``GET …/deliveries`` lists."""
        return {
            "id": self.id,
            "guid": self.guid,
            "delivered_at": datetime.fromtimestamp(self.delivered_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "redelivery": self.redelivery,
            "duration": 0.27,
            "status": self.status,
            "status_code": self.status_code,
            "event": self.event,
            "action": self.action,
            "installation_id": None,
            "repository_id": 702345678,
            "throttled_at": None,
        }


def status_text(status_code: int) -> str:
    """GitHub's ``status`` for an answer (0: nothing answered)."""
    if status_code == 0:
        return "failed to connect"
    return "OK" if 200 <= status_code < 300 else f"Invalid HTTP Response: {status_code}"


class Fault(Enum):
    RATE_LIMIT = "rate_limit"  # 403, x-ratelimit-remaining: 0, reset a second ahead
    SECONDARY = "secondary"  # 403 with retry-after: 1
    TOO_MANY = "too_many"  # 429 with retry-after: 1
    BROKEN = "broken"  # 502


@dataclass
class ScriptedFault:
    fault: Fault
    method: str | None
    path: str | None
    reset_in: float = 1.0


@dataclass(frozen=True, slots=True)
class Redelivered:
    """What a ``POST …/attempts`` asked for."""

    hook: str
    delivery_id: int
    guid: str


@dataclass
class Received:
    """One request, as the stand-in saw it."""

    method: str
    path: str
    query: dict[str, list[str]]
    authorization: str
    answered: int = 0
    claims: dict[str, Any] = field(default_factory=dict)


class GitHubStandIn:
    """GitHub's deliveries endpoints on 127.0.0.1 (``with GitHubStandIn(...) as github:``)."""

    def __init__(
        self,
        *,
        token: str,
        app_id: str,
        app_public_key: Any,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.token = token
        self.app_id = app_id
        self.app_public_key = app_public_key
        self.clock = clock  # for x-ratelimit-reset only: JWTs are checked against the real time, as GitHub does
        self.hooks: dict[str, list[Delivery]] = {}  # oldest first
        self.requests: Counter[str] = Counter()  # per path
        self.received: list[Received] = []
        self.redelivered: list[Redelivered] = []
        self.outcomes: dict[str, list[int]] = {}  # guid -> status codes of its next redeliveries
        self.forward_to: str | None = None  # a receiver URL: redeliveries re-post the original request
        self.faults: list[ScriptedFault] = []
        self._ids = itertools.count(10_000_000_001)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="github-standin", daemon=True
        )

    # The test's side ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> GitHubStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def hook(self, spec: str) -> str:
        """The path prefix of a hook spec (``repos/o/r/hooks/1``, ``orgs/o/hooks/2``, ``app``); creates it."""
        path = "/app/hook" if spec == "app" else "/" + spec
        with self._lock:
            self.hooks.setdefault(path, [])
        return path

    def deliver(
        self,
        spec: str,
        status_code: int = 200,
        *,
        guid: str | None = None,
        age: float = 60.0,
        event: str = "push",
        action: str | None = None,
        redelivery: bool = False,
        status: str | None = None,
    ) -> Delivery:
        """Record an attempt made ``age`` seconds ago (attempts must be added oldest first)."""
        path = self.hook(spec)
        with self._lock:
            delivery = Delivery(
                id=next(self._ids),
                guid=guid or str(uuid.uuid4()),
                delivered_at=time.time() - age,
                redelivery=redelivery,
                status_code=status_code,
                status=status or status_text(status_code),
                event=event,
                action=action,
            )
            self.hooks[path].append(delivery)
        return delivery

    def post_to_receiver(self, spec: str, url: str, body: bytes, headers: Mapping[str, str]) -> Delivery:
        """Really deliver ``body`` to a receiver, as GitHub does, and record the attempt with its answer."""
        status_code = _post(url, body, headers)
        delivery = self.deliver(
            spec, status_code, guid=headers["x-github-delivery"], age=0.0, event=headers["x-github-event"]
        )
        delivery.request_body, delivery.request_headers = body, dict(headers)
        return delivery

    def script(self, guid: str, *status_codes: int) -> None:
        """The outcomes of the next redeliveries of ``guid`` (afterwards: success, or the receiver's answer)."""
        self.outcomes.setdefault(guid, []).extend(status_codes)

    def fail_next(
        self, fault: Fault, *, method: str | None = None, path: str | None = None, reset_in: float = 1.0
    ) -> None:
        """Answer the next request (of ``method``, whose path contains ``path``) with ``fault``, once."""
        self.faults.append(ScriptedFault(fault, method, path, reset_in))

    def attempts(self, guid: str) -> list[Delivery]:
        """Every attempt of ``guid``, oldest first."""
        return [d for deliveries in self.hooks.values() for d in deliveries if d.guid == guid]

    def count(self, method: str, suffix: str = "") -> int:
        """How many ``method`` requests reached a path ending with ``suffix``."""
        return sum(1 for r in self.received if r.method == method and r.path.endswith(suffix))

    def reset_counts(self) -> None:
        self.requests.clear()
        self.received.clear()

    # The server's side -------------------------------------------------------------------------

    def answer(self, method: str, target: str, headers: Mapping[str, str]) -> tuple[int, dict[str, str], Any]:
        split = urlsplit(target)
        path, query = split.path, parse_qs(split.query)
        received = Received(method, path, query, headers.get("authorization", ""))
        with self._lock:
            self.requests[path] += 1
            self.received.append(received)
        status, extra, body = self._route(method, path, query, headers, received)
        received.answered = status
        return status, extra, body

    def _route(
        self, method: str, path: str, query: dict[str, list[str]], headers: Mapping[str, str], received: Received
    ) -> tuple[int, dict[str, str], Any]:
        hook_path, _, rest = path.partition("/deliveries")
        if hook_path not in self.hooks:
            return 404, {}, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}
        refusal = self._authenticate(hook_path, headers, received)
        if refusal is not None:
            return refusal
        fault = self._take_fault(method, path)
        if fault is not None:
            return self._fault_answer(fault)
        if method == "GET" and rest == "":
            return self._list(hook_path, query)
        parts = rest.strip("/").split("/")
        if method == "POST" and len(parts) == 2 and parts[0].isdigit() and parts[1] == "attempts":
            return self._redeliver(hook_path, int(parts[0]))
        return 404, {}, {"message": "Not Found"}

    def _authenticate(
        self, hook_path: str, headers: Mapping[str, str], received: Received
    ) -> tuple[int, dict[str, str], Any] | None:
        scheme, _, credential = headers.get("authorization", "").partition(" ")
        bad = (401, {}, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"})
        if hook_path == "/app/hook":
            if scheme.lower() != "bearer":
                # An installation or personal token does not work here: GitHub wants the App's JWT.
                return 401, {}, {"message": "A JSON web token could not be decoded"}
            try:
                claims = jwt.decode(
                    credential,
                    self.app_public_key,
                    algorithms=["RS256"],
                    options={"require": ["iat", "exp", "iss"]},
                    leeway=CLOCK_SKEW_SECONDS,
                )
            except jwt.PyJWTError:
                return 401, {}, {"message": "A JSON web token could not be decoded"}
            if str(claims["iss"]) != self.app_id:
                return bad
            if claims["exp"] - claims["iat"] > MAX_JWT_SECONDS or claims["exp"] > time.time() + MAX_JWT_SECONDS:
                return 401, {}, {"message": "'Expiration time' claim ('exp') is too far in the future"}
            received.claims = claims
            return None
        if scheme.lower() != "token" or credential != self.token:
            return bad
        return None

    def _take_fault(self, method: str, path: str) -> ScriptedFault | None:
        with self._lock:
            for fault in self.faults:
                if (fault.method is None or fault.method == method) and (fault.path is None or fault.path in path):
                    self.faults.remove(fault)
                    return fault
        return None

    def _fault_answer(self, fault: ScriptedFault) -> tuple[int, dict[str, str], Any]:
        if fault.fault is Fault.RATE_LIMIT:
            headers = {
                "x-ratelimit-limit": "5000",
                "x-ratelimit-remaining": "0",
                "x-ratelimit-used": "5000",
                "x-ratelimit-reset": str(int(self.clock() + fault.reset_in)),
                "x-ratelimit-resource": "core",
            }
            return 403, headers, {"message": "API rate limit exceeded for user ID 1."}
        if fault.fault is Fault.SECONDARY:
            headers = {"retry-after": "1", "x-ratelimit-limit": "5000", "x-ratelimit-remaining": "4990"}
            return 403, headers, {"message": "You have exceeded a secondary rate limit. Please wait a few minutes."}
        if fault.fault is Fault.TOO_MANY:
            return 429, {"retry-after": "1"}, {"message": "Too many requests"}
        return 502, {}, {"message": "Server Error"}

    def _list(self, hook_path: str, query: dict[str, list[str]]) -> tuple[int, dict[str, str], Any]:
        try:
            per_page = min(int(query.get("per_page", [DEFAULT_PER_PAGE])[0]), MAX_PER_PAGE)
        except ValueError:
            return 400, {}, {"message": "per_page must be an integer"}
        cursor = query.get("cursor", [None])[0]
        with self._lock:
            newest_first = sorted(self.hooks[hook_path], key=lambda d: d.id, reverse=True)
        if cursor is not None:
            # An opaque cursor to the client; here, the id of the last item of the previous page.
            if not cursor.startswith("v1_") or not cursor[3:].isdigit():
                return 400, {}, {"message": "Invalid cursor"}
            newest_first = [d for d in newest_first if d.id < int(cursor[3:])]
        page, rest = newest_first[:per_page], newest_first[per_page:]
        headers = {"x-ratelimit-limit": "5000", "x-ratelimit-remaining": "4999", "x-ratelimit-reset": "1900000000"}
        if rest:
            after = f"{self.url}{hook_path}/deliveries?per_page={per_page}&cursor=v1_{page[-1].id}"
            headers["link"] = f'<{after}>; rel="next"'
        return 200, headers, [d.item() for d in page]

    def _redeliver(self, hook_path: str, delivery_id: int) -> tuple[int, dict[str, str], Any]:
        with self._lock:
            original = next((d for d in self.hooks[hook_path] if d.id == delivery_id), None)
            if original is None:
                return 404, {}, {"message": "Not Found"}
            self.redelivered.append(Redelivered(hook_path, delivery_id, original.guid))
            scripted = self.outcomes.get(original.guid)
            status_code = scripted.pop(0) if scripted else None
            # GitHub keeps the request it sent first: every redelivery sends the same body and headers.
            first = next(
                (d for d in self.hooks[hook_path] if d.guid == original.guid and d.request_body is not None), None
            )
        if status_code is None:
            if self.forward_to is not None and first is not None:
                assert first.request_headers is not None
                status_code = _post(self.forward_to, first.request_body or b"", first.request_headers)
            else:
                status_code = 200
        with self._lock:
            self.hooks[hook_path].append(
                Delivery(
                    id=next(self._ids),
                    guid=original.guid,
                    delivered_at=time.time(),
                    redelivery=True,
                    status_code=status_code,
                    status=status_text(status_code),
                    event=original.event,
                    action=original.action,
                )
            )
        return 202, {}, {}


def _post(url: str, body: bytes, headers: Mapping[str, str]) -> int:
    """Deliver as GitHub does: the answer's status, 0 when nothing answered."""
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")  # noqa: S310 (loopback)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (loopback)
            return response.status
    except urllib.error.HTTPError as error:
        with error:
            return error.code
    except (urllib.error.URLError, OSError):
        return 0


def _handler_for(github: GitHubStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            if length:
                self.rfile.read(length)
            headers = {name.lower(): value for name, value in self.headers.items()}
            status, extra, body = github.answer(self.command, self.path, headers)
            content = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json; charset=utf-8")
            self.send_header("content-length", str(len(content)))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(content)

        do_GET = do_POST = _serve

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


def attempts_of(deliveries: Iterable[Delivery]) -> list[tuple[int, bool]]:
    """(status_code, redelivery) of each attempt, oldest first: what a test asserts about a guid."""
    return [(d.status_code, d.redelivery) for d in deliveries]
