"""A stand-in for GitHub's webhook deliveries API on loopback, for the redelivery tests.

It models what the redelivery function relies on (FACTS.md, "GitHub's deliveries API"):
- per hook (``/repos/O/R/hooks/ID``, ``/orgs/O/hooks/ID``, ``/app/hook``) a list of delivery attempts,
  listed newest first by ``GET …/deliveries?per_page=N&cursor=C``, pages chained by a ``Link`` header;
- authentication: ``token <TOKEN>`` for repository and organization hooks, ``bearer <JWT>`` for the
  App's hook, the JWT verified as GitHub does (RS256 with the App's public key, ``iss`` the App id,
  at most 10 minutes between ``iat`` and ``exp``, ``iat`` not in the future);
- ``GET …/deliveries/{id}``: the attempt's full record (``request`` and ``response``, headers and payload);
- scripted faults, each answered once: a primary rate limit (403, ``x-ratelimit-remaining: 0``), a
  secondary one (403 or 429 with ``retry-after``), a 502, a 5xx with an HTML page, an answer given
  byte for byte, an answer dripped a byte at a time;
- ``POST …/deliveries/{id}/attempts``: 202, recorded, and a new attempt (``redelivery: true``, same
  guid) whose outcome the test scripts, or which really re-posts the original request to a receiver;
  or, for an attempt the test says so (:meth:`GitHubStandIn.refuse`), a refusal every time.

Hooks themselves, for `webhook connect` and `rotate-secret`: ``GET``/``POST …/hooks`` (a repository's or
an organization's), ``GET``/``PATCH …/hooks/{id}`` and ``…/hooks/{id}/config``, ``POST …/hooks/{id}/pings``
(a ping signed with the hook's secret and really posted to its URL, recorded as a delivery: GitHub's
answer is 204 before the ping is sent; here it is sent first), and the App's ``GET``/``PATCH
/app/hook/config`` (with the App's JWT). The secret is never returned (``********``), as GitHub does.

Opt-in, for robustness tests and drills: rate limits enforced on :attr:`GitHubStandIn.clock` (a primary
limit per credential and hour, GitHub's secondary limits on POSTs), malformed list items, a ``Link``
header that loops, and dates from the clock (``dates_from_clock``) for a drill on a virtual clock.

Everything is kept in memory behind one lock; :attr:`GitHubStandIn.requests` counts requests per path.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import ssl
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter, deque
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
HTML_PAGE = (
    b"<!DOCTYPE html><html><head><title>Unicorn!</title></head><body><p>No server is available.</p></body></html>"
)


@dataclass
class Delivery:
    """One attempt, as GitHub keeps it (with the request it sent and the answer, when the test gave them)."""

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
    payload: dict[str, Any] | None = None  # the request's payload, as GitHub shows it (None: not kept)
    response_headers: dict[str, str] | None = None
    response_body: str = ""
    raw: Any = None  # listed as is instead of item() (a malformed item: see GitHubStandIn.inject)
    is_raw: bool = False

    def item(self) -> Any:
        """The item ``GET …/deliveries`` lists."""
        if self.is_raw:
            return self.raw
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

    def record(self) -> dict[str, Any]:
        """What ``GET …/deliveries/{id}`` answers: the item, the target URL, the request and the response."""
        return {
            **self.item(),
            "url": "https://receiver.example/webhook",
            "request": {"headers": dict(self.request_headers or {}), "payload": self.payload},
            "response": {"headers": dict(self.response_headers or {}), "payload": self.response_body},
        }


def status_text(status_code: int) -> str:
    """GitHub's ``status`` for an answer (0: nothing answered)."""
    if status_code == 0:
        return "failed to connect"
    return "OK" if 200 <= status_code < 300 else f"Invalid HTTP Response: {status_code}"


