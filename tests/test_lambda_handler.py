"""The Lambda entry point itself: events/ samples, events that are not HTTP API v2, base64 envelopes."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from devkit import events as samples
from devkit.apigw import http_api_event
from tests.conftest import Logs, invoke, signed

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


@pytest.mark.parametrize("bad", ["not base64!", "YWJjZA=", "YWJjZA", "@@@@", "YW Jj", "YWJj=", "YWJjZB=="])
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
    assert any(line["message"] == "could not process the Lambda event" for line in logs.records)


def test_log_event_stays_off_even_when_powertools_is_told_to_log_events(
    logs: Logs, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_LOGGER_LOG_EVENT", "true")
    body, headers = signed("push", secret="forged")
    assert invoke(http_api_event(body, headers)).status == 401
    assert headers["x-hub-signature-256"] not in logs.text
    assert "refs/heads/main" not in logs.text


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
