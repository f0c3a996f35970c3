"""The one place that reads the receiver's configuration from the environment.

Powertools reads its own documented variables (``POWERTOOLS_SERVICE_NAME``,
``POWERTOOLS_LOG_LEVEL``, ``POWERTOOLS_METRICS_NAMESPACE``, ...) itself.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from handler.errors import ConfigurationError

DEFAULT_SERVICE_NAME = "github-webhook"
DEFAULT_MAX_BODY_BYTES = 6 * 1024 * 1024  # a synchronous Lambda request cannot be larger anyway


@dataclass(frozen=True, slots=True)
class Settings:
    """Immutable configuration, built once per container by :meth:`from_env`."""

    secret_parameter: str | None = None
    # Literal secrets for local development and tests; never shown by repr().
    secrets: tuple[bytes, ...] = field(default=(), repr=False)
    secret_max_age: int = 300
    secret_refresh_interval: int = 30
    allow_sha1: bool = False
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the variables documented in the README's configuration table."""
        env = os.environ if environ is None else environ
        return cls(
            secret_parameter=env.get("WEBHOOK_SECRET_PARAMETER") or None,
            secrets=split_secrets(env.get("WEBHOOK_SECRET", "")),
            secret_max_age=_int(env, "WEBHOOK_SECRET_MAX_AGE", 300, minimum=0),
            secret_refresh_interval=_int(env, "WEBHOOK_SECRET_REFRESH_INTERVAL", 30, minimum=1),
            allow_sha1=_bool(env, "WEBHOOK_ALLOW_SHA1", False),
            max_body_bytes=_int(env, "WEBHOOK_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES, minimum=1),
        )


def split_secrets(value: str) -> tuple[bytes, ...]:
    """One secret per line (two during a rotation); blank lines and surrounding spaces are ignored."""
    return tuple(line.strip().encode() for line in value.splitlines() if line.strip())


def service_name(environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    return env.get("POWERTOOLS_SERVICE_NAME") or DEFAULT_SERVICE_NAME


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be an integer") from None
    if value < minimum:
        raise ConfigurationError(f"{name} must be at least {minimum}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigurationError(f"{name} must be true or false")