def malformed_items(item: Mapping[str, Any]) -> dict[str, Any]:
    """Variants of a valid list item that GitHub should never send, by name (for :meth:`GitHubStandIn.inject`)."""

    def without(key: str) -> dict[str, Any]:
        return {name: value for name, value in item.items() if name != key}

    def replaced(key: str, value: Any) -> dict[str, Any]:
        return {**item, key: value}

    return {
        "no delivered_at": without("delivered_at"),
        "delivered_at a number": replaced("delivered_at", 1_795_000_000),
        "delivered_at not a date": replaced("delivered_at", "yesterday"),
        "delivered_at null": replaced("delivered_at", None),
        "no status_code": without("status_code"),
        "status_code text": replaced("status_code", "503"),
        "status_code null": replaced("status_code", None),
        "status_code a bool": replaced("status_code", True),
        "no id": without("id"),
        "id text": replaced("id", str(item.get("id"))),
        "id a path": replaced("id", "1/../../../hooks"),
        "id a float": replaced("id", 1.5),
        "id negative": replaced("id", -1),
        "no guid": without("guid"),
        "guid a number": replaced("guid", 12345),
        "redelivery text": replaced("redelivery", "false"),
        "not an object": "a string",
        "null": None,
    }


class Fault(Enum):
    RATE_LIMIT = "rate_limit"  # 403, x-ratelimit-remaining: 0, reset a second ahead
    SECONDARY = "secondary"  # 403 with retry-after: 1
    TOO_MANY = "too_many"  # 429 with retry-after: 1
    BROKEN = "broken"  # 502
    HTML = "html"  # `status` (default 502; 520, 599…) with an HTML page, as a proxy in front of GitHub answers
    RAW = "raw"  # exactly `status`, `headers` and `body` (bytes), e.g. garbage rate-limit headers
    DRIP = "drip"  # 200 and its headers, then one byte of the body every `every` seconds for `seconds`


@dataclass
class ScriptedFault:
    fault: Fault
    method: str | None
    path: str | None
    reset_in: float = 1.0
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    every: float = 0.5
    seconds: float = 60.0


@dataclass
class Webhook:
    """A hook as GitHub keeps it: its config holds the secret, which no answer ever shows."""

    id: int
    owner: str  # "/repos/o/r", "/orgs/o" or "/app"
    config: dict[str, str]
    events: list[str]
    active: bool = True

    @property
    def path(self) -> str:
        return "/app/hook" if self.owner == "/app" else f"{self.owner}/hooks/{self.id}"

    def shown(self) -> dict[str, Any]:
        config = {key: ("********" if key == "secret" else value) for key, value in self.config.items()}
        return {
            "type": "Repository" if self.owner.startswith("/repos") else "Organization",
            "id": self.id,
            "name": "web",
            "active": self.active,
            "events": self.events,
            "config": config,
        }


_OWNER = r"/(?:repos/[^/]+/[^/]+|orgs/[^/]+)"
_HOOKS = re.compile(rf"(?P<owner>{_OWNER})/hooks")
_HOOK = re.compile(rf"(?P<owner>{_OWNER})/hooks/(?P<id>\d+)(?P<rest>/config|/pings)?")
_APP_CONFIG = "/app/hook/config"


@dataclass(frozen=True, slots=True)
class Drip:
    """A body the server sends one byte every ``every`` seconds."""

    every: float
    size: int


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
    at: float = 0.0  # on the stand-in's clock


@dataclass
class RateLimits:
    """GitHub's limits, enforced per credential (``token`` or ``app``) on the stand-in's clock."""

    per_hour: int = 5000  # the primary limit (5,000 for a personal token)
    status: int = 403  # GitHub answers a spent primary limit 403 or 429
    posts_per_minute: int = 80  # secondary limits on content-creating requests
    posts_per_hour: int = 500
    windows: dict[str, tuple[float, int]] = field(default_factory=dict)  # credential -> (start, used)
    posts: dict[str, deque[float]] = field(default_factory=dict)  # credential -> when its POSTs were answered


