"""Property-based tests (hypothesis): the signature module, then the whole handler on arbitrary requests.

The handler properties check every answer against a reference model of the README's answers table,
written here from the table (not from the receiver's code): 413 before 401 before 415 before 400,
2xx only for a valid signature over the exact bytes, and never a 500.
"""

from __future__ import annotations

import hmac
import json
import string
import uuid
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from devkit.apigw import http_api_event
from devkit.github import DEV_SECRET, github_headers
from handler.core import signature
from handler.core.outcomes import MissingSignature
from tests.conftest import Answer, Send, invoke, reset_receiver
from tests.security.support import assert_documented, expected_signature

SECRET = DEV_SECRET.encode()
MAX_BODY = 512  # a small WEBHOOK_MAX_BODY_BYTES, so generated bodies fall on both sides of it

# Deterministic in CI; no example database written into the repository.
PROPERTY = settings(max_examples=300, deadline=None, derandomize=True, database=None)
HANDLER = settings(
    PROPERTY,
    max_examples=250,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)


# ---------------------------------------------------------------------------------------------
# handler.signature


@PROPERTY
@given(body=st.binary(max_size=2048), secret=st.binary(min_size=1, max_size=64))
def test_sign_then_verify_holds_for_any_body_and_secret(body: bytes, secret: bytes) -> None:
    header = signature.sign(body, secret=secret)
    assert header == "sha256=" + hmac.new(secret, body, "sha256").hexdigest()
    presented = signature.Signature.from_headers({"x-hub-signature-256": header})
    assert signature.verify(body, signature=presented, secrets=[secret])
    # Any one of several secrets (a rotation) verifies; a list without it does not.
    assert signature.verify(body, signature=presented, secrets=[b"other", secret])
    assert not signature.verify(body, signature=presented, secrets=[secret + b"x"])


@PROPERTY
@given(body=st.binary(min_size=1, max_size=1024), data=st.data())
def test_any_single_byte_change_of_the_body_is_rejected(body: bytes, data: st.DataObject) -> None:
    presented = signature.Signature.from_headers({"x-hub-signature-256": signature.sign(body, secret=SECRET)})
    index = data.draw(st.integers(0, len(body) - 1), label="index")
    new = data.draw(st.integers(0, 255).filter(lambda b: b != body[index]), label="byte")
    changed = body[:index] + bytes([new]) + body[index + 1 :]
    assert not signature.verify(changed, signature=presented, secrets=[SECRET])


@PROPERTY
@given(body=st.binary(max_size=1024), data=st.data())
def test_any_single_byte_change_of_the_signature_is_rejected(body: bytes, data: st.DataObject) -> None:
    value = signature.sign(body, secret=SECRET).encode()
    index = data.draw(st.integers(0, len(value) - 1), label="index")
    new = data.draw(st.integers(0, 255).filter(lambda b: b != value[index]), label="byte")
    # As the HTTP layer hands it over: header bytes decoded as latin-1.
    header = (value[:index] + bytes([new]) + value[index + 1 :]).decode("latin-1")
    try:
        presented = signature.Signature.from_headers({"x-hub-signature-256": header})
    except MissingSignature:
        return  # a change that leaves only whitespace: no signature at all, also a refusal
    assert not signature.verify(body, signature=presented, secrets=[SECRET])


header_text = st.text(st.characters(blacklist_categories=["Cs"]), max_size=120)


@PROPERTY
@given(
    headers=st.dictionaries(
        st.one_of(st.sampled_from(["x-hub-signature-256", "x-hub-signature"]), header_text), header_text, max_size=6
    ),
    allow_sha1=st.booleans(),
    body=st.binary(max_size=256),
)
def test_arbitrary_header_strings_never_raise_anything_but_missing_signature(
    headers: dict[str, str], allow_sha1: bool, body: bytes
) -> None:
    try:
        presented = signature.Signature.from_headers(headers, allow_sha1=allow_sha1)
    except MissingSignature:
        # Missing means absent: an empty SHA-256 header is present (and fails), never a way to SHA-1.
        assert "x-hub-signature-256" not in headers
        assert not (allow_sha1 and "x-hub-signature" in headers)
        return
    assert presented.algorithm in ("sha256", "sha1")
    assert presented.algorithm == "sha256" or allow_sha1
    valid = signature.sign(body, secret=SECRET, algorithm=presented.algorithm)
    assert signature.verify(body, signature=presented, secrets=[SECRET]) is (presented.value == valid.encode())


