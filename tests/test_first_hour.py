"""What a newcomer meets in the first hour: the devkit's answers say what happened, and `send` sends
what GitHub sends."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from devkit.cli import main
from devkit.github import sample_payload


class _Capture(http.server.BaseHTTPRequestHandler):
    answer = 202
    seen: list[bytes]

    def do_GET(self) -> None:
        self.send_response(self.answer)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"message": "Server Error"}')

    def do_POST(self) -> None:
        self.seen.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(self.answer)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def _server(answer: int) -> Iterator[tuple[str, list[bytes]]]:
    seen: list[bytes] = []
    handler = type("Capture", (_Capture,), {"answer": answer, "seen": seen})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[bytes]]]:
    yield from _server(202)


def test_send_posts_compact_json_as_github_does(receiver: tuple[str, list[bytes]]) -> None:
    url, seen = receiver
    assert main(["send", "push", "--url", url + "/webhook"]) == 0
    [body] = seen
    # GitHub's separators: the sample re-serialised compactly is byte for byte what was sent.
    assert body == json.dumps(sample_payload("push"), ensure_ascii=False, separators=(",", ":")).encode()
    assert b'": ' not in body
    assert b'", "' not in body


def test_send_pretty_indents_for_reading(receiver: tuple[str, list[bytes]]) -> None:
    url, seen = receiver
    assert main(["send", "ping", "--url", url + "/webhook", "--pretty"]) == 0
    [body] = seen
    assert body.startswith(b"{\n  ")
    assert json.loads(body) == sample_payload("ping")


def test_events_folder_holds_compact_bodies() -> None:
    event = json.loads(Path("events/push.json").read_text(encoding="utf-8"))
    assert event["body"] == json.dumps(sample_payload("push"), ensure_ascii=False, separators=(",", ":"))


def test_a_missing_env_vars_file_is_named_as_such(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["invoke", "events/push.json", "--env-vars", "nope.json"]) == 2
    assert capsys.readouterr().err.strip() == "webhook invoke: no such env-vars file: nope.json"
