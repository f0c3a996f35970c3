"""The bad-input corpus (tests/security/corpus/*.json), through the Lambda handler and the HTTP app.

Each case names a body, header changes on top of GitHub's signed headers, optionally a small body
limit, a base64 flag or changes to the Lambda event, and the answer the README's table documents.
Cases that change the Lambda event run through the handler only; every other case runs through both.

A case's fields:
  body         {"sample": "push", "form": bool} | {"text": "..."} | {"base64": "..."}
               | {"json_of_size": n, "fill": "x"} | {"form_of_size": n} | {"nested": depth, "inner": "array"}
  sign_over    a body spec: sign these bytes instead of the body
  form         send application/x-www-form-urlencoded instead of application/json
  headers      {name: value or null}, replacing GitHub's (case-insensitively); values may use
               $signature, $hex, $HEX, $hex_short, $hex_nonhex, $sha1_hex (over sign_over)
  header_case  title | upper | alternate: every header name so cased, kept as sent in the Lambda event
  base64       the Lambda event carries the body base64-encoded (the HTTP app gets the raw bytes)
  env          receiver settings for this case (WEBHOOK_MAX_BODY_BYTES)
  lambda_event {"delete": [dotted paths], "set": {dotted path: value}, "base64_suffix": "..."}
  expect       {"status": 4xx/5xx, "error": code} or {"status": 202, "accepted": "accepted"}
  xfail        "BUG: ..." when the receiver disagrees with the README (strict: the test fails once fixed)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest

from devkit.apigw import http_api_event
from devkit.github import DEV_SECRET, encode_body, github_headers, sample_payload
from tests.conftest import BUS, Answer, Pipeline, Send, inject, invoke, reset_receiver
from tests.security.support import REFUSALS, assert_documented

CORPUS = Path(__file__).resolve().parent / "corpus"


def load() -> list[dict[str, Any]]:
    cases = []
    for path in sorted(CORPUS.glob("*.json")):
        for case in json.loads(path.read_text(encoding="utf-8"))["cases"]:
            cases.append({**case, "id": f"{path.stem}/{case['name']}"})
    return cases


CASES = load()


def params(cases: list[dict[str, Any]]) -> list[Any]:
    marks = []
    out = []
    for case in cases:
        marks = [pytest.mark.xfail(strict=True, reason=case["xfail"])] if "xfail" in case else []
        out.append(pytest.param(case, id=case["id"], marks=marks))
    return out


# ---------------------------------------------------------------------------------------------
# Building a request from a case


def make_body(spec: dict[str, Any]) -> bytes:
    if "sample" in spec:
        return encode_body(sample_payload(spec["sample"]), form=spec.get("form", False))
    if "text" in spec:
        return spec["text"].encode()
    if "base64" in spec:
        return base64.b64decode(spec["base64"], validate=True)
    if "json_of_size" in spec:  # {"zen":"xxx…"} of exactly this many bytes
        size, fill = spec["json_of_size"], spec.get("fill", "x")
        head, tail = b'{"zen":"', b'"}'
        room = size - len(head) - len(tail)
        unit = fill.encode()
        text = unit * (room // len(unit)) + b"x" * (room % len(unit))
        body = head + text + tail
        assert len(body) == size
        return body
    if "form_of_size" in spec:  # payload=<{"zen":"xxx…"}> of exactly this many bytes
        size = spec["form_of_size"]
        empty = urlencode({"payload": '{"zen":""}'}).encode()
        body = urlencode({"payload": '{"zen":"' + "x" * (size - len(empty)) + '"}'}).encode()
        assert len(body) == size
        return body
    if "nested" in spec:
        depth = spec["nested"]
        if spec.get("inner") == "array":
            return b'{"a":' + b"[" * depth + b"]" * depth + b"}"
        return b'{"a":' * depth + b"1" + b"}" * depth
    raise ValueError(f"unknown body spec {spec}")


_TOKEN = re.compile(r"\$(signature|sha1_hex|hex_short|hex_nonhex|HEX|hex)")


def tokens(signed_bytes: bytes) -> dict[str, str]:
    digest = hmac.new(DEV_SECRET.encode(), signed_bytes, hashlib.sha256).hexdigest()
    return {
        "signature": "sha256=" + digest,
        "hex": digest,
        "HEX": digest.upper(),
        "hex_short": digest[:-1],
        "hex_nonhex": digest[:-1] + "g",
        "sha1_hex": hmac.new(DEV_SECRET.encode(), signed_bytes, hashlib.sha1).hexdigest(),
    }


def _cased(name: str, how: str | None) -> str:
    if how == "title":
        return "-".join(part.capitalize() for part in name.split("-"))
    if how == "upper":
        return name.upper()
    if how == "alternate":
        return "".join(c.upper() if i % 2 else c for i, c in enumerate(name))
    return name


def build(case: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    """The exact body and headers of the case's request, signed with the development secret."""
    body = make_body(case["body"])
    values = tokens(make_body(case["sign_over"]) if "sign_over" in case else body)
    form = case.get("form", False)
    headers = github_headers("push", body, secret=None, delivery_id=str(uuid.uuid4()), form=form)
    headers["x-hub-signature-256"] = "$signature"
    headers["x-hub-signature"] = "sha1=$sha1_hex"
    for name, value in case.get("headers", {}).items():
        for existing in [key for key in headers if key.lower() == name.lower()]:
            del headers[existing]
        if value is not None:
            headers[name] = value
    headers = {name: _TOKEN.sub(lambda m: values[m.group(1)], value) for name, value in headers.items()}
    how = case.get("header_case")
    return body, {_cased(name, how): value for name, value in headers.items()}


