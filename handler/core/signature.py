"""GitHub webhook signatures (``X-Hub-Signature-256``), sans I/O.

Standard library only: give it the exact bytes GitHub sent, the header values
and the candidate secrets. Nothing here reads the body's meaning.

>>> body = b"Hello, World!"
>>> sig = sign(body, secret=b"It's a Secret to Everybody")
>>> presented = Signature.from_headers({"x-hub-signature-256": sig})
>>> verify(body, signature=presented, secrets=[b"It's a Secret to Everybody"])
True
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from handler.core.headers import SIGNATURE_256, SIGNATURE_SHA1
from handler.core.outcomes import MissingSignature

_ALGORITHMS = {"sha256": hashlib.sha256, "sha1": hashlib.sha1}


class Signature(NamedTuple):
    """A signature as presented by the sender: the algorithm and the raw header value."""

    algorithm: str
    value: bytes

    @classmethod
    def from_headers(cls, headers: Mapping[str, str], *, allow_sha1: bool = False) -> Signature:
        """Pick the header to check: SHA-256 always wins; SHA-1 only when explicitly allowed.

        ``headers`` must have lower-case keys (as API Gateway sends them) or be case-insensitive.
        A SHA-256 header that fails never falls back to SHA-1 (no downgrade).
        """
        for name, algorithm in ((SIGNATURE_256, "sha256"), (SIGNATURE_SHA1, "sha1")):
            if algorithm == "sha1" and not allow_sha1:
                break
            value = headers.get(name)
            # Present, even empty, counts: an empty SHA-256 header must not let SHA-1 through.
            if value is not None:
                # Header values are compared as bytes: compare_digest rejects non-ASCII str.
                return cls(algorithm, value.strip().encode("utf-8", "replace"))
        raise MissingSignature()


def sign(body: bytes, *, secret: bytes, algorithm: str = "sha256") -> str:
    """The header value GitHub would send for ``body``: ``"sha256=" + hex HMAC``."""
    digest = hmac.new(secret, body, _ALGORITHMS[algorithm]).hexdigest()
    return f"{algorithm}={digest}"


def verify(body: bytes, *, signature: Signature, secrets: Iterable[bytes]) -> bool:
    """True when ``signature`` is the HMAC of ``body`` under any of ``secrets``.

    Several secrets are accepted so a rotation can overlap. Each comparison is constant-time;
    GitHub sends lower-case hex, and nothing else is accepted.
    """
    return matching(body, signature=signature, secrets=secrets) is not None


def matching(body: bytes, *, signature: Signature, secrets: Iterable[bytes]) -> int | None:
    """The position in ``secrets`` of the one ``signature`` was made with, or None (see :func:`verify`).

    >>> old, new = b"old", b"new"
    >>> matching(b"{}", signature=Signature("sha256", sign(b"{}", secret=old).encode()), secrets=[new, old])
    1
    """
    digestmod = _ALGORITHMS[signature.algorithm]
    prefix = signature.algorithm.encode() + b"="
    for position, secret in enumerate(secrets):
        expected = prefix + hmac.new(secret, body, digestmod).hexdigest().encode()
        if hmac.compare_digest(expected, signature.value):
            return position
    return None
