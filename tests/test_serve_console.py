"""`webhook serve` in the first hour: one human line per delivery, a busy port refused before anything
starts, and the emulator's archive replayed with AWS_REGION alone."""

from __future__ import annotations

import io
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from fastapi.testclient import TestClient

from devkit import console
from devkit.cli import main
from devkit.github import sample_payload
from handler.route import app
from handler.wiring import telemetry
from tests.conftest import BUCKET, BUS, Pipeline, reset_receiver, signed
from tests.test_http_contract import serving

ROOT = Path(__file__).resolve().parent.parent
REPOSITORY = "octo-org/hello-webhooks"  # the samples' repository.full_name
CLOCK = re.compile(r"^\d\d:\d\d:\d\d  ")


def row(status: int, event: str, delivery_id: str, repository: str, what: str) -> str:
    """A delivery's console line, its time left out."""
    return f"{status}  {event:<28}  {delivery_id:<36}  {repository:<28}  {what}"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def screen(pipeline: Pipeline) -> Iterator[io.StringIO]:
    """The console on the receiver's log handler, as `serve` installs it, writing to a stream that is no TTY."""
    stream = io.StringIO()
    with console.installed(telemetry().logger, stream=stream):
        yield stream


def own(event: str, delivery_id: str, **kwargs: Any) -> tuple[bytes, dict[str, str]]:
    """A signed sample with a body of its own: one body accepted under a second id is a replay."""
    payload = {**sample_payload(event), "test_delivery": delivery_id}
    return signed(event, payload=payload, delivery_id=delivery_id, **kwargs)


def post(body: bytes, headers: dict[str, str]) -> int:
    return TestClient(app).post("/webhook", content=body, headers=headers).status_code


def lines(stream: io.StringIO) -> list[str]:
    text = stream.getvalue()
    assert all(CLOCK.match(line) for line in text.splitlines()), text
    return [CLOCK.sub("", line) for line in text.splitlines()]


def test_console_shows_one_line_per_delivery_in_order(screen: io.StringIO) -> None:
    assert post(*signed("push", delivery_id="console-accepted")) == 202
    assert post(*signed("push", delivery_id="console-accepted")) == 202
    assert post(*signed("push", delivery_id="console-forged", secret="wrong")) == 401
    events = boto3.client("events")
    events.delete_event_bus(Name=BUS)
    assert post(*own("push", "console-unavailable")) == 503
    events.create_event_bus(Name=BUS)
    assert post(*signed("ping", delivery_id="console-ping")) == 202

    assert lines(screen) == [
        row(202, "push", "console-accepted", REPOSITORY, "archived, on the bus"),
        row(202, "push", "console-accepted", REPOSITORY, "duplicate: handed off before, nothing sent again"),
        row(401, "push", "console-forged", "-", "refused: signature_mismatch"),
        row(
            503,
            "push",
            "console-unavailable",
            REPOSITORY,
            "not accepted (forward_failed): PutEvents failed (ResourceNotFoundException)",
        ),
        row(202, "ping", "console-ping", REPOSITORY, "archived, on the bus"),
        "     webhook ping",  # the ping route's own line: not a delivery line
    ]
    assert "\x1b" not in screen.getvalue()


