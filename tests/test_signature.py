"""handler.signature: HMAC over exact bytes, constant-time compare, rotation, SHA-1 only on request."""

from __future__ import annotations

import pytest

from handler.core.outcomes import MissingSignature
from handler.core.signature import Signature, sign, verify

# GitHub's published test vector (docs: "Validating webhook deliveries").
VECTOR_SECRET = b"It's a Secret to Everybody"
VECTOR_BODY = b"Hello, World!"
VECTOR_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def sig(value: str, algorithm: str = "sha256") -> Signature:
    return Signature(algorithm, value.encode())


def test_github_published_test_vector() -> None:
    assert sign(VECTOR_BODY, secret=VECTOR_SECRET) == VECTOR_SIGNATURE
    assert verify(VECTOR_BODY, signature=sig(VECTOR_SIGNATURE), secrets=[VECTOR_SECRET])


def test_any_single_byte_change_to_the_body_is_rejected() -> None:
    for i in range(len(VECTOR_BODY)):
        tampered = bytearray(VECTOR_BODY)
        tampered[i] ^= 0x01
        assert not verify(bytes(tampered), signature=sig(VECTOR_SIGNATURE), secrets=[VECTOR_SECRET])


def test_any_single_character_change_to_the_signature_is_rejected() -> None:
    for i in range(len("sha256="), len(VECTOR_SIGNATURE)):
        c = VECTOR_SIGNATURE[i]
        changed = VECTOR_SIGNATURE[:i] + ("0" if c != "0" else "1") + VECTOR_SIGNATURE[i + 1 :]
        assert not verify(VECTOR_BODY, signature=sig(changed), secrets=[VECTOR_SECRET])


@pytest.mark.parametrize(
    "value",
    [
        VECTOR_SIGNATURE.upper(),  # GitHub sends lower-case hex; nothing else is accepted
        VECTOR_SIGNATURE.replace("sha256=", "sha1="),
        VECTOR_SIGNATURE.removeprefix("sha256="),
        VECTOR_SIGNATURE[:-2],
        VECTOR_SIGNATURE + "00",
        f"{VECTOR_SIGNATURE},{VECTOR_SIGNATURE}",  # API Gateway joins duplicate headers with a comma
        "sha256=" + "zz" * 32,
        "sha256=ünïcode",
        "",
    ],
)
def test_malformed_signatures_are_rejected_without_error(value: str) -> None:
    assert not verify(VECTOR_BODY, signature=sig(value), secrets=[VECTOR_SECRET])


def test_surrounding_whitespace_in_the_header_is_not_part_of_the_value() -> None:
    presented = Signature.from_headers({"x-hub-signature-256": f"  {VECTOR_SIGNATURE} "})
    assert verify(VECTOR_BODY, signature=presented, secrets=[VECTOR_SECRET])


def test_rotation_accepts_either_secret_and_nothing_else() -> None:
    old, new = b"old-secret", b"new-secret"
    for secret in (old, new):
        assert verify(VECTOR_BODY, signature=sig(sign(VECTOR_BODY, secret=secret)), secrets=[new, old])
    assert not verify(VECTOR_BODY, signature=sig(sign(VECTOR_BODY, secret=b"other")), secrets=[new, old])
    assert not verify(VECTOR_BODY, signature=sig(VECTOR_SIGNATURE), secrets=[])


def test_sha1_header_is_ignored_unless_enabled() -> None:
    headers = {"x-hub-signature": sign(VECTOR_BODY, secret=VECTOR_SECRET, algorithm="sha1")}
    with pytest.raises(MissingSignature):
        Signature.from_headers(headers)
    presented = Signature.from_headers(headers, allow_sha1=True)
    assert presented.algorithm == "sha1"
    assert verify(VECTOR_BODY, signature=presented, secrets=[VECTOR_SECRET])


def test_sha256_wins_over_sha1_so_a_bad_sha256_cannot_be_downgraded() -> None:
    headers = {
        "x-hub-signature-256": "sha256=" + "0" * 64,
        "x-hub-signature": sign(VECTOR_BODY, secret=VECTOR_SECRET, algorithm="sha1"),
    }
    presented = Signature.from_headers(headers, allow_sha1=True)
    assert presented.algorithm == "sha256"
    assert not verify(VECTOR_BODY, signature=presented, secrets=[VECTOR_SECRET])


@pytest.mark.parametrize("headers", [{}, {"x-hub-signature-256": None}])
def test_absent_header_is_missing(headers: dict) -> None:
    with pytest.raises(MissingSignature):
        Signature.from_headers(headers)


def test_empty_sha256_header_is_a_mismatch_not_a_way_to_sha1() -> None:
    headers = {
        "x-hub-signature-256": "",
        "x-hub-signature": sign(VECTOR_BODY, secret=VECTOR_SECRET, algorithm="sha1"),
    }
    presented = Signature.from_headers(headers, allow_sha1=True)
    assert presented.algorithm == "sha256"
    assert not verify(VECTOR_BODY, signature=presented, secrets=[VECTOR_SECRET])
