"""Logs carry the delivery's identity on every line and never the secret, a signature or the payload."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from devkit.apigw import http_api_event
from devkit.github import DEV_SECRET, sample_payload
from handler.route import app
from handler.wiring import telemetry
from tests.conftest import Logs, Send, invoke, signed

MARKER = "payload-marker-7f3a9c"  # a value that exists only inside the payload


@pytest.fixture
def everything(logs: Logs) -> Iterator[io.StringIO]:
    """The service logger at DEBUG, plus every other logger (botocore, mangum, ...) at DEBUG on the root."""
    root = logging.getLogger()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = telemetry().logger
    previous_root, previous_service = root.level, logger.log_level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    logger.setLevel("DEBUG")
    yield stream
    root.removeHandler(handler)
    root.setLevel(previous_root)
    logger.setLevel(previous_service)


def _deliveries() -> list[tuple[bytes, dict[str, str], int]]:
    payload = sample_payload("push") | {"marker": MARKER}
    cases = []
    for secret, status in ((DEV_SECRET, 202), ("forged-secret", 401)):
        for form in (False, True):
            body, headers = signed("push", payload=payload, form=form, secret=secret)
            cases.append((body, headers, status))
    body, headers = signed("push", payload=b'{"marker": "' + MARKER.encode() + b'", ', secret=DEV_SECRET)
    cases.append((body, headers, 400))
    return cases


def _assert_clean(text: str, cases: list[tuple[bytes, dict[str, str], int]]) -> None:
    assert DEV_SECRET not in text
    assert MARKER not in text
    for _, headers, _ in cases:
        for name in ("x-hub-signature-256", "x-hub-signature"):
            assert headers[name].split("=", 1)[1] not in text


def test_secret_signature_and_payload_never_reach_a_log_line(send: Send, logs: Logs, everything: io.StringIO) -> None:
    cases = _deliveries()
    for body, headers, status in cases:
        assert send(body, headers).status == status
    logging.getLogger("probe").debug("root is at DEBUG")
    assert "root is at DEBUG" in everything.getvalue()  # the capture of every other logger works
    assert [line["message"] for line in logs.records] == (
        ["delivery accepted"] * 2 + ["delivery rejected"] * 3  # forged, forged, malformed
    )
    _assert_clean(logs.text + everything.getvalue(), cases)


def test_secret_and_session_token_never_reach_a_log_line_even_from_botocore(
    ssm_secret: str, logs: Logs, everything: io.StringIO
) -> None:
    """botocore logs requests and responses at DEBUG; the transport makes no difference, so Lambda only."""
    cases = _deliveries()
    for body, headers, status in cases:
        assert invoke(http_api_event(body, headers)).status == status
    logging.getLogger("probe").debug("root is at DEBUG")
    assert "root is at DEBUG" in everything.getvalue()
    _assert_clean(logs.text + everything.getvalue(), cases)
    assert "testing" not in everything.getvalue()  # the (fake) session token signed into every request


def test_every_line_of_an_accepted_delivery_names_it(send: Send, logs: Logs) -> None:
    body, headers = signed("pull_request")
    assert send(body, headers).status == 202
    lines = logs.records
    assert [line["message"] for line in lines] == ["delivery accepted"]  # one line, metrics included
    for line in lines:
        assert line["delivery_id"] == headers["x-github-delivery"]
        assert line["event"] == "pull_request"
        assert line["action"] == "opened"
        assert line["hook_id"] == headers["x-github-hook-id"]
        assert line["repository"] == "octo-org/hello-webhooks"


def test_keys_do_not_leak_from_one_request_into_the_next_under_uvicorn(logs: Logs) -> None:
    """The HTTP app reuses one logger for every request (in Lambda, clear_state resets it per invocation)."""
    http = TestClient(app)
    body, headers = signed("pull_request")
    assert http.post("/webhook", content=body, headers=headers).status_code == 202
    body, headers = signed("push", secret=None)
    headers["x-github-delivery"] = "not a valid id"
    assert http.post("/webhook", content=body, headers=headers).status_code == 401
    last = logs.records[-1]
    assert "delivery_id" not in last
    assert "repository" not in last
    assert "action" not in last


# A delivery's line, ids and names included, with its metric: what CloudWatch Logs bills per delivery.
LINE_MAX_BYTES = 520  # 477 for a push, 502 for pull_request.opened (was 827)


def test_a_delivery_line_is_short_and_the_containers_constants_are_written_once(
    logs: Logs, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from handler import app as entry

    monkeypatch.setattr(entry, "_cold_start", True)
    monkeypatch.setenv("_X_AMZN_TRACE_ID", "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0")
    for event in ("push", "pull_request", "issues"):
        assert invoke(http_api_event(*signed(event))).status == 202
    lines = logs.text.splitlines()
    assert len(lines) == 3
    for line in lines:
        assert len(line.encode()) + 1 <= LINE_MAX_BYTES, line
        record = json.loads(line)
        assert not {"function_arn", "function_name", "function_memory_size", "cold_start", "location"} & set(record)
        assert "xray_trace_id" not in record  # not sampled: the id would lead nowhere
    # ColdStart's line (Powertools Metrics, on stdout) carries the constants, once.
    [cold] = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"ColdStart"' in line]
    assert cold["function_name"]
    assert cold["function_memory_size"]
    # A recorded trace puts its id on the lines of that invocation.
    logs.clear()
    monkeypatch.setenv("_X_AMZN_TRACE_ID", "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1")
    assert invoke(http_api_event(*signed("push"))).status == 202
    assert [record["xray_trace_id"] for record in logs.records] == ["1-5759e988-bd862e3fe1be46a994272793"]
