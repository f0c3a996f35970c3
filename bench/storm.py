"""A cold-start storm: N new containers at once, each reading the secret from an SSM that allows 40
GetParameter calls a second, as SSM's standard throughput does for a whole account and region.

``make bench`` runs it after bench.run (or ``.venv/bin/python -m bench.storm``, about 30 s). For N = 50
and 200 it counts the containers answered 202 within 9 s of the start (GitHub gives up at 10), with the
old retry policy (a throttle retried once, as any error) and the new one (retried with jittered back-off
while the request's budget allows), and prints them side by side.

What it models: every container is a process forked from one that has imported the receiver and built
its clients (Lambda's init, which each container runs on its own CPU, is not on the clock). At the
start every container invokes the real Lambda handler (template.yaml's 8 s budget, a 10 s Lambda
context) with a signed push of its own. SSM is a server on loopback with a token bucket of 40 calls,
full at the start and refilled at 40 a second, that answers ``ThrottlingException`` when it is empty
(a throttled call takes no token). A delivery is forwarded to an EventBridge stand-in that accepts it.

What it does not: Lambda's scaling (1,000 new environments every 10 s per function) and init time;
other callers of GetParameter in the account and region; SSM's real bucket size (not published) and
latency; the table and the archive (their calls would spend CPU that all containers share here, while
each has its own in Lambda); throttling elsewhere; a container serving a second delivery. The
containers share this machine's cores, so their first calls leave over a spread of time, printed with
the figures.
"""

from __future__ import annotations

import gc
import json
import multiprocessing
import os
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.connection import Connection
from typing import Any

REGION = "us-east-1"
SECRET = "storm-webhook-secret"  # noqa: S105 (only ever held by the emulators)
RATE = 40.0  # GetParameter calls a second (SSM standard throughput, per account and region)
BUCKET = 40.0  # calls allowed at once when none were made for a second
SIZES = (50, 200)
WINDOW = 9.0  # seconds: the receiver's bound (GitHub waits 10)
# Old: a throttle gets the one retry any other error gets. New: retried while the budget allows.
POLICIES = {"before": "one retry", "after": "back-off within the budget"}
SECRET_PARAMETER = "/github-webhook/storm/secret"  # noqa: S105 (a name)
WARM_PARAMETER = "/github-webhook/storm/warm-up"  # read by every container before the start, outside the bucket


class _Aws(BaseHTTPRequestHandler):
    """SSM's GetParameter (JSON 1.1) behind the token bucket, each limited call logged as (time, answered),
    and EventBridge's PutEvents, accepted."""

    protocol_version = "HTTP/1.1"  # keep-alive, as botocore expects
    disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms delayed-ACK stall
    lock = threading.Lock()
    tokens = BUCKET
    refilled = 0.0
    calls: list[tuple[float, bool]] = []  # noqa: RUF012 (the one server's state)

    @classmethod
    def reset(cls) -> list[tuple[float, bool]]:
        with cls.lock:
            calls, cls.calls, cls.tokens, cls.refilled = cls.calls, [], BUCKET, time.monotonic()
        return calls

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers["content-length"])))
        target = self.headers.get("x-amz-target")
        if target == "AWSEvents.PutEvents":
            self._answer(200, {"FailedEntryCount": 0, "Entries": [{"EventId": "storm"}]})
        elif target != "AmazonSSM.GetParameter":
            self._answer(400, {"__type": "UnknownOperationException", "message": str(target)})
        elif request["Name"] == WARM_PARAMETER or self._token():
            parameter = {"Name": request["Name"], "Type": "SecureString", "Value": SECRET, "Version": 1}
            self._answer(200, {"Parameter": parameter})
        else:
            self._answer(400, {"__type": "ThrottlingException", "message": "Rate exceeded"})

    def _token(self) -> bool:
        cls, now = type(self), time.monotonic()
        with cls.lock:
            cls.tokens = min(BUCKET, cls.tokens + (now - cls.refilled) * RATE)
            cls.refilled = now
            answered = cls.tokens >= 1
            cls.tokens -= answered
            cls.calls.append((now, answered))
        return answered

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/x-amz-json-1.1")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_: Any) -> None:
        pass


def _serve(conn: Connection) -> None:
    """The emulator, in its own process: its answers do not wait for the containers' CPU."""
    ThreadingHTTPServer.request_queue_size = 1024  # every container connects at once
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Aws)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    conn.send(f"http://127.0.0.1:{server.server_port}")
    while conn.recv() == "reset":  # anything else: stop
        conn.send(_Aws.reset())


