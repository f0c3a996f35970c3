"""The optional source allow-list, and `webhook github-ranges` against a local stand-in for GitHub's /meta."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator

import pytest

from devkit.apigw import http_api_event
from devkit.cli import main
from handler.core.outcomes import ConfigurationError
from handler.core.source import SourceAllowList
from tests.conftest import invoke, signed

HOOKS = ["192.30.252.0/22", "185.199.108.0/22", "140.82.112.0/20", "143.55.64.0/20", "2a0a:a440::/29", "2606:50c0::/32"]


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("192.30.252.1", True),
        ("140.82.115.10", True),
        ("2a0a:a440::1", True),
        ("::ffff:192.30.252.9", True),
        ("203.0.113.7", False),
        ("10.0.0.1", False),
        ("testclient", False),
        ("", False),
        (None, False),
    ],
)
def test_allow_list(address: str | None, allowed: bool) -> None:
    assert SourceAllowList.parse(",".join(HOOKS)).allows(address) is allowed


@pytest.mark.parametrize("value", ["192.30.252.0/33", "not-a-cidr", " , "])
def test_invalid_ranges_are_configuration_errors(value: str) -> None:
    with pytest.raises(ConfigurationError, match="ALLOWED_SOURCE_CIDRS"):
        SourceAllowList.parse(value)


@pytest.fixture
def allow_github(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLOWED_SOURCE_CIDRS", ",".join(HOOKS))


@pytest.mark.usefixtures("allow_github")
def test_delivery_from_github_ranges_is_accepted() -> None:
    body, headers = signed("push")
    assert invoke(http_api_event(body, headers, source_ip="140.82.115.10")).status == 202


@pytest.mark.usefixtures("allow_github")
def test_signed_delivery_from_elsewhere_is_403() -> None:
    body, headers = signed("push")
    answer = invoke(http_api_event(body, headers, source_ip="203.0.113.7"))
    assert (answer.status, answer.body["error"]) == (403, "forbidden_source")


@pytest.mark.usefixtures("allow_github")
def test_http_app_checks_the_peer_address() -> None:
    from fastapi.testclient import TestClient

    from handler.app import app

    body, headers = signed("push")
    response = TestClient(app).post("/webhook", content=body, headers=headers)  # the peer is "testclient"
    assert (response.status_code, response.json()["error"]) == (403, "forbidden_source")


@pytest.mark.usefixtures("allow_github")
def test_unsigned_request_from_elsewhere_is_also_403() -> None:
    body, headers = signed("push", secret=None)
    answer = invoke(http_api_event(body, headers, source_ip="198.51.100.1"))
    assert (answer.status, answer.body["error"]) == (403, "forbidden_source")


@pytest.fixture
def fake_github_meta() -> Iterator[str]:
    """A stand-in for https://api.github.com/meta on loopback (the tests never reach the internet)."""

    class Meta(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/broken":
                self.send_response(500)
                self.end_headers()
                return
            body = (
                b"not json" if self.path == "/garbled" else json.dumps({"hooks": HOOKS, "web": ["1.2.3.4/32"]}).encode()
            )
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Meta)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("style", "expected"),
    [
        ("csv", ",".join(HOOKS)),
        ("env", "ALLOWED_SOURCE_CIDRS=" + ",".join(HOOKS)),
        ("parameter", "AllowedSourceCidrs=" + ",".join(HOOKS)),
        ("list", "\n".join(HOOKS)),
    ],
)
def test_github_ranges_prints_the_hooks_key(
    fake_github_meta: str, style: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["github-ranges", "--url", f"{fake_github_meta}/meta", "--format", style]) == 0
    assert capsys.readouterr().out == expected + "\n"


def test_github_ranges_output_configures_the_receiver(
    fake_github_meta: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["github-ranges", "--url", f"{fake_github_meta}/meta", "--format", "env"]) == 0
    name, value = capsys.readouterr().out.strip().split("=", 1)
    monkeypatch.setenv(name, value)
    body, headers = signed("ping")
    assert invoke(http_api_event(body, headers, source_ip="192.30.252.200")).status == 202
    assert invoke(http_api_event(body, headers, source_ip="1.2.3.4")).status == 403  # `web`, not `hooks`


@pytest.mark.parametrize(
    ("path", "code", "message"), [("/broken", 1, "answered HTTP 500"), ("/garbled", 2, "did not answer JSON")]
)
def test_github_ranges_errors(
    fake_github_meta: str, path: str, code: int, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["github-ranges", "--url", fake_github_meta + path]) == code
    assert message in capsys.readouterr().err


def test_github_ranges_unreachable(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["github-ranges", "--url", "http://127.0.0.1:9/meta"]) == 3
    assert "cannot reach" in capsys.readouterr().err