def lambda_event(case: dict[str, Any], body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    """A real-shaped HTTP API v2 event for the case, then the case's changes to it."""
    change = case.get("lambda_event", {})
    base64_encoded = case.get("base64", False) or "base64_suffix" in change
    if case.get("header_case"):
        event = http_api_event(body, {}, base64_encoded=base64_encoded)
        event["headers"].update(headers)  # names exactly as sent, not lower-cased
    else:
        event = http_api_event(body, headers, base64_encoded=base64_encoded)
    event["body"] += change.get("base64_suffix", "")
    for path in change.get("delete", []):
        *parents, last = path.split(".")
        target = event
        for key in parents:
            target = target[key]
        del target[last]
    for path, value in change.get("set", {}).items():
        *parents, last = path.split(".")
        target = event
        for key in parents:
            target = target[key]
        target[last] = value
    return event


def check(case: dict[str, Any], answer: Answer, headers: dict[str, str]) -> None:
    expect = case["expect"]
    assert_documented(answer)
    assert answer.status == expect["status"], (answer.status, answer.body)
    if expect["status"] == 202:
        delivery = next(value for name, value in headers.items() if name.lower() == "x-github-delivery")
        assert answer.body == {"status": expect["accepted"], "delivery_id": delivery}
    else:
        assert answer.body["error"] == expect["error"], answer.body


def apply_env(case: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in case.get("env", {}).items():
        monkeypatch.setenv(name, value)
    reset_receiver()


# ---------------------------------------------------------------------------------------------
# The corpus itself


def test_corpus_is_well_formed_and_covers_the_issue() -> None:
    names = [case["id"] for case in CASES]
    assert len(names) == len(set(names))
    for case in CASES:
        expect = case["expect"]
        # Every expectation is a row of the README's answers table.
        if expect["status"] == 202:
            assert expect["accepted"] == "accepted"
        else:
            assert expect["error"] in REFUSALS[expect["status"]], case["id"]
        assert "xfail" not in case or case["xfail"].startswith("BUG: ")
    required = {
        "signature/empty_body_unsigned",
        "body/empty_body_signed",
        "signature/missing_signature_header",
        "signature/duplicated_signature_headers_joined",
        "signature/sha1_value_in_the_256_header",
        "signature/wrong_length_one_short",
        "signature/wrong_length_one_long",
        "signature/non_hex_digit",
        "signature/upper_case_hex",
        "signature/surrounding_spaces",
        "signature/valid_signature_over_a_different_body",
        "body/signed_invalid_json",
        "body/form_without_payload",
        "body/form_with_two_payloads",
        "body/json_body_sent_as_form",
        "lambda_event/invalid_base64_body",
        "body/non_utf8_bytes_signed",
        "size/json_body_exactly_at_the_limit",
        "size/json_body_one_byte_over_the_limit",
        "body/deeply_nested_json_signed",
        "headers/header_names_in_title_case",
        "lambda_event/missing_request_context",
    }
    assert required <= set(names), required - set(names)


@pytest.mark.parametrize("case", params(CASES))
def test_corpus_case_through_the_lambda_handler(case: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    apply_env(case, monkeypatch)
    body, headers = build(case)
    answer = invoke(lambda_event(case, body, headers))
    check(case, answer, headers)


HTTP_CASES = [case for case in CASES if "lambda_event" not in case]


@pytest.mark.parametrize("send", ["http"], indirect=True)
@pytest.mark.parametrize("case", params(HTTP_CASES))
def test_corpus_case_through_the_http_app(case: dict[str, Any], send: Send, monkeypatch: pytest.MonkeyPatch) -> None:
    apply_env(case, monkeypatch)
    body, headers = build(case)
    check(case, send(body, headers), headers)


def test_corpus_hands_off_exactly_the_accepted_cases(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the bus, archive and deduplication on: a refused case leaves nothing anywhere, and an
    accepted one is forwarded, archived and recorded exactly once."""
    ran = 0
    for case in CASES:
        if "xfail" in case:
            continue
        with monkeypatch.context() as scoped:
            apply_env(case, scoped)
            body, headers = build(case)
            answer = invoke(lambda_event(case, body, headers))
        check(case, answer, headers)
        forwarded, archived, records = pipeline.forwarded(), pipeline.archived(), pipeline.records()
        if answer.status == 202:
            [event] = forwarded
            assert event["detail"]["delivery_id"] == answer.body["delivery_id"], case["id"]
            assert len(archived) == ran + 1, case["id"]
            assert len(records) == ran + 1, case["id"]
            ran += 1
        else:
            assert forwarded == [], case["id"]
            assert len(archived) == ran, case["id"]
            assert len(records) == ran, case["id"]
    assert ran >= 10
    reset_receiver()


def parser_refuses_nesting_from() -> int:
    """The shallowest ``{"a":{"a":…}}`` nesting the receiver's parser (orjson) refuses: measured, not
    assumed (1,025 levels in orjson 3.11). Below it, the entry is written by orjson up to 254 levels and
    by ``json`` beyond (whose own limit depends on the interpreter: a little under 1,000 levels on 3.11,
    about 10,000 on 3.13, the Lambda runtime)."""

    def refused(depth: int) -> bool:
        try:
            orjson.loads(make_body({"nested": depth}))
        except orjson.JSONDecodeError:
            return True
        return False

    accepted, refusing = 1, 1_000_000
    assert refused(refusing), "orjson parsed a million levels of nesting: no limit to test against"
    while refusing - accepted > 1:
        middle = (accepted + refusing) // 2
        accepted, refusing = (accepted, middle) if refused(middle) else (middle, refusing)
    return refusing


def test_nesting_the_parser_accepts_is_forwarded_and_deeper_nesting_is_400_never_500(
    send: Send, aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every depth from 300 levels below the parser's limit to 100 past it (725-1,125): a payload the
    receiver accepts is handed off (202), one it will not take is malformed (400), and once refused every
    deeper one is too; no depth is a 500. Past orjson's 254 levels the entry is written by ``json``, which
    on 3.11 refuses a little shallower than the parser (its frames count against the recursion limit),
    but within the sweep: the first depths are forwarded. PutEvents is answered at the boundary, so only
    the receiver's own code is under test."""
    limit = parser_refuses_nesting_from()
    depths = range(limit - 300, limit + 100)
    monkeypatch.setenv("EVENT_BUS_NAME", BUS)
    reset_receiver()
    put_events = inject("before-call.events.PutEvents", {"FailedEntryCount": 0, "Entries": [{"EventId": "1"}]})
    answers = {}
    for depth in depths:
        body = make_body({"nested": depth})
        answer = send(body, github_headers("push", body))
        answers[depth] = (answer.status, answer.body.get("error") or answer.body.get("status"))
    assert {depth: a for depth, a in answers.items() if a not in ((202, "accepted"), (400, "malformed_payload"))} == {}
    assert len(put_events) == sum(a == (202, "accepted") for a in answers.values())
    refused = [depth for depth, a in answers.items() if a == (400, "malformed_payload")]
    assert refused, f"nothing refused up to {depths.stop - 1} levels, past the parser's limit of {limit}"
    assert refused == list(range(refused[0], depths.stop))
    assert refused[0] > depths.start, f"refused from {refused[0]} levels, 300 below the parser's limit of {limit}"