class GitHubStandIn:
    """GitHub's deliveries endpoints on 127.0.0.1 (``with GitHubStandIn(...) as github:``)."""

    def __init__(
        self,
        *,
        token: str,
        app_id: str,
        app_public_key: Any,
        clock: Callable[[], float] = time.time,
        dates_from_clock: bool = False,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.token = token
        self.app_id = app_id
        self.app_public_key = app_public_key
        # For x-ratelimit-reset and enforced rate limits (and delivered_at with dates_from_clock): JWTs
        # are checked against the real time, as GitHub does.
        self.clock = clock
        self.dates_from_clock = dates_from_clock
        self.hooks: dict[str, list[Delivery]] = {}  # oldest first
        self.requests: Counter[str] = Counter()  # per path
        self.received: list[Received] = []
        self.redelivered: list[Redelivered] = []
        self.outcomes: dict[str, list[int]] = {}  # guid -> status codes of its next redeliveries
        self.forward_to: str | None = None  # a receiver URL: redeliveries re-post the original request
        self.faults: list[ScriptedFault] = []
        self.refusals: dict[int | str, tuple[int, str]] = {}  # delivery id or guid -> (status, message)
        self.looping: set[str] = set()  # hook paths whose Link header loops
        self.limits: RateLimits | None = None
        self.webhooks: dict[str, Webhook] = {}  # hook path -> the hook
        self.pings: list[Delivery] = []
        self._hook_ids = itertools.count(400_000_001)
        self._ids = itertools.count(10_000_000_001)
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._scheme = "http"
        if tls is not None:  # https, with a server context (tests.loopback.self_signed_tls)
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
            self._scheme = "https"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="github-standin", daemon=True
        )

    # The test's side ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"{self._scheme}://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> GitHubStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()  # ends any drip
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def now(self) -> float:
        """The time deliveries are dated with: the real time, or the clock with ``dates_from_clock``."""
        return self.clock() if self.dates_from_clock else time.time()

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
        at: float | None = None,
        event: str = "push",
        action: str | None = None,
        redelivery: bool = False,
        status: str | None = None,
        request_headers: Mapping[str, str] | None = None,
        payload: Mapping[str, Any] | None = None,
        response_headers: Mapping[str, str] | None = None,
        response_body: str = "",
    ) -> Delivery:
        """Record an attempt made ``age`` seconds ago, or ``at`` (attempts must be added oldest first).
        ``request_headers``, ``payload`` and the response are what ``GET …/deliveries/{id}`` shows."""
        path = self.hook(spec)
        with self._lock:
            delivery = Delivery(
                id=next(self._ids),
                guid=guid or str(uuid.uuid4()),
                delivered_at=self.now() - age if at is None else at,
                redelivery=redelivery,
                status_code=status_code,
                status=status or status_text(status_code),
                event=event,
                action=action,
                request_headers=dict(request_headers) if request_headers is not None else None,
                payload=dict(payload) if payload is not None else None,
                response_headers=dict(response_headers) if response_headers is not None else None,
                response_body=response_body,
            )
            self.hooks[path].append(delivery)
        return delivery

    def post_to_receiver(self, spec: str, url: str, body: bytes, headers: Mapping[str, str]) -> Delivery:
        """Really deliver ``body`` to a receiver, as GitHub does, and record the attempt with its request
        and the receiver's answer."""
        status_code, answer_headers, answer_body = _post(url, body, headers)
        delivery = self.deliver(
            spec,
            status_code,
            guid=headers["x-github-delivery"],
            age=0.0,
            event=headers["x-github-event"],
            request_headers=headers,
            payload=_payload(body),
            response_headers=answer_headers,
            response_body=answer_body,
        )
        delivery.request_body = body
        return delivery

    def script(self, guid: str, *status_codes: int) -> None:
        """The outcomes of the next redeliveries of ``guid`` (afterwards: success, or the receiver's answer)."""
        self.outcomes.setdefault(guid, []).extend(status_codes)

    def fail_next(
        self,
        fault: Fault,
        *,
        method: str | None = None,
        path: str | None = None,
        reset_in: float = 1.0,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
        every: float = 0.5,
        seconds: float = 60.0,
    ) -> None:
        """Answer the next request (of ``method``, whose path contains ``path``) with ``fault``, once.
        ``status`` for HTML and RAW, ``headers`` and ``body`` for RAW, ``every`` and ``seconds`` for DRIP."""
        self.faults.append(
            ScriptedFault(fault, method, path, reset_in, status, dict(headers or {}), body, every, seconds)
        )

    def refuse(self, key: int | str, status: int = 422, message: str = "This delivery cannot be redelivered") -> None:
        """Answer every ``POST …/attempts`` for the attempt ``key`` (its id, or its guid: all its attempts)
        with ``status`` (404, 410, 422…) and ``message``."""
        self.refusals[key] = (status, message)

    def loop_next(self, spec: str) -> None:
        """Make the hook's ``Link`` header loop: the first page links to a second, which links to itself."""
        self.looping.add(self.hook(spec))

    def inject(self, spec: str, *items: Any) -> None:
        """List ``items`` as they are (malformed ones: :func:`malformed_items`), as the newest attempts so far."""
        path = self.hook(spec)
        with self._lock:
            for raw in items:
                guid = raw.get("guid") if isinstance(raw, Mapping) else None
                guid = guid if isinstance(guid, str) else ""
                entry = Delivery(next(self._ids), guid, self.now(), False, 0, "", "", None, raw=raw, is_raw=True)
                self.hooks[path].append(entry)

    def enforce_rate_limits(
        self, *, per_hour: int = 5000, status: int = 403, posts_per_minute: int = 80, posts_per_hour: int = 500
    ) -> None:
        """Enforce GitHub's rate limits per credential on :attr:`clock`: ``per_hour`` requests an hour
        (the window starts at the first request), with ``x-ratelimit-*`` headers on every answer and
        ``status`` with ``x-ratelimit-remaining: 0`` once spent; POSTs at most ``posts_per_minute`` a
        minute and ``posts_per_hour`` an hour, else 403 with ``retry-after``."""
        self.limits = RateLimits(per_hour, status, posts_per_minute, posts_per_hour)

    def attempts(self, guid: str) -> list[Delivery]:
        """Every attempt of ``guid``, oldest first."""
        return [d for deliveries in self.hooks.values() for d in deliveries if d.guid == guid and not d.is_raw]

    def count(self, method: str, suffix: str = "") -> int:
        """How many ``method`` requests reached a path ending with ``suffix``."""
        return sum(1 for r in self.received if r.method == method and r.path.endswith(suffix))

    def reset_counts(self) -> None:
        self.requests.clear()
        self.received.clear()

    # The server's side -------------------------------------------------------------------------

    def app_hook(self, url: str, secret: str, content_type: str = "json") -> Webhook:
        """The App's own hook (GitHub creates it with the App): what ``PATCH /app/hook/config`` changes."""
        hook = Webhook(0, "/app", {"url": url, "content_type": content_type, "insecure_ssl": "0", "secret": secret}, [])
        with self._lock:
            self.webhooks[hook.path] = hook
            self.hooks.setdefault(hook.path, [])
        return hook

    def secret_of(self, path: str) -> str:
        """What the hook at ``path`` signs with now (the test's view; GitHub never shows it)."""
        return self.webhooks[path].config.get("secret", "")

    def answer(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes = b""
    ) -> tuple[int, dict[str, str], Any]:
        split = urlsplit(target)
        path, query = split.path, parse_qs(split.query)
        received = Received(method, path, query, headers.get("authorization", ""), at=self.clock())
        with self._lock:
            self.requests[path] += 1
            self.received.append(received)
        managed = self._manage(method, path, headers, body, received)
        if managed is not None:
            received.answered = managed[0]
            return managed
        status, extra, body = self._route(method, path, query, headers, received)
        received.answered = status
        return status, extra, body

    def _manage(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes, received: Received
    ) -> tuple[int, dict[str, str], Any] | None:
        """The hooks' own endpoints, or None for a path that is not one of them."""
        hooks, hook = _HOOKS.fullmatch(path), _HOOK.fullmatch(path)
        if not (hooks or hook or path == _APP_CONFIG):
            return None
        refusal = self._authenticate("/app/hook" if path == _APP_CONFIG else path, headers, received)
        if refusal is not None:
            return refusal
        fault = self._take_fault(method, path)
        if fault is not None:
            return self._fault_answer(fault)
        try:
            sent = json.loads(body) if body else {}
        except ValueError:
            return 400, {}, {"message": "Problems parsing JSON"}
        if path == _APP_CONFIG:
            app = self.webhooks.get("/app/hook")
            if app is None:
                return 404, {}, {"message": "Not Found"}
            return self._config(app, method, sent)
        if hooks:
            owner = hooks["owner"]
            if method == "GET":
                with self._lock:
                    return 200, {}, [h.shown() for h in self.webhooks.values() if h.owner == owner]
            if method == "POST":
                return self._create(owner, sent)
            return 404, {}, {"message": "Not Found"}
        assert hook is not None
        found = self.webhooks.get(f"{hook['owner']}/hooks/{hook['id']}")
        if found is None:
            return 404, {}, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}
        if hook["rest"] == "/config":
            return self._config(found, method, sent)
        if hook["rest"] == "/pings":
            if method != "POST":
                return 404, {}, {"message": "Not Found"}
            self._ping(found)
            return 204, {}, b""
        if method == "GET":
            return 200, {}, found.shown()
        if method == "PATCH":
            with self._lock:
                found.config.update({k: str(v) for k, v in sent.get("config", {}).items()})
                found.events = list(sent.get("events", found.events))
                found.active = bool(sent.get("active", found.active))
            return 200, {}, found.shown()
        return 404, {}, {"message": "Not Found"}

    def _create(self, owner: str, sent: Mapping[str, Any]) -> tuple[int, dict[str, str], Any]:
        config = sent.get("config")
        if sent.get("name", "web") != "web" or not isinstance(config, dict) or not config.get("url"):
            return 422, {}, {"message": "Validation Failed", "errors": [{"resource": "Hook", "code": "custom"}]}
        with self._lock:
            if any(h.owner == owner and h.config.get("url") == config["url"] for h in self.webhooks.values()):
                return (
                    422,
                    {},
                    {"message": "Validation Failed", "errors": [{"message": "Hook already exists on this repository"}]},
                )
            hook = Webhook(
                next(self._hook_ids),
                owner,
                {k: str(v) for k, v in config.items()},
                list(sent.get("events", ["push"])),
                bool(sent.get("active", True)),
            )
            self.webhooks[hook.path] = hook
            self.hooks.setdefault(hook.path, [])
        self._ping(hook)  # GitHub pings a new hook
        return 201, {}, hook.shown()

    def _config(self, hook: Webhook, method: str, sent: Mapping[str, Any]) -> tuple[int, dict[str, str], Any]:
        if method == "PATCH":
            with self._lock:
                hook.config.update({k: str(v) for k, v in sent.items()})
        elif method != "GET":
            return 404, {}, {"message": "Not Found"}
        return 200, {}, hook.shown()["config"]

    def send_event(self, path: str, event: str = "push") -> Delivery:
        """GitHub sending ``event`` through the hook at ``path``: signed with the secret it has now."""
        from devkit.github import github_headers, sample_payload

        hook = self.webhooks[path]
        body = json.dumps(sample_payload(event)).encode()
        headers = github_headers(event, body, secret=hook.config.get("secret") or None, hook_id=str(hook.id))
        spec = "app" if hook.owner == "/app" else hook.path.removeprefix("/")
        return self.post_to_receiver(spec, hook.config["url"], body, headers)

    def _ping(self, hook: Webhook) -> Delivery:
        """A ping, signed with the hook's secret, posted to its URL; recorded as a delivery of the hook."""
        from devkit.github import github_headers

        body = json.dumps({"zen": "Keep it logically awesome.", "hook_id": hook.id, "hook": hook.shown()}).encode()
        secret = hook.config.get("secret") or None
        headers = github_headers("ping", body, secret=secret, hook_id=str(hook.id))
        delivery = self.post_to_receiver(
            hook.path.removeprefix("/") if hook.owner != "/app" else "app", hook.config["url"], body, headers
        )
        self.pings.append(delivery)
        return delivery

    def _route(
        self, method: str, path: str, query: dict[str, list[str]], headers: Mapping[str, str], received: Received
    ) -> tuple[int, dict[str, str], Any]:
        hook_path, _, rest = path.partition("/deliveries")
        if hook_path not in self.hooks:
            return 404, {}, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}
        refusal = self._authenticate(hook_path, headers, received)
        if refusal is not None:
            return refusal
        credential = "app" if hook_path == "/app/hook" else "token"
        limited, limit_headers = self._rate_limit(credential, method)
        if limited is not None:
            return limited
        status, extra, body = self._serve(method, hook_path, rest, query)
        return status, {**limit_headers, **extra}, body

    def _serve(
        self, method: str, hook_path: str, rest: str, query: dict[str, list[str]]
    ) -> tuple[int, dict[str, str], Any]:
        fault = self._take_fault(method, hook_path + "/deliveries" + rest)
        if fault is not None:
            return self._fault_answer(fault)
        if method == "GET" and rest == "":
            return self._list(hook_path, query)
        parts = rest.strip("/").split("/")
        if method == "GET" and len(parts) == 1 and parts[0].isdigit():
            return self._record(hook_path, int(parts[0]))
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

    def _rate_limit(
        self, credential: str, method: str
    ) -> tuple[tuple[int, dict[str, str], Any] | None, dict[str, str]]:
        """With limits enforced: a refusal when a limit is spent (else None), and the x-ratelimit-* headers."""
        limits = self.limits
        if limits is None:
            return None, {}
        now = self.clock()
        with self._lock:
            start, used = limits.windows.get(credential, (now, 0))
            if now >= start + 3600:
                start, used = now, 0
            reset = str(math.ceil(start + 3600))
            if used >= limits.per_hour:
                headers = _limit_headers(limits.per_hour, used, reset)
                message = f"API rate limit exceeded for {credential}."
                return (limits.status, headers, {"message": message}), headers
            if method == "POST":
                posts = limits.posts.setdefault(credential, deque())
                while posts and posts[0] <= now - 3600:
                    posts.popleft()
                last_minute = [t for t in posts if t > now - 60]
                wait = None
                if len(last_minute) >= limits.posts_per_minute:
                    wait = last_minute[0] + 60 - now
                elif len(posts) >= limits.posts_per_hour:
                    wait = posts[0] + 3600 - now
                if wait is not None:
                    headers = {
                        **_limit_headers(limits.per_hour, used, reset),
                        "retry-after": str(max(1, math.ceil(wait))),
                    }
                    message = (
                        "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
                    )
                    return (403, headers, {"message": message}), headers
                posts.append(now)
            used += 1
            limits.windows[credential] = (start, used)
        return None, _limit_headers(limits.per_hour, used, reset)

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
        if fault.fault is Fault.HTML:
            return fault.status or 502, {"content-type": "text/html; charset=utf-8"}, HTML_PAGE
        if fault.fault is Fault.RAW:
            return fault.status or 200, fault.headers, fault.body
        if fault.fault is Fault.DRIP:
            return 200, fault.headers, Drip(fault.every, max(1, int(fault.seconds / fault.every)))
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
        headers: dict[str, str] = {}
        if self.limits is None:  # enforced limits say what is left
            headers = {"x-ratelimit-limit": "5000", "x-ratelimit-remaining": "4999", "x-ratelimit-reset": "1900000000"}
        after = f"{self.url}{hook_path}/deliveries?per_page={per_page}&cursor="
        if hook_path in self.looping and cursor is not None:
            headers["link"] = f'<{after}{cursor}>; rel="next"'  # this page again, and again
        elif rest or (hook_path in self.looping and page):
            headers["link"] = f'<{after}v1_{page[-1].id}>; rel="next"'
        return 200, headers, [d.item() for d in page]

    def _record(self, hook_path: str, delivery_id: int) -> tuple[int, dict[str, str], Any]:
        with self._lock:
            delivery = next((d for d in self.hooks[hook_path] if d.id == delivery_id and not d.is_raw), None)
        if delivery is None:
            return 404, {}, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}
        return 200, {}, delivery.record()

    def _redeliver(self, hook_path: str, delivery_id: int) -> tuple[int, dict[str, str], Any]:
        with self._lock:
            original = next((d for d in self.hooks[hook_path] if d.id == delivery_id and not d.is_raw), None)
            if original is None:
                return 404, {}, {"message": "Not Found"}
            refusal = self.refusals.get(delivery_id) or self.refusals.get(original.guid)
            if refusal is not None:
                return refusal[0], {}, {"message": refusal[1], "documentation_url": "https://docs.github.com/rest"}
            self.redelivered.append(Redelivered(hook_path, delivery_id, original.guid))
            scripted = self.outcomes.get(original.guid)
            status_code = scripted.pop(0) if scripted else None
            # GitHub keeps the request it sent first: every redelivery sends the same body and headers.
            same = [d for d in self.hooks[hook_path] if d.guid == original.guid and not d.is_raw]
            first = next((d for d in same if d.request_body is not None), None)
            shown = next((d for d in same if d.request_headers is not None), original)
        answer_headers: dict[str, str] = {}
        answer_body = ""
        if status_code is None:
            if self.forward_to is not None and first is not None:
                assert first.request_headers is not None
                status_code, answer_headers, answer_body = _post(
                    self.forward_to, first.request_body or b"", first.request_headers
                )
            else:
                status_code = 200
        with self._lock:
            self.hooks[hook_path].append(
                Delivery(
                    id=next(self._ids),
                    guid=original.guid,
                    delivered_at=self.now(),
                    redelivery=True,
                    status_code=status_code,
                    status=status_text(status_code),
                    event=original.event,
                    action=original.action,
                    request_headers=shown.request_headers,
                    payload=shown.payload,
                    response_headers=answer_headers,
                    response_body=answer_body,
                )
            )
        return 202, {}, {}


