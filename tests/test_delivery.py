"""handler.delivery: content types, form bodies, non-ASCII JSON, headers, the Delivery value."""

from __future__ import annotations

import dataclasses

import pytest

from devkit.github import encode_body, github_headers, sample_payload
from handler.core.delivery import parse_delivery
from handler.core.outcomes import InvalidHeader, MalformedPayload, MissingHeader, UnsupportedMediaType


def test_json_delivery_carries_headers_payload_and_exact_bytes() -> None:
    payload = sample_payload("pull_request")
    body = encode_body(payload)
    headers = github_headers("pull_request", body, delivery_id="d0c1a4e0-0000-11f0-8000-000000000001")
    delivery = parse_delivery(headers, body)
    assert delivery.event == "pull_request"
    assert delivery.action == "opened"
    assert delivery.delivery_id == "d0c1a4e0-0000-11f0-8000-000000000001"
    assert delivery.hook_id == headers["x-github-hook-id"]
    assert delivery.installation_target_type == "repository"
    assert delivery.installation_target_id == headers["x-github-hook-installation-target-id"]
    assert delivery.repository == payload["repository"]["full_name"]
    assert delivery.payload == payload
    assert delivery.body is body
    with pytest.raises(dataclasses.FrozenInstanceError):
        delivery.event = "push"  # type: ignore[misc]


def test_payload_is_not_in_repr() -> None:
    body = encode_body(sample_payload("push"))
    assert "José" not in repr(parse_delivery(github_headers("push", body), body))


def test_non_ascii_json_round_trips() -> None:
    payload = sample_payload("push")
    body = encode_body(payload)
    assert not body.isascii()
    assert parse_delivery(github_headers("push", body), body).payload == payload


def test_form_encoded_payload_field_is_parsed() -> None:
    payload = sample_payload("push")
    body = encode_body(payload, form=True)
    delivery = parse_delivery(github_headers("push", body, form=True), body)
    assert delivery.payload == payload
    assert delivery.content_type == "application/x-www-form-urlencoded"
    assert delivery.body == body


@pytest.mark.parametrize("payload", [{}, {"repository": "octo-org/x"}, {"repository": {"full_name": 7}}])
def test_repository_is_none_unless_the_payload_names_one(payload: dict) -> None:
    body = encode_body(payload)
    assert parse_delivery(github_headers("installation", body), body).repository is None


def test_ping_has_no_action() -> None:
    body = encode_body(sample_payload("ping"))
    assert parse_delivery(github_headers("ping", body), body).action is None


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "Application/JSON"])
def test_content_type_parameters_and_case_are_accepted(content_type: str) -> None:
    body = b'{"zen": "Keep it logically awesome."}'
    headers = github_headers("ping", body) | {"content-type": content_type}
    assert parse_delivery(headers, body).payload["zen"].startswith("Keep")


@pytest.mark.parametrize("content_type", [None, "", "text/plain", "multipart/form-data", "application/jsonp"])
def test_other_content_types_are_unsupported(content_type: str | None) -> None:
    headers = github_headers("ping", b"{}")
    headers.pop("content-type")
    if content_type is not None:
        headers["content-type"] = content_type
    with pytest.raises(UnsupportedMediaType):
        parse_delivery(headers, b"{}")


@pytest.mark.parametrize("header", ["x-github-event", "x-github-delivery"])
def test_missing_github_headers(header: str) -> None:
    headers = github_headers("ping", b"{}")
    del headers[header]
    with pytest.raises(
        MissingHeader, match=header.replace("x-github-", "X-GitHub-").title().replace("Github", "GitHub")
    ):
        parse_delivery(headers, b"{}")


@pytest.mark.parametrize(
    ("header", "value"),
    [("x-github-event", "push/../../etc"), ("x-github-event", "Push Event"), ("x-github-delivery", "a b")],
)
def test_github_headers_with_invalid_values(header: str, value: str) -> None:
    headers = github_headers("ping", b"{}") | {header: value}
    with pytest.raises(InvalidHeader):
        parse_delivery(headers, b"{}")


@pytest.mark.parametrize(
    ("body", "form"),
    [
        (b"{not json", False),
        (b"[1, 2, 3]", False),
        (b'"a string"', False),
        (b"\xff\xfe\x00{", False),
        (b"", False),
        (b"[" * 100_000 + b"]" * 100_000, False),
        (b"other=1", True),
        (b"payload=%7B%7D&payload=%7B%7D", True),
        (b"payload=not-json", True),
        (b'{"zen": "json sent as a form"}', True),
    ],
)
def test_malformed_payloads(body: bytes, form: bool) -> None:
    with pytest.raises(MalformedPayload):
        parse_delivery(github_headers("ping", body, form=form), body)


@pytest.mark.parametrize(
    ("text", "long_integer"),
    [
        (b'{"a":12345678901234567890}', True),
        (b'{"a": -9223372036854775809}', True),
        (b'{"a":[1,12345678901234567890]}', True),
        (b'{"m":"id 12345678901234567890"}', True),  # in a string, after a space: read exactly, to be safe
        (b'{"sha":"ab12345678901234567890cd"}', False),  # a commit SHA's hex: about one in 300 has such a run
        (b'{"sha":"1234567890123456789012345678901234567890"}', False),
        (b'{"a":1.12345678901234567890}', False),  # a fraction: a double either way
        (b'{"a":123456789012345678}', False),  # 18 digits: always 64 bits
    ],
)
def test_only_a_run_of_digits_that_may_be_an_integer_beyond_64_bits_takes_the_exact_parser(
    text: bytes, long_integer: bool
) -> None:
    from handler.core.delivery import _may_have_a_long_integer

    assert _may_have_a_long_integer(text) is long_integer
    assert _may_have_a_long_integer(text.decode()) is long_integer  # a form body's payload field
