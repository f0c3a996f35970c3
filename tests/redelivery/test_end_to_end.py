"""End to end: a delivery a running `webhook serve` answered 503 is redelivered through the stand-in's
``/attempts``, which re-posts the same signed request (same X-GitHub-Delivery), and becomes a 202 on
the bus."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devkit.aws_resources import connect
from devkit.emulator import LOCAL
from handler.aws.telemetry import PowertoolsTelemetry
from handler.core.hooks import Hook
from handler.core.memory_state import MemoryStateStore
from handler.core.settings import RedeliverySettings, TelemetrySettings
from handler.redelivery import run
from tests.conftest import signed
from tests.redelivery.conftest import REPO_HOOK, TOKEN
from tests.redelivery.github_standin import GitHubStandIn, attempts_of

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Serve:
    url: str  # the receiver
    aws: str  # its AWS emulator (moto's server)
    errors: Path  # its stderr: what reaches the bus is printed there

    def bus_lines(self, delivery_id: str) -> list[str]:
        return [
            line for line in self.errors.read_text().splitlines() if line.startswith("bus <- ") and delivery_id in line
        ]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    """`webhook serve` in a subprocess with its AWS emulator, on a free loopback port."""
    port = free_port()
    errors = tmp_path / "stderr.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "WEBHOOK_", "EVENT_", "ARCHIVE_"))}
    with errors.open("w") as stderr:
        process = subprocess.Popen(  # noqa: S603 (our own module, fixed arguments)
            [sys.executable, "-m", "devkit", "serve", "--json", "--port", str(port)],  # --json: the bus watcher too
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, errors.read_text()
            assert time.monotonic() < deadline, "serve did not start: " + errors.read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.05)
        emulator = re.search(r"AWS emulator \(moto\) on (http://[^\s,]+)", errors.read_text())
        assert emulator, errors.read_text()
        yield Serve(f"http://127.0.0.1:{port}/webhook", emulator.group(1), errors)
    finally:
        process.terminate()
        process.wait(10)


def test_a_delivery_answered_503_is_redelivered_and_accepted(serve: Serve, github: GitHubStandIn) -> None:
    s3 = connect(serve.aws)("s3")
    # The receiver's archive is gone for a while: it answers 503, and GitHub records the failure.
    s3.delete_bucket(Bucket=LOCAL.bucket)
    body, headers = signed("push")
    guid = headers["x-github-delivery"]
    original = github.post_to_receiver(REPO_HOOK, serve.url, body, headers)
    assert (original.status_code, original.status) == (503, "Invalid HTTP Response: 503")

    s3.create_bucket(Bucket=LOCAL.bucket)  # repaired
    github.forward_to = serve.url  # redeliveries re-post the original request there
    settings = RedeliverySettings(hooks=(Hook.parse(REPO_HOOK),), api_url=github.url, token=TOKEN)
    telemetry, store = PowertoolsTelemetry(TelemetrySettings()), MemoryStateStore()
    summary = run(settings, telemetry, time_left=lambda: 60.0, store=store)

    assert summary.redelivered == 1
    assert [(r.delivery_id, r.guid) for r in github.redelivered] == [(original.id, guid)]
    assert attempts_of(github.attempts(guid)) == [(503, False), (202, True)]
    deadline = time.monotonic() + 10  # serve's watcher prints what the bus delivered, every half second
    while not serve.bus_lines(guid) and time.monotonic() < deadline:
        time.sleep(0.1)
    [line] = serve.bus_lines(guid)  # once: the 503 attempt never reached the bus
    assert line.startswith(f"bus <- push {guid} (payload inline; archive deliveries/")

    # The next run sees the 202 and leaves the delivery alone.
    assert run(settings, telemetry, time_left=lambda: 60.0, store=store).redelivered == 0
    assert len(github.redelivered) == 1