# ---------------------------------------------------------------------------------------------
# The whole handler

JSON_CTS = ["application/json", "application/json; charset=utf-8", "Application/JSON", "application/json;charset=UTF-8"]
FORM_CTS = ["application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=utf-8"]
BAD_CTS = [
    "",
    "text/plain",
    "application/jsonx",
    "application/xml",
    "multipart/form-data; boundary=x",
    "application/json,application/json",  # a duplicated header, joined by API Gateway
    "application/x-www-form-urlencoded,application/json",
    "json",
]
GOOD_EVENTS = ["push", "pull_request", "ping", "workflow_run", "issue_comment"]
BAD_EVENTS = ["Push", "push,push", "pull request", "../etc", "", "x" * 80, "push\t"]
BAD_IDS = ["not a guid", "id,id", "../../etc/passwd", "", "-starts-with-dash", "a" * 101, "é"]

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20))
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
json_objects = st.dictionaries(st.text(max_size=10), json_values, max_size=6)


@st.composite
def json_texts(draw: st.DrawFn, *, objects_only: bool = False) -> str:
    value = draw(json_objects if objects_only else st.one_of(json_objects, json_values))
    return json.dumps(value, ensure_ascii=draw(st.booleans()), separators=draw(st.sampled_from([None, (",", ":")])))


@st.composite
def bodies(draw: st.DrawFn) -> tuple[bytes, str]:
    """A body and the kind of content type it was made for (``json`` or ``form``)."""
    kind = draw(
        st.sampled_from(["object"] * 6 + ["form"] * 3 + ["json", "padded", "form_fields", "bytes", "text"]),
        label="body",
    )
    if kind == "object":
        return draw(json_texts(objects_only=True)).encode(), "json"
    if kind == "json":
        return draw(json_texts()).encode(), "json"
    if kind == "padded":  # a JSON object on either side of the size limit
        size = draw(st.integers(MAX_BODY - 24, MAX_BODY + 24))
        return json.dumps({"zen": "x" * max(0, size - 11)}).encode(), "json"
    if kind == "form":
        return urlencode({"payload": draw(json_texts())}).encode(), "form"
    if kind == "form_fields":  # no payload field, or several
        fields = draw(st.lists(st.tuples(st.sampled_from(["payload", "zen", "Payload"]), json_texts()), max_size=3))
        return urlencode(fields).encode(), "form"
    if kind == "text":
        return draw(st.text(max_size=300)).encode(), draw(st.sampled_from(["json", "form"]))
    return draw(st.binary(max_size=600)), draw(st.sampled_from(["json", "form"]))


WS = st.sampled_from(["", " ", "\t", "  ", " \t"])
SIGNATURE_MODES = (
    ["valid"] * 10
    + ["whitespace"] * 4
    + [
        "other_body",
        "other_secret",
        "changed_char",
        "upper",
        "sha1_in_256",
        "joined_valid",
        "joined_mixed",
        "short",
        "long",
        "arbitrary",
        "absent",
        "empty",
    ]
)


