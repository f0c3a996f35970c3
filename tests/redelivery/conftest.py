"""Fixtures for the redelivery tests: the App's key pair (made here, never committed), the GitHub
stand-in on loopback, an environment free of any GitHub or redelivery setting."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.fakes import Clock
from tests.redelivery.github_standin import GitHubStandIn

TOKEN = "ghp_standin0token0do0not0use0000000000000"
APP_ID = "424242"
REPO_HOOK = "repos/octo-org/hello-world/hooks/42"
ORG_HOOK = "orgs/octo-org/hooks/7"
APP_HOOK = "app"

REDELIVERY_ENV = (
    "REDELIVERY_HOOKS",
    "GITHUB_API_URL",
    "GITHUB_TOKEN",
    "GITHUB_TOKEN_PARAMETER",
    "GITHUB_APP_ID",
    "GITHUB_APP_PRIVATE_KEY_PARAMETER",
    "REDELIVERY_STATE_TABLE",
    "REDELIVERY_LOOKBACK_HOURS",
    "REDELIVERY_MAX_ATTEMPTS",
)


@dataclass(frozen=True)
class AppKey:
    """An App's RSA key pair: the PEM GitHub hands the App's owner, and the public half GitHub keeps."""

    pem: str
    public: rsa.RSAPublicKey


def make_key() -> AppKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode()
    return AppKey(pem, key.public_key())


@pytest.fixture(scope="session")
def app_key() -> AppKey:
    return make_key()


@pytest.fixture(autouse=True)
def no_github_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's (or CI's) own GITHUB_TOKEN must not leak into, or break, these tests."""
    for name in REDELIVERY_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def new_container() -> Iterator[None]:
    """Each test starts as a new container: no rate limit remembered from another test's runs."""
    from handler import redelivery

    redelivery._BLOCKED.clear()
    yield
    redelivery._BLOCKED.clear()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def github(app_key: AppKey, clock: Clock) -> Iterator[GitHubStandIn]:
    with GitHubStandIn(token=TOKEN, app_id=APP_ID, app_public_key=app_key.public, clock=clock) as standin:
        yield standin
