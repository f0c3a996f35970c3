"""Poison deliveries: validly signed requests that used to fail on every redelivery (a 500 or a 503)
and so could never be accepted or refused. Each now gets a clear answer, through both transports,
with the whole pipeline (archive, bus, deduplication) on."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from devkit.github import github_headers, sample_payload
from handler.core.archive import ARCHIVED_HEADERS, METADATA_KEY_PREFIX, METADATA_MAX_BYTES, archived_metadata
from handler.core.report import LOG_VALUE_MAX_CHARS
from tests.conftest import BUCKET, Logs, Pipeline, Send, signed

# Bodies the bus cannot carry as valid JSON. Each is a JSON object that json.loads accepts.
UNFORWARDABLE = {
    "lone surrogate escape": b'{"action": "opened", "title": "\\ud800"}',
    "lone low surrogate escape": b'{"title": "x\\udfff"}',
    "surrogate escape in a key": b'{"\\udbff": 1}',
    "encoded surrogate bytes": b'{"title": "\xed\xa0\x80"}',
    "invalid UTF-8": b'{"title": "\xff\xfe"}',
    "UTF-16 body": '{"title": "x"}'.encode("utf-16-le"),
    "NaN": b'{"number": NaN}',
    "Infinity": b'{"number": Infinity}',
    "-Infinity": b'{"nested": {"list": [1, -Infinity]}}',
    "overflow to infinity": b'{"number": 1e999}',
    "negative overflow": b'{"number": -1.5E+400}',
}


# A form body is ASCII: its payload field can carry everything above percent-escaped, except text that
# is not UTF-8 at all (that is a form body refused as such, and the JSON cases already cover it).
FORM_CASES = [name for name in UNFORWARDABLE if name not in ("invalid UTF-8", "UTF-16 body")]
CASES = [(name, False) for name in UNFORWARDABLE] + [(name, True) for name in FORM_CASES]


@pytest.mark.parametrize(("case", "form"), CASES, ids=[f"{name}-{'form' if form else 'json'}" for name, form in CASES])
def test_a_payload_the_bus_cannot_carry_is_400_and_leaves_nothing(
    send: Send, pipeline: Pipeline, logs: Logs, case: str, form: bool
) -> None:
    body = UNFORWARDABLE[case]
    if form:
        body = b"payload=" + quote(body, safe="").encode()
    # Base64, as API Gateway delivers a body that is not valid UTF-8 text.
    answer = send(body, github_headers("pull_request", body, form=form), base64_encoded=True)
    assert (answer.status, answer.body["error"]) == (400, "malformed_payload")
    assert "\n" not in answer.body["message"]
    # Refused before anything is written: the same answer on every redelivery.
    assert pipeline.archived() == []
    assert pipeline.records() == []
    assert pipeline.forwarded() == []
    [line] = logs.records
    assert line["error"] == "malformed_payload"


def test_an_unforwardable_payload_above_the_entry_limit_is_refused_too(send: Send, pipeline: Pipeline) -> None:
    """A claim check would carry it without serialising it: the rule must not depend on the size."""
    filler = "x" * 300_000
    body = b'{"number": NaN, "filler": "' + filler.encode() + b'"}'
    answer = send(body, signed("push", payload=body)[1])
    assert (answer.status, answer.body["error"]) == (400, "malformed_payload")
    assert pipeline.archived() == []


@pytest.mark.parametrize("case", list(UNFORWARDABLE))
def test_both_parsers_refuse_what_the_bus_cannot_carry(case: str) -> None:
    """orjson reads every payload but one with a run of 19 digits (an integer that may not fit 64 bits),
    which the exact parser reads: each refuses the same bodies."""
    from handler.core.delivery import parse_delivery
    from handler.core.outcomes import MalformedPayload

    body = UNFORWARDABLE[case]
    long_number = body.replace(b"{", b'{"id": 12345678901234567890123, ', 1) if body.startswith(b"{") else body
    for text in {body, long_number}:
        with pytest.raises(MalformedPayload):
            parse_delivery(github_headers("issues", text), text)


def test_integers_beyond_64_bits_are_forwarded_exactly(send: Send, pipeline: Pipeline) -> None:
    """orjson would read them as doubles (1e+30): such a body is read by the exact parser instead."""
    body = b'{"action": "opened", "big": 123456789012345678901234567890, "low": -9223372036854775809}'
    assert send(body, signed("issues", payload=body)[1]).status == 202
    [event] = pipeline.forwarded()
    assert event["detail"]["payload"] == {
        "action": "opened",
        "big": 123456789012345678901234567890,
        "low": -9223372036854775809,
    }


def test_valid_escapes_and_extreme_finite_numbers_are_forwarded_exactly(send: Send, pipeline: Pipeline) -> None:
    body = b'{"action": "opened", "title": "\\ud83d\\ude00 \\u00e9", "big": 1.7976931348623157e308, "tiny": 1e-999}'
    answer = send(body, signed("issues", payload=body)[1])
    assert answer.status == 202
    [event] = pipeline.forwarded()
    assert event["detail"]["payload"] == {
        "action": "opened",
        "title": "\U0001f600 é",
        "big": 1.7976931348623157e308,
        "tiny": 0.0,
    }
    [key] = pipeline.archived()
    assert pipeline.object(BUCKET, key)["Body"].read() == body  # the exact bytes GitHub signed


LONG = "h" * 5000


def test_long_headers_are_cut_to_fit_s3_metadata_and_the_delivery_is_accepted(send: Send, pipeline: Pipeline) -> None:
    """Headers are not signed: anyone replaying a delivery can make them long. moto accepts more than
    S3's 2 KB, so the size is checked here, as S3 counts it (and with the x-amz-meta- prefix)."""
    body, headers = signed("push")
    for name in ARCHIVED_HEADERS:
        if name not in ("x-github-event", "x-github-delivery", "content-type"):
            headers[name] = LONG
    headers["content-type"] = "application/json; charset=utf-8; x=" + LONG
    answer = send(body, headers)
    assert answer.status == 202
    [key] = pipeline.archived()
    metadata = pipeline.object(BUCKET, key)["Metadata"]
    assert metadata["x-github-delivery"] == headers["x-github-delivery"]  # the most important ones stay
    assert metadata["x-github-event"] == "push"
    size = sum(len(METADATA_KEY_PREFIX + name) + len(value) for name, value in metadata.items())
    assert size <= METADATA_MAX_BYTES