def test_console_names_the_action_and_colours_only_a_terminal(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    logger = telemetry().logger
    terminal = Terminal()
    with console.installed(logger, stream=terminal):
        assert post(*own("pull_request", "console-colour")) == 202
    assert "\x1b[32m202\x1b[0m" in terminal.getvalue()
    assert "pull_request.opened" in terminal.getvalue()

    monkeypatch.setenv("NO_COLOR", "1")
    plain = Terminal()
    with console.installed(logger, stream=plain):
        assert post(*own("pull_request", "console-no-colour")) == 202
    assert lines(plain) == [row(202, "pull_request.opened", "console-no-colour", REPOSITORY, "archived, on the bus")]


def test_console_is_removed_after_serve_and_json_lines_come_back(pipeline: Pipeline) -> None:
    handler = telemetry().logger.registered_handler
    json_formatter = handler.formatter
    with console.installed(telemetry().logger, stream=io.StringIO()):
        assert handler.formatter is not json_formatter
    assert handler.formatter is json_formatter


def test_serve_refuses_a_busy_port_before_starting_anything() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "WEBHOOK_", "EVENT_", "ARCHIVE_"))}
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        started = time.monotonic()
        result = subprocess.run(  # noqa: S603 (our own module, fixed arguments)
            [sys.executable, "-m", "devkit", "serve", "--port", str(port)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        elapsed = time.monotonic() - started
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.splitlines()  # one line, and nothing started before it
    holder = f"(pid {os.getpid()})" if Path("/proc/net/tcp").exists() else "another process"
    assert line.startswith(f"webhook serve: port {port} on 127.0.0.1 is in use by "), line
    assert holder in line
    assert "make serve PORT=" in line
    assert "./webhook serve --port " in line
    assert elapsed < 10  # no emulator was started (seconds), no uvicorn


@pytest.fixture
def archived_push(pipeline: Pipeline) -> str:
    """One delivery accepted by the receiver (archived and forwarded), then the bus drained."""
    assert post(*signed("push", delivery_id="replay-region")) == 202
    assert len(pipeline.forwarded()) == 1
    return "replay-region"


def fresh_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """As a new `webhook replay` process: no default boto3 session yet, no client cached."""
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    reset_receiver()


def test_replay_takes_the_region_from_aws_region_alone(
    archived_push: str, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    fresh_process(monkeypatch)
    assert main(["replay", "--bucket", BUCKET, "--bus", BUS, "--no-progress"]) == 0
    assert [event["detail"]["delivery_id"] for event in pipeline.forwarded()] == [archived_push]


def test_replay_takes_the_region_from_the_option(
    archived_push: str, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    fresh_process(monkeypatch)
    assert main(["replay", "--bucket", BUCKET, "--bus", BUS, "--region", "us-east-1", "--no-progress"]) == 0
    assert [event["detail"]["delivery_id"] for event in pipeline.forwarded()] == [archived_push]


def test_replay_without_a_region_says_so(
    archived_push: str, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    fresh_process(monkeypatch)
    assert main(["replay", "--bucket", BUCKET, "--bus", BUS, "--no-progress"]) == 2
    captured = capsys.readouterr()
    assert captured.err == "webhook replay: no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION), or give --region\n"
    assert captured.out == ""
    assert pipeline.forwarded() == []


def test_console_never_writes_a_control_character_from_a_payload(screen: io.StringIO) -> None:
    """A signed payload chooses the action and repository name: on the console they are shown escaped."""
    payload = sample_payload("issues")
    payload["action"] = "opened\x1b[2J"
    payload["repository"]["full_name"] = "octo-org/\x1b]0;title\x07x"
    assert post(*signed("issues", payload=payload, delivery_id="console-escape")) == 202
    [line] = lines(screen)
    assert line == row(
        202, "issues.opened\\x1b[2J", "console-escape", "octo-org/\\x1b]0;title\\x07x", "archived, on the bus"
    )
    assert not any(ord(c) < 32 for c in screen.getvalue().rstrip("\n"))


def test_console_shows_every_request_the_frameworks_404_and_405_included(screen: io.StringIO) -> None:
    http = TestClient(console.EveryRequest(app, telemetry().logger))
    body, headers = signed("ping", delivery_id="console-wrong-path")
    assert http.post("/other", content=body, headers=headers).status_code == 404
    assert http.get("/webhook").status_code == 405
    assert http.post("/webhook", content=body, headers=headers).status_code == 202  # its own line, not a second
    assert lines(screen) == [
        row(404, "ping", "console-wrong-path", "-", "refused: not_found (POST /other)"),
        row(405, "-", "-", "-", "refused: method_not_allowed (GET /webhook)"),
        row(202, "ping", "console-wrong-path", REPOSITORY, "archived, on the bus"),
        "     webhook ping",
    ]


def test_console_columns_stay_aligned_for_long_event_names_and_no_repository(screen: io.StringIO) -> None:
    review = {**sample_payload("issues"), "action": "created"}
    organization = {key: value for key, value in sample_payload("issues").items() if key != "repository"}
    unnamed = {**sample_payload("issues"), "repository": {"full_name": ""}}
    assert post(*signed("pull_request_review_comment", payload=review, delivery_id="align-long")) == 202
    assert post(*signed("issues", payload=organization, delivery_id="align-none")) == 202
    assert post(*signed("issues", payload=unnamed, delivery_id="align-empty")) == 202
    assert post(*signed("push", delivery_id="align-forged", secret="wrong")) == 401
    assert post(*signed("push", delivery_id="align-push")) == 202

    shown = lines(screen)
    # Where each column starts: a field after two spaces or more (values have no double space).
    starts = [[match.start() for match in re.finditer(r"(?<=  )\S", line)][:4] for line in shown]
    assert all(len(found) == 4 for found in starts), shown
    assert all(found == starts[0] for found in starts), shown
    assert shown[0].startswith("202  pull_request_review….created  align-long  ")


def test_serve_window_shows_a_request_the_receiver_never_saw(tmp_path: Path) -> None:
    with serving(tmp_path / "serve.log", json_logs=False) as server:
        assert server.request("GET", "/webhook", b"", {})[0] == 405
        deadline = time.monotonic() + 10
        while "refused: method_not_allowed (GET /webhook)" not in server.log.read_text():
            assert time.monotonic() < deadline, server.log.read_text()
            time.sleep(0.05)


def test_first_make_serve_installs_with_a_pip_that_shows_its_progress(tmp_path: Path) -> None:
    """pip before 25.1 (Python 3.13.0 bundles 24.2) prints nothing while it installs, for tens of seconds."""
    venv = tmp_path / "venv"
    result = subprocess.run(  # noqa: S603 (make's dry run of our own Makefile)
        ["make", "--dry-run", f"VENV={venv}", f"{venv}/.installed"],  # noqa: S607 (make on PATH, as the README says)
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    commands = result.stdout.splitlines()
    upgrades = [(n, match) for n, line in enumerate(commands) if (match := re.search(r" pip==(\d+)\.(\d+)", line))]
    [install] = [n for n, line in enumerate(commands) if "-r requirements-dev.txt" in line]
    assert upgrades, result.stdout
    [(upgraded, version)] = upgrades
    assert upgraded < install
    assert (int(version[1]), int(version[2])) >= (25, 1)
    assert "--progress-bar on" in commands[install]