def main() -> None:
    began, load = time.monotonic(), os.getloadavg()[0]
    # First, from a process with no threads yet: forking one with threads is unsafe.
    ours, theirs = multiprocessing.Pipe()
    server = multiprocessing.get_context("fork").Process(target=_serve, args=(theirs,), daemon=True)
    server.start()
    endpoint = ours.recv()
    clean = ("AWS_", "WEBHOOK_", "EVENT_", "ARCHIVE_", "PAYLOAD_", "IDEMPOTENCY_", "POWERTOOLS_")
    for key in [key for key in os.environ if key.startswith(clean)]:
        del os.environ[key]
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "storm",
            "AWS_SECRET_ACCESS_KEY": "storm",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "WEBHOOK_SECRET_PARAMETER": SECRET_PARAMETER,
            "WEBHOOK_TIME_BUDGET_SECONDS": "8",  # template.yaml's
            "POWERTOOLS_LOG_LEVEL": "ERROR",
            "EVENT_BUS_NAME": "storm-github",  # the bus only: see the module's docstring
        }
    )
    from handler.aws import clients

    # How many attempts a throttled call may make within a budget, before and after.
    limits = {"before": clients.MAX_ATTEMPTS, "after": clients.THROTTLED_MAX_ATTEMPTS}
    try:
        results = {(n, policy): storm(n, policy, limits[policy], ours) for n in SIZES for policy in POLICIES}
    finally:
        ours.send("stop")
        server.join(5)
    print(render(results, time.monotonic() - began, load))


def storm(n: int, policy: str, throttled_attempts: int, ssm: Connection) -> dict[str, Any]:
    """N containers at once; what each was answered, and when, from the start."""
    from handler.aws import clients

    print(f"storm: {n} containers, {POLICIES[policy]}", file=sys.stderr, flush=True)
    clients.THROTTLED_MAX_ATTEMPTS = throttled_attempts
    attempts = _container_init()
    context = multiprocessing.get_context("fork")
    ready, answers, started = context.Semaphore(0), context.Queue(), context.Value("d", 0.0)
    # The start: this end closed, every container blocked reading the other wakes at once.
    start, go = os.pipe()
    processes = [
        context.Process(target=_container, args=(signed_event(), attempts, ready, (start, go), started, answers))
        for _ in range(n)
    ]
    sys.stdout.flush()  # or every container would print what is buffered when it exits
    # Out of the collector's sight: a collection in a container would otherwise touch, and so copy,
    # every page of the heap it shares with this process.
    gc.collect()
    gc.freeze()
    for process in processes:
        process.start()
    if not all(ready.acquire(timeout=120) for _ in processes):
        raise SystemExit("storm: a container did not start (run it alone to see why)")
    ssm.send("reset")
    ssm.recv()
    started.value = time.monotonic()
    os.close(go)
    results = [answers.get(timeout=30) for _ in processes]  # every answer comes within 10 s
    for process in processes:
        process.join(5)
    os.close(start)
    ssm.send("reset")
    return {"containers": results, "calls": ssm.recv()}


def _container_init() -> list[float]:
    """A container's init, done once here and inherited by every container forked from this process
    (imports, clients, botocore's and Powertools' first-use work). Returns the list each container's
    GetParameter attempts are timed into."""
    from handler import wiring
    from handler.aws.clients import client

    with _quiet():
        wiring.forget_container_state()
        _warm_up()
    attempts: list[float] = []
    client("ssm").meta.events.register("before-send.ssm.GetParameter", lambda **_: attempts.append(time.monotonic()))
    return attempts


def _warm_up() -> None:
    """One delivery end to end, its secret read outside the bucket; then the connections are closed and
    the receiver is built again, without a secret. Every container does it before the start too, so that
    the pages it writes are copied from the parent then, rather than by all containers at the start."""
    from devkit.apigw import LambdaContext
    from handler import app, wiring
    from handler.aws.clients import client

    os.environ["WEBHOOK_SECRET_PARAMETER"] = WARM_PARAMETER
    wiring.receiver.cache_clear()
    warm = app.handler(signed_event(), LambdaContext())
    os.environ["WEBHOOK_SECRET_PARAMETER"] = SECRET_PARAMETER
    for service in ("ssm", "events"):
        client(service).close()
    wiring.receiver.cache_clear()
    unsigned = app.handler(_unsigned(), LambdaContext())  # refused before the secret is read
    assert (warm["statusCode"], unsigned["statusCode"]) == (202, 401), (warm, unsigned)