@st.composite
def signature_headers(draw: st.DrawFn, body: bytes, ascii_only: bool) -> dict[str, str]:
    valid = expected_signature(body)
    hexdigest = valid.removeprefix("sha256=")
    # About half the requests are validly signed, so the checks after the signature get exercised too.
    mode = draw(st.sampled_from(SIGNATURE_MODES), label="signature")
    headers: dict[str, str] = {}
    if draw(st.booleans()):  # GitHub also sends the legacy SHA-1 header; it must never be enough
        headers["x-hub-signature"] = "sha1=" + hmac.new(SECRET, body, "sha1").hexdigest()
    text = st.text(string.printable if ascii_only else st.characters(blacklist_categories=["Cs"]), max_size=90)
    value = {
        "valid": lambda: valid,
        "whitespace": lambda: draw(WS) + valid + draw(WS),
        "other_body": lambda: expected_signature(body + draw(st.binary(min_size=1, max_size=4))),
        "other_secret": lambda: expected_signature(body, secret=draw(st.text(string.ascii_letters, min_size=1))),
        "changed_char": lambda: _change_one_char(draw, valid),
        "upper": lambda: "sha256=" + hexdigest.upper() if hexdigest != hexdigest.upper() else "SHA256=" + hexdigest,
        "sha1_in_256": lambda: "sha1=" + hmac.new(SECRET, body, "sha1").hexdigest(),
        "joined_valid": lambda: f"{valid},{valid}",
        "joined_mixed": lambda: f"{valid}, sha256={'0' * 64}",
        "short": lambda: valid[: -draw(st.integers(1, 64))],
        "long": lambda: valid + draw(st.sampled_from(["0", "00", "a", hexdigest])),
        "arbitrary": lambda: draw(text),
        "absent": lambda: None,
        "empty": lambda: "",
    }[mode]()
    if value is not None:
        headers["x-hub-signature-256"] = value
    return headers


def _change_one_char(draw: st.DrawFn, valid: str) -> str:
    index = draw(st.integers(0, len(valid) - 1), label="changed index")
    char = draw(st.sampled_from(string.hexdigits + "=g-x ").filter(lambda c: c != valid[index]), label="new char")
    return valid[:index] + char + valid[index + 1 :]


@st.composite
def requests(draw: st.DrawFn, *, ascii_only: bool) -> tuple[bytes, dict[str, str], bool]:
    """A request as it could reach the endpoint: body, headers (names in any casing) and base64 flag."""
    body, made_for = draw(bodies())
    # One chance in ten of a malformed value (hypothesis favours small integers, so test a middle one).
    event_name = draw(st.sampled_from(BAD_EVENTS if draw(st.integers(0, 9)) == 5 else GOOD_EVENTS))
    delivery = str(uuid.UUID(int=draw(st.integers(0, 2**128 - 1))))
    if draw(st.integers(0, 9)) == 5:
        delivery = draw(st.sampled_from([i for i in BAD_IDS if i.isascii() or not ascii_only]))
    headers = github_headers(event_name, body, secret=None, delivery_id=delivery or "placeholder")
    headers["x-github-delivery"] = delivery
    for required in ("x-github-event", "x-github-delivery"):
        if draw(st.integers(0, 24)) == 13:
            del headers[required]  # absent altogether
    kind = draw(st.integers(0, 19))
    content_types = JSON_CTS if made_for == "json" else FORM_CTS
    if kind == 10:
        del headers["content-type"]
    elif kind == 11:
        headers["content-type"] = draw(st.sampled_from(BAD_CTS))
    elif kind == 12:  # the other well-formed type: JSON sent as form, form sent as JSON
        headers["content-type"] = draw(st.sampled_from(FORM_CTS if made_for == "json" else JSON_CTS))
    else:
        headers["content-type"] = draw(st.sampled_from(content_types))
    headers.update(draw(signature_headers(body, ascii_only)))
    # Unrelated headers a proxy or an attacker may add; names never collide with the ones above.
    extra_names = st.text(string.ascii_lowercase + string.digits + "-", min_size=1, max_size=20).filter(
        lambda n: n not in headers and n not in ("host", "content-length") and not n.startswith("x-forwarded")
    )
    extra_values = st.text(string.printable if ascii_only else st.characters(blacklist_categories=["Cs"]), max_size=40)
    headers.update(draw(st.dictionaries(extra_names, extra_values, max_size=3)))
    casing = draw(st.sampled_from([str.lower, str.upper, str.title, _alternate]))
    cased = {casing(name): value for name, value in headers.items()}
    return body, cased, draw(st.booleans())


def _alternate(name: str) -> str:
    return "".join(c.upper() if i % 2 else c for i, c in enumerate(name))


