"""The one place that reads the receiver's configuration from the environment.

Powertools reads its own documented variables (``POWERTOOLS_SERVICE_NAME``,
``POWERTOOLS_LOG_LEVEL``, ``POWERTOOLS_METRICS_NAMESPACE``, ...) itself.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from handler.errors import ConfigurationError
from handler.source import SourceAllowList

DEFAULT_SERVICE_NAME = "github-webhook"
DEFAULT_MAX_BODY_BYTES = 6 * 1024 * 1024  # a synchronous Lambda request cannot be larger anyway
DEFAULT_METRICS_NAMESPACE = "GitHubWebhook"
# PutEvents' long-standing entry limit; larger entries go to S3 (claim check). Some buses accept
# more now, but targets such as SQS still stop at 256 KB: raise it only when every target can.
DEFAULT_EVENT_MAX_ENTRY_BYTES = 256 * 1024
# GitHub waits 10 s; no hand-off step starts after this many seconds.
DEFAULT_TIME_BUDGET_SECONDS = 8
# GitHub lets a delivery be redelivered for 3 days; remember ids a little longer than that.
DEFAULT_DEDUP_TTL_SECONDS = 4 * 24 * 3600


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
    event_bus_name: str | None = None
    event_max_entry_bytes: int = DEFAULT_EVENT_MAX_ENTRY_BYTES
    archive_bucket: str | None = None
    payload_bucket: str | None = None
    idempotency_table: str | None = None
    dedup_ttl_seconds: int = DEFAULT_DEDUP_TTL_SECONDS
    time_budget_seconds: int = DEFAULT_TIME_BUDGET_SECONDS
    allowed_sources: SourceAllowList | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the variables documented in the README's configuration table."""
        env = os.environ if environ is None else environ
        if env.get("WEBHOOK_SECRET") and not env.get("WEBHOOK_SECRET_PARAMETER") and _deployed(env):
            # A plain-text secret in a deployed function's environment is a misconfiguration.
            raise ConfigurationError("WEBHOOK_SECRET is for local use; set WEBHOOK_SECRET_PARAMETER")
        return cls(
            secret_parameter=env.get("WEBHOOK_SECRET_PARAMETER") or None,
            secrets=split_secrets(env.get("WEBHOOK_SECRET", "")),
            secret_max_age=_int(env, "WEBHOOK_SECRET_MAX_AGE", 300, minimum=1),
            secret_refresh_interval=_int(env, "WEBHOOK_SECRET_REFRESH_INTERVAL", 30, minimum=1),
            allow_sha1=_bool(env, "WEBHOOK_ALLOW_SHA1", False),
            max_body_bytes=_int(env, "WEBHOOK_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES, minimum=1),
            event_bus_name=env.get("EVENT_BUS_NAME") or None,
            event_max_entry_bytes=_int(env, "EVENT_MAX_ENTRY_BYTES", DEFAULT_EVENT_MAX_ENTRY_BYTES, minimum=1024),
            archive_bucket=env.get("ARCHIVE_BUCKET") or None,
            # Claim checks go to the archive bucket unless a separate one is named.
            payload_bucket=env.get("PAYLOAD_BUCKET") or env.get("ARCHIVE_BUCKET") or None,
            idempotency_table=env.get("IDEMPOTENCY_TABLE") or None,
            dedup_ttl_seconds=_int(env, "IDEMPOTENCY_TTL_SECONDS", DEFAULT_DEDUP_TTL_SECONDS, minimum=60),
            time_budget_seconds=_int(env, "WEBHOOK_TIME_BUDGET_SECONDS", DEFAULT_TIME_BUDGET_SECONDS, minimum=1),
            allowed_sources=SourceAllowList.parse(cidrs) if (cidrs := env.get("ALLOWED_SOURCE_CIDRS", "")) else None,
        )


def split_secrets(value: str) -> tuple[bytes, ...]:
    r"""One secret per line (two during a rotation); blank lines and surrounding spaces are ignored.

    Lines end at ``\n`` only (a trailing ``\r`` is dropped): ``str.splitlines()`` would also cut at
    form feeds, vertical tabs, ``\x1c``-``\x1e``, ``\x85``, U+2028 and U+2029, turning one secret
    that contains them into short pieces that each verify.

    >>> split_secrets("old-secret\r\n\n  new-secret \n")
    (b'old-secret', b'new-secret')
    >>> split_secrets("one\x0bsecret\u2028whole")
    (b'one\x0bsecret\xe2\x80\xa8whole',)
    """
    lines = (line.strip(" \t\r") for line in value.split("\n"))
    return tuple(line.encode() for line in lines if line)


def service_name(environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    return env.get("POWERTOOLS_SERVICE_NAME") or DEFAULT_SERVICE_NAME


def metrics_namespace(environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    return env.get("POWERTOOLS_METRICS_NAMESPACE") or DEFAULT_METRICS_NAMESPACE


def tracing_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """X-Ray tracing is on: in a deployed function, unless POWERTOOLS_TRACE_DISABLED (Powertools' own rule)."""
    env = os.environ if environ is None else environ
    disabled = env.get("POWERTOOLS_TRACE_DISABLED", "").strip().lower() in ("1", "true", "yes", "on")
    return _deployed(env) and not disabled


def _deployed(env: Mapping[str, str]) -> bool:
    """Running in a real Lambda function (not `sam local`, which sets AWS_SAM_LOCAL)."""
    return bool(env.get("AWS_LAMBDA_FUNCTION_NAME")) and env.get("AWS_SAM_LOCAL") != "true"


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