def _container(
    event: dict[str, Any], attempts: list[float], ready: Any, pipe: tuple[int, int], started: Any, answers: Any
) -> None:
    import asyncio

    from devkit.apigw import LambdaContext
    from handler import app

    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # the receiver's logs and metrics
    asyncio.set_event_loop(asyncio.new_event_loop())  # not the parent's (its selector is shared after fork)
    _warm_up()
    attempts.clear()
    start, go = pipe
    os.close(go)  # only the parent's copy may remain: closing it is the start
    ready.release()
    os.read(start, 1)
    try:
        answer = app.handler(event, LambdaContext(timeout_ms=10_000))
        body = json.loads(answer["body"])
        outcome = (answer["statusCode"], body.get("error") or body.get("status"))
    except Exception as exc:  # reported, not lost: a crash here must show in the figures
        outcome = (0, type(exc).__name__)
    answers.put((*outcome, time.monotonic() - started.value, [t - started.value for t in attempts]))


@contextmanager
def _quiet() -> Iterator[None]:
    """Standard output to /dev/null: the receiver's logs and metrics."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _unsigned() -> dict[str, Any]:
    from devkit.apigw import http_api_event

    return http_api_event(b"{}", {"x-github-event": "push"})


def signed_event() -> dict[str, Any]:
    from devkit.apigw import http_api_event
    from devkit.github import encode_body, github_headers, sample_payload

    body = encode_body(sample_payload("push"))
    return http_api_event(body, github_headers("push", body, secret=SECRET))


def figures(result: dict[str, Any]) -> dict[str, str]:
    containers = result["containers"]
    accepted = sorted(t for status, code, t, _ in containers if (status, code) == (202, "accepted"))
    within = [t for t in accepted if t <= WINDOW]
    refused: dict[str, int] = {}
    for status, code, _, _ in containers:
        if status != 202:
            refused[f"{status} {code}"] = refused.get(f"{status} {code}", 0) + 1
    calls = result["calls"]
    first = [tries[0] for *_, tries in containers if tries]
    return {
        "accepted": f"{len(within)} of {len(containers)}",
        "refused": ", ".join(f"{count} {what}" for what, count in sorted(refused.items())) or "none",
        "median": f"{statistics.median(accepted):.2f}" if accepted else "-",
        "slowest": f"{max(t for _, _, t, _ in containers):.2f}",
        "calls": f"{len(calls)} ({sum(not ok for _, ok in calls)} throttled)",
        "per_container": f"{max(len(tries) for *_, tries in containers)}",
        "spread": f"{max(first) - min(first):.2f}" if first else "-",
    }


ROWS = [
    (f"answered 202 within {WINDOW:.0f} s", "accepted"),
    ("other answers", "refused"),
    ("median time to a 202 (s)", "median"),
    ("slowest answer (s)", "slowest"),
    ("GetParameter calls (throttled)", "calls"),
    ("most GetParameter calls by one container", "per_container"),
    ("every container's first GetParameter sent within (s)", "spread"),
]


def render(results: dict[tuple[int, str], dict[str, Any]], seconds: float, load: float) -> str:
    columns = [(n, policy) for n in SIZES for policy in POLICIES]
    table = {column: figures(results[column]) for column in columns}
    lines = [
        "",
        f"## Cold-start storm: SSM allowing {RATE:.0f} GetParameter a second",
        "",
        f"- N containers start at once, each with one signed push (budget 8 s, Lambda timeout 10 s), forwarded "
        f"to the bus; SSM's bucket holds {BUCKET:.0f} calls. before: a throttle is retried once; after: retried "
        f"with jittered back-off while the budget allows. {os.cpu_count()} cores, load average {load:.1f} at "
        f"the start; took {seconds:.0f} s. bench/storm.py says what this models and what it does not.",
        "",
        "| | " + " | ".join(f"N={n} {policy}" for n, policy in columns) + " |",
        "|---|" + "--:|" * len(columns),
    ]
    for label, key in ROWS:
        lines.append(f"| {label} | " + " | ".join(table[column][key] for column in columns) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
