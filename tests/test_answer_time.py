"""The answer leaves within 9 seconds of the request's start, whatever AWS does.

Each scenario is a fresh process (a new Lambda container) invoking the real handler, with one
service (or all) pointed at a misbehaving endpoint on loopback through AWS_ENDPOINT_URL_<SERVICE>:
moto's server for the happy path, a black hole (accepts, never answers), a delaying proxy in front
of moto (answers just under the read timeout), and a refused port. The scenarios run side by side;
the table of answer times is printed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer

from devkit.aws_resources import Names, connect, provision
from devkit.github import DEV_SECRET
from handler.aws.clients import READ_TIMEOUT
from tests.loopback import BlackHole, DelayingProxy, refused_endpoint

ROOT = Path(__file__).resolve().parent.parent
BOUND_SECONDS = 9.0  # GitHub waits 10 s; the function's Timeout is 10 s
SLOW = READ_TIMEOUT - 0.1  # each answer arrives just before the read timeout would fire
WAVE = 7  # scenarios timed at once
RESOURCES = Names(
    secret_parameter="/github-webhook/timing/secret",
    bus="timing-bus",
    bucket="timing-archive",
    table="timing-deliveries",
)
# The variable that points each service elsewhere, as botocore names it.
ENDPOINT_VARIABLES = {
    "ssm": "AWS_ENDPOINT_URL_SSM",
    "dynamodb": "AWS_ENDPOINT_URL_DYNAMODB",
    "s3": "AWS_ENDPOINT_URL_S3",
    "events": "AWS_ENDPOINT_URL_EVENTBRIDGE",
}
FAILS_AS = {"ssm": "secret_unavailable", "dynamodb": "deduplication_unavailable", "s3": "archive_failed"}
FAILS_AS["events"] = "forward_failed"


def scenarios() -> list[tuple[str, dict[str, str], tuple[int, str]]]:
    """(name, services pointed elsewhere: service -> 'black hole' | 'slow' | 'refused', expected answer)."""
    table: list[tuple[str, dict[str, str], tuple[int, str]]] = [("all healthy (moto)", {}, (202, "accepted"))]
    for service, error in FAILS_AS.items():
        table.append((f"{service} black hole", {service: "black hole"}, (503, error)))
        table.append((f"{service} slow", {service: "slow"}, (202, "accepted")))
        table.append((f"{service} refused", {service: "refused"}, (503, error)))
    # Every call slow: SSM, the dedup record and S3 fit; PutEvents would not, so it is not started.
    table.append(("all slow", dict.fromkeys(FAILS_AS, "slow"), (503, "timeout")))
    return table


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    provision(connect(endpoint), RESOURCES, secret=DEV_SECRET)
    yield endpoint
    server.stop()


def _environment(moto: str, endpoints: dict[str, str]) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "WEBHOOK_", "POWERTOOLS_", "EVENT_", "ARCHIVE_", "PAYLOAD_", "IDEMPOTENCY_"))
    }
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "AWS_ACCESS_KEY_ID": "timing",
            "AWS_SECRET_ACCESS_KEY": "timing",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": moto,
            "POWERTOOLS_LOG_LEVEL": "ERROR",
        }
        | RESOURCES.environment()
    )
    for service, url in endpoints.items():
        env[ENDPOINT_VARIABLES[service]] = url
    return env


def test_every_answer_leaves_within_nine_seconds(
    moto_endpoint: str, record_property: Callable[[str, str], None]
) -> None:
    black_hole = BlackHole()
    slow = DelayingProxy(moto_endpoint, SLOW)
    urls = {"black hole": black_hole.url, "slow": slow.url, "refused": refused_endpoint()}
    try:
        running = []
        for name, faults, expected in scenarios():
            endpoints = {service: urls[fault] for service, fault in faults.items()}
            child = subprocess.Popen(
                [sys.executable, "-m", "tests.answer_time_child"],
                cwd=ROOT,
                env=_environment(moto_endpoint, endpoints),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            running.append((name, expected, child))
        # Every child imports first; then they are timed a few at a time, so that none is starved of
        # CPU by the others (each cold start creates its AWS clients) on a 2-core machine.
        for name, _, child in running:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "READY", name
        results = []
        for wave in range(0, len(running), WAVE):
            batch = running[wave : wave + WAVE]
            for _, _, child in batch:
                assert child.stdin is not None
                child.stdin.write("go\n")
                child.stdin.flush()  # communicate() closes it
            for name, expected, child in batch:
                out, err = child.communicate(timeout=120)
                lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
                assert lines, f"{name}: no result (exit {child.returncode})\n{err[-2000:]}"
                results.append((name, expected, json.loads(lines[-1].removeprefix("RESULT "))))
    finally:
        black_hole.stop()
        slow.stop()

    # Shown in pytest's summary (conftest's pytest_terminal_summary), also when workers run the test.
    lines = [f"answer times (bound {BOUND_SECONDS:.0f} s; slow = each answer after {SLOW:.1f} s)"]
    lines.append(f"{'scenario':<26} {'status':>6}  {'answer':<26} {'seconds':>7}")
    for name, _, result in results:
        answer = result["body"].get("error") or result["body"].get("status")
        lines.append(f"{name:<26} {result['status']:>6}  {answer:<26} {result['seconds']:>7.2f}")
    record_property("summary", "\n".join(lines))
    for name, (status, answer), result in results:
        assert result["seconds"] < BOUND_SECONDS, (name, result)
        got = (result["status"], result["body"].get("error") or result["body"].get("status"))
        assert got == (status, answer), (name, result)
