"""The Lambda entry point itself: events/ samples, events that are not HTTP API v2, base64 envelopes."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest

from devkit import events as samples
from devkit.apigw import http_api_event
from devkit.github import DEV_SECRET, sample_payload
from handler import wiring
from tests.conftest import Logs, invoke, reset_receiver, signed

EVENTS_DIR = Path(__file__).resolve().parent.parent / "events"


def test_every_file_in_events_is_covered_and_up_to_date() -> None:
    on_disk = {path.name for path in EVENTS_DIR.glob("*.json")}
    assert on_disk == set(samples.SAMPLES)
    for name in on_disk:
        assert json.loads((EVENTS_DIR / name).read_text(encoding="utf-8")) == samples.build(name), (
            f"events/{name} is stale: run `python -m devkit.events`"
        )


@pytest.mark.parametrize("name", sorted(samples.SAMPLES))
def test_sample_event_gives_its_documented_status(name: str) -> None:
    event = json.loads((EVENTS_DIR / name).read_text(encoding="utf-8"))
    expected = samples.SAMPLES[name][-1]
    answer = invoke(event)
    assert answer.status == expected
    if expected == 202:
        assert answer.body["delivery_id"] == event["headers"]["x-github-delivery"]


def test_correlation_id_is_the_api_gateway_request_id(logs: Logs) -> None:
    body, headers = signed("push")
    event = http_api_event(body, headers, request_id="Abc123RequestId=")
    assert invoke(event).status == 202
    assert logs.records
    assert all(line["correlation_id"] == "Abc123RequestId=" for line in logs.records)


def _event() -> dict:
    body, headers = signed("push")
    return http_api_event(body, headers)


@pytest.mark.parametrize(
    "damage",
    [
        lambda e: e.pop("requestContext"),
        lambda e: e.pop("version"),
        lambda e: e.update(version="1.0"),
        lambda e: e["requestContext"].pop("http"),
        lambda e: e["requestContext"]["http"].pop("sourceIp"),
        lambda e: e.update(headers=None),
        lambda e: e.update(headers={"x-github-event": 1}),
        lambda e: e.update(body=["not", "a", "string"]),
        lambda e: e.update(rawQueryString=None),
    ],
)
def test_event_that_is_not_http_api_v2_is_400(damage) -> None:
    event = _event()
    damage(event)
    answer = invoke(event)
    assert answer.status == 400
    assert answer.body["error"] == "invalid_event"


@pytest.mark.parametrize("form", [False, True])
def test_base64_encoded_body_is_verified_on_the_decoded_bytes(form: bool) -> None:
    body, headers = signed("push", form=form)
    assert invoke(http_api_event(body, headers, base64_encoded=True)).body["status"] == "accepted"


@pytest.mark.parametrize("bad", ["not base64!", "YWJjZA=", "YWJjZA", "@@@@", "YW Jj", "YWJj=", "YWJjZB==", "YQ==YWJj"])
def test_body_marked_base64_that_is_not_base64_is_400(bad: str) -> None:
    event = _event()
    event.update(body=bad, isBase64Encoded=True)
    answer = invoke(event)
    assert answer.status == 400
    assert answer.body["error"] == "invalid_event"


def test_base64_with_embedded_garbage_is_refused_not_silently_repaired() -> None:
    # Python's lenient decoder would drop the '!' and verify the rest: refuse instead.
    body, headers = signed("push")
    encoded = base64.b64encode(body).decode()
    event = http_api_event(body, headers)
    event.update(body=encoded[:8] + "!" + encoded[8:], isBase64Encoded=True)
    assert invoke(event).status == 400


def test_absent_body_is_verified_as_empty() -> None:
    body, headers = signed("ping", payload=b"")
    event = http_api_event(body, headers)
    del event["body"]
    answer = invoke(event)
    assert answer.status == 400  # signed, but an empty body is not a JSON object
    assert answer.body["error"] == "malformed_payload"


@pytest.mark.parametrize(
    "damage",
    [
        lambda e: e["headers"].update(host="a:notaport"),
        lambda e: e.update(cookies=[1]),
        lambda e: e["headers"].update({"x-odd": "\ud800"}),
        lambda e: e.update(rawQueryString="\ud800"),
    ],
)
def test_event_mangum_cannot_turn_into_a_request_is_400_not_a_crash(damage, logs: Logs) -> None:
    event = _event()
    damage(event)
    answer = invoke(event)
    assert (answer.status, answer.body["error"]) == (400, "invalid_event")
    [line] = logs.records  # one line, reported once: the refusal, with the cause's type
    assert (line["message"], line["level"], line["error"]) == ("invalid Lambda event", "ERROR", "invalid_event")
    assert line["error_type"]
    assert logs.metrics == [("DeliveryRejected", {"reason": "malformed"})]


MARKER = "payload-marker-5b81e2"  # a value that exists only inside the payload


def test_log_event_stays_off_even_when_powertools_is_told_to_log_events(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Powertools reads POWERTOOLS_LOGGER_LOG_EVENT when the entry point is built: set it, then start
    a new container, so that the handler under test is the one built with it set."""
    monkeypatch.setenv("POWERTOOLS_LOGGER_LOG_EVENT", "true")
    reset_receiver()
    captured = io.StringIO()
    handler = wiring.telemetry().logger.registered_handler
    previous = handler.setStream(captured)
    payload = sample_payload("push") | {"marker": MARKER}
    try:
        signatures = []
        for secret, status in ((DEV_SECRET, 202), ("forged", 401)):
            body, headers = signed("push", payload=payload, secret=secret)
            assert invoke(http_api_event(body, headers)).status == status
            signatures.append(headers["x-hub-signature-256"])
    finally:
        handler.setStream(previous)
    text = captured.getvalue() + capsys.readouterr().out
    for signature in signatures:
        assert signature.split("=", 1)[1] not in text
    assert MARKER not in text
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    for line in lines:
        assert not {"headers", "body", "requestContext"} & set(line)
        assert isinstance(line.get("message", ""), str)  # Powertools would log the event as the message
    # The two deliveries' lines, and nothing else but metrics (the ColdStart count, if this is the first).
    assert [line["message"] for line in lines if "message" in line] == ["delivery accepted", "delivery rejected"]
    assert all("_aws" in line for line in lines if "message" not in line)


def test_sam_local_invoke_environment_runs_the_samples_on_the_development_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What `sam local invoke WebhookFunction -e events/X.json --env-vars env.local.json` does, minus Docker."""
    root = EVENTS_DIR.parent
    env = json.loads((root / "env.local.json").read_text(encoding="utf-8"))["WebhookFunction"]
    monkeypatch.delenv("WEBHOOK_SECRET")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "WebhookFunction")  # both set by `sam local`
    monkeypatch.setenv("AWS_SAM_LOCAL", "true")
    for name, (*_, expected) in samples.SAMPLES.items():
        event = json.loads((EVENTS_DIR / name).read_text(encoding="utf-8"))
        assert invoke(event).status == expected, name
