"""The contract outside the happy path, on both transports: every answer is the receiver's JSON
``{"error", "message"}`` (404, 405, a trailing slash), and an oversized body is refused with 413
without being read into memory, against `webhook serve` for real (uvicorn in a subprocess), where
concurrent deliveries are also bounded each on its own, and the source address is the socket's."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from moto.server import ThreadedMotoServer

from devkit.apigw import http_api_event
from devkit.aws_resources import connect
from devkit.github import DEV_SECRET, encode_body, github_headers
from handler.app import app
from tests.conftest import RECEIVER_ENV, Logs, invoke, signed
from tests.loopback import DelayingProxy
from tests.receivers import free_port, until_listening

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 1024 * 1024  # WEBHOOK_MAX_BODY_BYTES of the served receiver
BOUND_SECONDS = 9.0  # each answer, from its own request's send
CONCURRENT = 10
SLOW_AWS_SECONDS = 1.0  # each S3 answer: well under the client's read timeout, so each one is accepted
MiB = 1024 * 1024

ROUTING = [  # method, path, status, error
    ("GET", "/webhook", 405, "method_not_allowed"),
    ("PUT", "/webhook", 405, "method_not_allowed"),
    ("DELETE", "/webhook", 405, "method_not_allowed"),
    ("POST", "/other", 404, "not_found"),
    ("GET", "/", 404, "not_found"),
    ("GET", "/docs", 404, "not_found"),
    ("GET", "/openapi.json", 404, "not_found"),
    ("POST", "/webhook/", 404, "not_found"),  # no 307 redirect to /webhook (redirect_slashes is off)
]


def assert_refusal(status: int, headers: dict[str, str], body: bytes, expected_status: int, error: str) -> None:
    assert status == expected_status
    assert headers["content-type"] == "application/json"
    answer = json.loads(body)
    assert set(answer) == {"error", "message"}
    assert answer["error"] == error
    assert answer["message"]
    assert "\n" not in answer["message"]
    if expected_status == 405:
        assert headers["allow"] == "POST"


def at_limit_body(size: int) -> bytes:
    """A JSON ping body of exactly ``size`` bytes."""
    base = encode_body({"zen": "", "hook_id": 1, "pad": ""})
    return encode_body({"zen": "", "hook_id": 1, "pad": "x" * (size - len(base))})


# --- `webhook serve`: the same app under uvicorn, in a subprocess --------------------------------


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def request(
        self, method: str, path: str, body: bytes | Iterable[bytes], headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        """One request on a new connection; an iterable body is sent chunked (no Content-Length)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            chunked = not isinstance(body, bytes)
            if chunked:
                headers = {**headers, "transfer-encoding": "chunked"}
            connection.request(method, path, body=body, headers=headers, encode_chunked=chunked)
            response = connection.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            connection.close()

    def peak_rss(self) -> int:
        """The server process's peak resident set size (VmHWM), in bytes."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmHWM in /proc/<pid>/status")

    def log_records(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.startswith("{")]


@contextmanager
def serving(log: Path, *, json_logs: bool = True, **settings: str) -> Iterator[Server]:
    """`webhook serve --no-emulator` (``--json`` unless told) on a free loopback port, with ``settings``
    in its environment, and its output in ``log``."""
    port = free_port()
    env = {name: value for name, value in os.environ.items() if name not in RECEIVER_ENV}
    env.update(WEBHOOK_SECRET=DEV_SECRET, AWS_DEFAULT_REGION="us-east-1", **settings)
    command = [sys.executable, "-m", "devkit", "serve", "--no-emulator", "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 (our own module, fixed arguments)
            [*command, "--json"] if json_logs else command,
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        until_listening(process, port, log, seconds=30)
        yield Server(process, port, log)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The served receiver with a 1 MiB body limit, verifying only (no AWS)."""
    with serving(tmp_path_factory.mktemp("serve") / "server.log", WEBHOOK_MAX_BODY_BYTES=str(LIMIT)) as running:
        yield running