def _limit_headers(limit: int, used: int, reset: str) -> dict[str, str]:
    return {
        "x-ratelimit-limit": str(limit),
        "x-ratelimit-remaining": str(max(0, limit - used)),
        "x-ratelimit-used": str(used),
        "x-ratelimit-reset": reset,
        "x-ratelimit-resource": "core",
    }


def _payload(body: bytes) -> dict[str, Any] | None:
    """The payload GitHub shows for a delivery it sent: the JSON object (form-encoded: its ``payload`` field)."""
    try:
        text = body.decode()
        form = parse_qs(text).get("payload")
        data = json.loads(form[0] if form else text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _post(url: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, dict[str, str], str]:
    """Deliver as GitHub does: the answer's status (0 when nothing answered), headers and body."""
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")  # noqa: S310 (loopback)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (loopback)
            return response.status, dict(response.headers.items()), response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers.items()), error.read().decode(errors="replace")
    except (urllib.error.URLError, OSError):
        return 0, {}, ""


def _handler_for(github: GitHubStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            sent = self.rfile.read(length) if length else b""
            headers = {name.lower(): value for name, value in self.headers.items()}
            status, extra, body = github.answer(self.command, self.path, headers, sent)
            if isinstance(body, Drip):
                self._drip(status, extra, body)
                return
            content = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            if "content-type" not in extra:
                self.send_header("content-type", "application/json; charset=utf-8")
            if "content-length" not in extra and "transfer-encoding" not in extra:
                self.send_header("content-length", str(len(content)))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(content)

        def _drip(self, status: int, extra: Mapping[str, str], drip: Drip) -> None:
            """The headers at once, then a JSON body (``[]`` after spaces) one byte every ``drip.every`` seconds."""
            self.close_connection = True
            content = b" " * (drip.size - 2) + b"[]"
            self.send_response(status)
            self.send_header("content-type", "application/json; charset=utf-8")
            self.send_header("content-length", str(len(content)))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            for byte in content:
                if github._closing.wait(drip.every):
                    return
                try:
                    self.wfile.write(bytes([byte]))
                except OSError:  # the client gave up
                    return

        do_GET = do_POST = do_PATCH = _serve

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


def attempts_of(deliveries: Iterable[Delivery]) -> list[tuple[int, bool]]:
    """(status_code, redelivery) of each attempt, oldest first: what a test asserts about a guid."""
    return [(d.status_code, d.redelivery) for d in deliveries]