@pytest.mark.parametrize("length", [0, 1, 100, 256, 257, 1000, 3000])
def test_metadata_never_exceeds_two_kilobytes_whatever_the_header_lengths(length: int) -> None:
    headers = dict.fromkeys(ARCHIVED_HEADERS, "v" * length)
    headers["x-github-delivery"] = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
    metadata = archived_metadata(headers)
    size = sum(len((METADATA_KEY_PREFIX + name).encode()) + len(value.encode()) for name, value in metadata.items())
    assert size <= METADATA_MAX_BYTES
    assert metadata["x-github-delivery"] == headers["x-github-delivery"]
    if length and length * len(ARCHIVED_HEADERS) < 1500:
        assert set(metadata) == set(ARCHIVED_HEADERS)  # nothing is dropped while everything fits


def test_huge_payload_values_are_capped_in_every_log_line(send: Send, pipeline: Pipeline, logs: Logs) -> None:
    payload = sample_payload("pull_request")
    payload["action"] = "a" * 300_000
    payload["repository"]["full_name"] = "r" * 300_000
    body, headers = signed("pull_request", payload=json.dumps(payload).encode())
    assert send(body, headers).status == 202
    assert logs.records
    for line in logs.text.splitlines():
        assert len(line) < 4000
    [accepted] = [record for record in logs.records if record["message"] == "delivery accepted"]
    assert accepted["action"] == "a" * LOG_VALUE_MAX_CHARS + "…"
    assert accepted["repository"] == "r" * LOG_VALUE_MAX_CHARS + "…"