def raw_exchange(port: int, request: bytes, timeout: float) -> tuple[int, dict[str, str], bytes]:
    """Send ``request`` as is and read one response (Content-Length framed), within ``timeout``."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
        connection.sendall(request)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = connection.recv(65536)
            assert chunk, f"connection closed before a response: {received!r}"
            received += chunk
        head, _, body = received.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
        while len(body) < int(headers["content-length"]):
            chunk = connection.recv(65536)
            assert chunk, "connection closed in the middle of the response"
            body += chunk
        return int(status_line.split()[1]), headers, body


def chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    block = b" " * size
    for _ in range(total // size):
        yield block
    if total % size:
        yield block[: total % size]


@pytest.mark.parametrize(("method", "path", "status", "error"), ROUTING)
def test_serve_answers_unknown_paths_and_methods_in_json(
    server: Server, method: str, path: str, status: int, error: str
) -> None:
    body, headers = signed("ping")  # a valid delivery: only the route is wrong
    assert_refusal(*server.request(method, path, body, headers), status, error)


def test_serve_refuses_a_declared_length_over_the_limit_before_reading_the_body(server: Server) -> None:
    """Headers declare 200 MB and only 2 bytes follow: the 413 comes back without waiting for the rest."""
    delivery_id = "declared-too-large-0001"
    request = (
        "POST /webhook HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{server.port}\r\n"
        "Content-Type: application/json\r\n"
        "X-GitHub-Event: push\r\n"
        f"X-GitHub-Delivery: {delivery_id}\r\n"
        "Content-Length: 200000000\r\n"
        "\r\n{}"
    ).encode()
    started = time.monotonic()
    status, headers, body = raw_exchange(server.port, request, timeout=5)
    assert time.monotonic() - started < 3
    assert_refusal(status, headers, body, 413, "payload_too_large")
    # Logged as the receiver logs its own refusals: the delivery id, and the DeliveryRejected metric.
    deadline = time.monotonic() + 5
    while not (found := [r for r in server.log_records() if r.get("delivery_id") == delivery_id]):
        assert time.monotonic() < deadline, server.log.read_text()
        time.sleep(0.05)
    [record] = found
    assert record["message"] == "delivery rejected"
    assert record["error"] == "payload_too_large"
    assert record["reason"] == "too_large"
    assert record["DeliveryRejected"] in (1, [1.0])


def test_serve_stops_reading_a_streamed_body_at_the_limit_and_its_memory_stays_flat(server: Server) -> None:
    def halves(body: bytes) -> list[bytes]:
        return [body[: len(body) // 2], body[len(body) // 2 :]]

    # Streamed (chunked, no Content-Length) at exactly the limit: accepted, and the server's peak
    # now includes the largest body it ever holds. One byte more: refused.
    body = at_limit_body(LIMIT)
    assert len(body) == LIMIT
    status, _, answer = server.request("POST", "/webhook", halves(body), github_headers("ping", body))
    assert status == 202, answer
    over = at_limit_body(LIMIT + 1)
    refused = server.request("POST", "/webhook", halves(over), github_headers("ping", over))
    assert_refusal(*refused, 413, "payload_too_large")

    before = server.peak_rss()
    started = time.monotonic()
    streamed = server.request("POST", "/webhook", chunks(64 * MiB), {"content-type": "application/json"})
    elapsed = time.monotonic() - started
    growth = server.peak_rss() - before

    assert_refusal(*streamed, 413, "payload_too_large")
    assert growth < 16 * MiB, f"peak RSS grew by {growth / MiB:.1f} MiB for a refused 64 MiB body"
    assert elapsed < 20


@dataclass
class Concurrent:
    answers: list[tuple[int, bytes, float]]  # status, body, seconds from its own send
    elapsed: float  # from the first send to the last answer
    records: list[dict[str, object]]


@pytest.fixture(scope="module")
def concurrent(tmp_path_factory: pytest.TempPathFactory) -> Concurrent:
    """CONCURRENT deliveries sent at once to the served receiver, whose S3 answers each call slowly."""
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    connect(endpoint)("s3").create_bucket(Bucket="concurrent-archive")
    slow = DelayingProxy(endpoint, SLOW_AWS_SECONDS)
    aws = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ENDPOINT_URL_S3": slow.url,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "ARCHIVE_BUCKET": "concurrent-archive",
    }

    def deliver(name: str) -> tuple[int, bytes, float]:
        body, headers = signed("push", payload={"ref": "refs/heads/main", "after": name}, delivery_id=name)
        sent = time.monotonic()
        status, _, answer = server.request("POST", "/webhook", body, headers)
        return status, answer, time.monotonic() - sent

    try:
        with serving(tmp_path_factory.mktemp("concurrent") / "server.log", **aws) as server:
            # A first delivery builds the receiver and its S3 client: what follows is timed warm.
            assert deliver("concurrent-warm-up")[0] == 202
            started = time.monotonic()
            with ThreadPoolExecutor(CONCURRENT) as pool:
                answers = list(pool.map(deliver, [f"concurrent-{n:02d}" for n in range(CONCURRENT)]))
            return Concurrent(answers, time.monotonic() - started, server.log_records())
    finally:
        slow.stop()
        moto.stop()


def test_serve_bounds_each_of_concurrent_deliveries_from_its_own_arrival(concurrent: Concurrent) -> None:
    """With AWS answering slowly, deliveries sent together are handled together: none waits for the
    others, so each answer leaves within the bound of its own send."""
    for status, answer, seconds in concurrent.answers:
        assert status == 202, answer  # each one archived, through the slow S3
        assert seconds < BOUND_SECONDS
    # One after another they would take CONCURRENT x SLOW_AWS_SECONDS at least: they overlapped.
    assert concurrent.elapsed < CONCURRENT * SLOW_AWS_SECONDS / 2, [round(s, 2) for *_, s in concurrent.answers]


def test_serve_logs_each_concurrent_delivery_under_its_own_id(concurrent: Concurrent) -> None:
    accepted = [record for record in concurrent.records if record["message"] == "delivery accepted"]
    expected = {"concurrent-warm-up", *(f"concurrent-{n:02d}" for n in range(CONCURRENT))}
    assert sorted(str(record.get("delivery_id")) for record in accepted) == sorted(expected)


def test_serve_takes_the_source_address_from_the_socket_not_from_x_forwarded_for(tmp_path: Path) -> None:
    """Any local process (a tunnel agent, a browser page's fetch) could claim an allowed address."""
    with serving(tmp_path / "server.log", ALLOWED_SOURCE_CIDRS="192.0.2.0/24") as server:
        body, headers = signed("ping")
        answer = server.request("POST", "/webhook", body, {**headers, "x-forwarded-for": "192.0.2.10"})
    assert_refusal(*answer, 403, "forbidden_source")


# --- in process: the same app through TestClient and through the Lambda handler ------------------


def test_app_refuses_a_declared_length_over_the_limit_without_reading_and_logs_it(
    logs: Logs, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEBHOOK_MAX_BODY_BYTES", "10000")
    http = TestClient(app)
    body, headers = signed("ping", delivery_id="declared-0001")
    assert len(body) < 10_000
    # The declared length alone decides: the (small, validly signed) body is never looked at.
    response = http.post("/webhook", content=body, headers={**headers, "content-length": "10001"})
    assert_refusal(response.status_code, dict(response.headers), response.content, 413, "payload_too_large")
    [record] = logs.records
    assert record["message"] == "delivery rejected"
    assert record["error"] == "payload_too_large"
    assert record["delivery_id"] == "declared-0001"
    assert logs.metrics == [("DeliveryRejected", {"reason": "too_large"})]
    # A body at exactly the limit, declared as such, is accepted.
    exact = at_limit_body(10_000)
    assert http.post("/webhook", content=exact, headers=github_headers("ping", exact)).status_code == 202


@pytest.mark.parametrize(("method", "path", "status", "error"), ROUTING)
def test_lambda_answers_unknown_paths_and_methods_in_json_logged_and_counted(
    method: str, path: str, status: int, error: str, logs: Logs
) -> None:
    body, headers = signed("ping")
    answer = invoke(http_api_event(body, headers, method=method, path=path))
    assert set(answer.body) == {"error", "message"}
    assert_refusal(answer.status, answer.headers, json.dumps(answer.body).encode(), status, error)
    # Reported as every other refusal: one line, counted, with the claimed ids and what was asked.
    [line] = logs.records
    assert (line["message"], line["level"], line["error"]) == ("request rejected", "WARNING", error)
    assert (line["method"], line["path"], line["delivery_id"]) == (method, path, headers["x-github-delivery"])
    assert logs.metrics == [("DeliveryRejected", {"reason": "not_found" if status == 404 else "method"})]