def _header(headers: dict[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def model(body: bytes, headers: dict[str, str]) -> tuple[int, set[str]]:
    """The README's answers table for this request: a status and the codes (or statuses) it allows."""
    if len(body) > MAX_BODY:
        return 413, {"payload_too_large"}
    presented = _header(headers, "x-hub-signature-256")
    if presented is None:
        return 401, {"missing_signature"}
    if presented.strip(" \t") != expected_signature(body):
        # A value of only whitespace is no signature: either name for it is fair.
        return 401, {"signature_mismatch"} if presented.strip(" \t") else {"signature_mismatch", "missing_signature"}
    media = (_header(headers, "content-type") or "").split(";", 1)[0].strip().lower()
    if media not in ("application/json", "application/x-www-form-urlencoded"):
        return 415, {"unsupported_media_type"}
    header_codes = set()
    for name, valid in (("x-github-event", GOOD_EVENTS), ("x-github-delivery", None)):
        value = _header(headers, name)
        if not value:
            header_codes.add("missing_header")
        elif value not in (valid or [value]) or (valid is None and not _is_guid(value)):
            header_codes.add("invalid_header")
    if header_codes:
        return 400, header_codes
    if _payload(body, media) is None:
        return 400, {"malformed_payload"}
    return 202, {"accepted"}


def _is_guid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


def _payload(body: bytes, media: str) -> dict[str, Any] | None:
    """A JSON object the bus can carry, or a form with exactly one ``payload`` field holding one; else None."""
    try:
        if media == "application/x-www-form-urlencoded":
            fields = parse_qsl(body.decode("ascii"), keep_blank_values=True, errors="strict")
            values = [value for key, value in fields if key == "payload"]
            if len(values) != 1:
                return None
            payload = json.loads(values[0])
        else:
            payload = json.loads(body.decode("utf-8-sig"))  # UTF-8 only (RFC 8259), a BOM tolerated
        # What the bus can carry: the payload written back as strict JSON in UTF-8 (no NaN or
        # infinity, no lone surrogate).
        json.dumps(payload, allow_nan=False, ensure_ascii=False).encode("utf-8")
    except (ValueError, RecursionError):  # UnicodeError is a ValueError
        return None
    return payload if isinstance(payload, dict) else None


def check(answer: Answer, body: bytes, headers: dict[str, str]) -> None:
    assert_documented(answer)
    event(f"{answer.status} {answer.body.get('error') or answer.body.get('status')}")  # --hypothesis-show-statistics
    status, codes = model(body, headers)
    # The security property first, on its own: 2xx only for a valid signature over these exact bytes.
    if 200 <= answer.status < 300:
        presented = _header(headers, "x-hub-signature-256") or ""
        assert presented.strip(" \t") == expected_signature(body), "accepted without a valid signature"
    assert answer.status == status, (answer.status, answer.body, status, codes)
    assert (answer.body.get("error") or answer.body.get("status")) in codes, (answer.body, codes)
    if status == 202:
        assert answer.body["delivery_id"] == _header(headers, "x-github-delivery")


@pytest.fixture
def small_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOK_MAX_BODY_BYTES", str(MAX_BODY))
    reset_receiver()


@HANDLER
@given(data=st.data())
def test_any_request_gets_its_documented_answer_and_2xx_only_with_a_valid_signature(
    send: Send, small_limit: None, request: pytest.FixtureRequest, data: st.DataObject
) -> None:
    via_http = request.node.callspec.params["send"] == "http"
    body, headers, base64_encoded = data.draw(requests(ascii_only=via_http))
    if not via_http and not base64_encoded:
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            base64_encoded = True  # API Gateway base64-encodes a body that is not text
    answer = send(body, headers, base64_encoded=base64_encoded)
    check(answer, body, headers)


@HANDLER
@given(data=st.data())
def test_lambda_event_with_header_names_in_any_casing_gets_its_documented_answer(
    small_limit: None, data: st.DataObject
) -> None:
    """HTTP API lower-cases header names, but `sam local` and hand-made events do not: same answers."""
    body, headers, base64_encoded = data.draw(requests(ascii_only=False))
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        base64_encoded = True
    event = http_api_event(body, {}, base64_encoded=base64_encoded)
    event["headers"].update(headers)  # names kept exactly as drawn
    check(invoke(event), body, headers)
