"""The one place that reads configuration from the environment, sans I/O: the receiver's
(:class:`Settings`), telemetry's (:class:`TelemetrySettings`) and the redelivery function's
(:class:`RedeliverySettings`).

Nothing reads it at import: the receiver calls ``from_env`` once per container, the redelivery
function once per run, so that tools and tests can set the environment first. Powertools
reads its other documented variables (``POWERTOOLS_LOG_LEVEL``, ...) itself, when the telemetry
adapter is built from these settings.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from handler.core.archive import ArchiveMode
from handler.core.outcomes import ConfigurationError
from handler.core.secrets import split_secrets
from handler.core.source import SourceAllowList

if TYPE_CHECKING:
    from handler.core.hooks import Hook
    from handler.core.redelivery import Policy

DEFAULT_SERVICE_NAME = "github-webhook"
DEFAULT_MAX_BODY_BYTES = 6 * 1024 * 1024  # a synchronous Lambda request cannot be larger anyway
DEFAULT_METRICS_NAMESPACE = "GitHubWebhook"
# PutEvents' long-standing entry limit; larger entries go to S3 (claim check). Some buses accept
# more now, but targets such as SQS still stop at 256 KB: raise it only when every target can.
DEFAULT_EVENT_MAX_ENTRY_BYTES = 256 * 1024
# EventBridge bills each 64 KB chunk of an entry as one event. Above one chunk, an entry points at the
# delivery's archive object when it exists anyway (one event); rules that match payload fields need
# the payload inline: raise it to EVENT_MAX_ENTRY_BYTES for them.
DEFAULT_EVENT_INLINE_MAX_BYTES = 64 * 1024
# GitHub waits 10 s; no call to AWS may end later than this many seconds after the request's start.
DEFAULT_TIME_BUDGET_SECONDS = 8
# One whole call to S3 (connect, 100-continue, read: 4 s) must still fit after the calls before it
# (the secret, the dedup record), or nothing could ever be archived.
MIN_TIME_BUDGET_SECONDS = 5
DEFAULT_GITHUB_API_URL = "https://api.github.com"
# GitHub lets a delivery be redelivered for 3 days; remember ids a little longer than that.
DEFAULT_DEDUP_TTL_SECONDS = 4 * 24 * 3600
# Pages (100 attempts each) one hook's listing may read in one run; the rest is read next run.
DEFAULT_REDELIVERY_MAX_PAGES = 100
DAY = 24 * 3600
GITHUB_MAX_PAYLOAD_BYTES = 25 * 1024 * 1024  # GitHub sends nothing larger
MAX_ENTRY_BYTES = 1024 * 1024  # EventBridge's entry limit since January 2026
# API Gateway's integration timeout is 30 s (GitHub Enterprise Server waits 30 s; github.com 10 s).
MAX_TIME_BUDGET_SECONDS = 29
# What AWS accepts as each kind of name (so that a typo is a clear 503 misconfigured, not an AWS fault).
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_TABLE = re.compile(r"[A-Za-z0-9_.-]{3,255}|arn:[A-Za-z0-9_.:/-]{1,1000}")  # a name or an ARN
_BUS = re.compile(r"[A-Za-z0-9._\-/:]{1,1600}")  # a name or an ARN
_SSM_NAME = re.compile(r"[A-Za-z0-9_.\-/]{1,2048}|arn:[A-Za-z0-9_.:/-]{1,2048}")  # a name or a shared ARN
_NAMESPACE = re.compile(r"[A-Za-z0-9._\-/#: ]{1,255}")  # CloudWatch allows spaces
_LOG_LEVELS = frozenset({"DEBUG", "INFO", "WARNING", "WARN", "ERROR", "CRITICAL", "FATAL"})


class DedupMode(StrEnum):
    """How deliveries are deduplicated (``DEDUP_MODE``)."""

    GUARD = "guard"  # Powertools Idempotency: a record before the hand-off (a copy meanwhile is a 409), then done
    AFTER = "after"  # one write: read, hand off, record (a copy at the same moment is handed off too)


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
    event_inline_max_bytes: int = DEFAULT_EVENT_INLINE_MAX_BYTES
    archive_bucket: str | None = None
    archive_mode: ArchiveMode = ArchiveMode.EVERY
    payload_bucket: str | None = None
    idempotency_table: str | None = None
    dedup_ttl_seconds: int = DEFAULT_DEDUP_TTL_SECONDS
    dedup_mode: DedupMode = DedupMode.GUARD
    time_budget_seconds: int = DEFAULT_TIME_BUDGET_SECONDS
    allowed_sources: SourceAllowList | None = None

    listeners_only: bool = False
    replay_protection: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the variables documented in the README's configuration table. Every value is checked
        here (names trimmed, numbers bounded, an empty value is unset): an invalid one is a
        ``ConfigurationError`` (``503 misconfigured``) naming the variable, never a 500 or an AWS fault."""
        env = os.environ if environ is None else environ
        secret_parameter = _name(env, "WEBHOOK_SECRET_PARAMETER", _SSM_NAME)
        if env.get("WEBHOOK_SECRET", "").strip() and not secret_parameter and _deployed(env):
            # A plain-text secret in a deployed function's environment is a misconfiguration.
            raise ConfigurationError("WEBHOOK_SECRET is for local use; set WEBHOOK_SECRET_PARAMETER")
        _check_powertools(env)
        archive_bucket = _name(env, "ARCHIVE_BUCKET", _BUCKET)
        settings = cls(
            secret_parameter=secret_parameter,
            secrets=split_secrets(env.get("WEBHOOK_SECRET", "")),
            secret_max_age=_int(env, "WEBHOOK_SECRET_MAX_AGE", 300, minimum=1, maximum=DAY),
            secret_refresh_interval=_int(env, "WEBHOOK_SECRET_REFRESH_INTERVAL", 30, minimum=1, maximum=3600),
            allow_sha1=_bool(env, "WEBHOOK_ALLOW_SHA1", False),
            max_body_bytes=_int(
                env, "WEBHOOK_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES, minimum=1, maximum=GITHUB_MAX_PAYLOAD_BYTES
            ),
            event_bus_name=_name(env, "EVENT_BUS_NAME", _BUS),
            event_max_entry_bytes=_int(
                env, "EVENT_MAX_ENTRY_BYTES", DEFAULT_EVENT_MAX_ENTRY_BYTES, minimum=1024, maximum=MAX_ENTRY_BYTES
            ),
            event_inline_max_bytes=_int(
                env, "EVENT_INLINE_MAX_BYTES", DEFAULT_EVENT_INLINE_MAX_BYTES, minimum=1024, maximum=MAX_ENTRY_BYTES
            ),
            archive_bucket=archive_bucket,
            archive_mode=_choice(env, "ARCHIVE_MODE", ArchiveMode, ArchiveMode.EVERY),
            # Claim checks go to the archive bucket unless a separate one is named.
            payload_bucket=_name(env, "PAYLOAD_BUCKET", _BUCKET) or archive_bucket,
            idempotency_table=_name(env, "IDEMPOTENCY_TABLE", _TABLE),
            dedup_ttl_seconds=_int(
                env, "IDEMPOTENCY_TTL_SECONDS", DEFAULT_DEDUP_TTL_SECONDS, minimum=60, maximum=365 * DAY
            ),
            dedup_mode=_choice(env, "DEDUP_MODE", DedupMode, DedupMode.GUARD),
            time_budget_seconds=_int(
                env,
                "WEBHOOK_TIME_BUDGET_SECONDS",
                DEFAULT_TIME_BUDGET_SECONDS,
                minimum=MIN_TIME_BUDGET_SECONDS,
                maximum=MAX_TIME_BUDGET_SECONDS,
            ),
            allowed_sources=SourceAllowList.parse(cidrs)
            if (cidrs := env.get("ALLOWED_SOURCE_CIDRS", "").strip())
            else None,
            listeners_only=_bool(env, "WEBHOOK_LISTENERS_ONLY", False),
            replay_protection=_bool(env, "WEBHOOK_REPLAY_PROTECTION", False),
        )
        if _deployed(env) and not (settings.event_bus_name or settings.archive_bucket or settings.listeners_only):
            # Accepting (and recording as done) what goes nowhere would lose every delivery silently.
            raise ConfigurationError(
                "nowhere to hand off: set EVENT_BUS_NAME or ARCHIVE_BUCKET "
                "(or WEBHOOK_LISTENERS_ONLY=true for a receiver whose only work is its listeners)"
            )
        if settings.archive_mode is not ArchiveMode.EVERY and not settings.event_bus_name:
            # The archive is the only hand-off then: keeping part of it would lose the rest silently.
            raise ConfigurationError(f"ARCHIVE_MODE={settings.archive_mode.value} needs EVENT_BUS_NAME")
        return settings


@dataclass(frozen=True, slots=True)
class TelemetrySettings:
    """What logs, metrics and traces need: read apart from :class:`Settings` because it never fails
    (a receiver with an invalid configuration still logs why, under the right name)."""

    service_name: str = DEFAULT_SERVICE_NAME
    metrics_namespace: str = DEFAULT_METRICS_NAMESPACE
    tracing: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TelemetrySettings:
        env = os.environ if environ is None else environ
        disabled = env.get("POWERTOOLS_TRACE_DISABLED", "").strip().lower() in ("1", "true", "yes", "on")
        return cls(
            service_name=env.get("POWERTOOLS_SERVICE_NAME", "").strip() or DEFAULT_SERVICE_NAME,
            metrics_namespace=env.get("POWERTOOLS_METRICS_NAMESPACE", "").strip() or DEFAULT_METRICS_NAMESPACE,
            # X-Ray in a deployed function unless disabled (Powertools' own rule); a no-op elsewhere.
            tracing=_deployed(env) and not disabled,
        )


@dataclass(frozen=True, slots=True)
class RedeliverySettings:
    """The redelivery function's configuration (``handler.redelivery``), and ``webhook redeliver``'s."""

    hooks: tuple[Hook, ...] = ()
    api_url: str = DEFAULT_GITHUB_API_URL
    token_parameter: str | None = None
    # A literal token for local use only; never shown by repr().
    token: str | None = field(default=None, repr=False)
    app_id: str | None = None
    app_private_key_parameter: str | None = None
    app_private_key_file: str | None = None  # local use: the App's PEM file
    state_table: str | None = None
    policy: Policy = field(default_factory=lambda: _redelivery().Policy())
    mode: str = "redeliver"  # or "pull" (handler.core.recovery.Mode)
    max_pages: int = DEFAULT_REDELIVERY_MAX_PAGES
    # Pull mode: the receiver's pipeline (bus, archive, claim check, deduplication), same variables.
    pipeline: Settings | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RedeliverySettings:
        env = os.environ if environ is None else environ
        redelivery = _redelivery()
        from handler.core.hooks import parse_hooks
        from handler.core.recovery import Mode

        if env.get("GITHUB_TOKEN") and _deployed(env):
            raise ConfigurationError("GITHUB_TOKEN is for local use; set GITHUB_TOKEN_PARAMETER")
        try:
            hooks = parse_hooks(env.get("REDELIVERY_HOOKS", ""))
        except ValueError as exc:
            raise ConfigurationError(f"REDELIVERY_HOOKS: {exc}") from None
        api_url = (env.get("GITHUB_API_URL", "").strip() or DEFAULT_GITHUB_API_URL).rstrip("/")
        parsed = urlsplit(api_url)
        loopback = parsed.scheme == "http" and parsed.hostname in ("127.0.0.1", "localhost")  # tests, stand-ins
        if not ((parsed.scheme == "https" and parsed.hostname) or loopback):
            raise ConfigurationError("GITHUB_API_URL must be an https:// URL")
        mode_name = env.get("REDELIVERY_MODE", "").strip().lower() or Mode.REDELIVER.value
        if mode_name not in {mode.value for mode in Mode}:
            raise ConfigurationError("REDELIVERY_MODE must be redeliver or pull")
        pipeline = None
        if mode_name == Mode.PULL:
            # The receiver's pipeline settings only: its secret is none of this function's business.
            pipeline = Settings.from_env({k: v for k, v in env.items() if not k.startswith("WEBHOOK_SECRET")})
            if not (pipeline.event_bus_name or pipeline.archive_bucket):
                raise ConfigurationError("REDELIVERY_MODE=pull needs EVENT_BUS_NAME or ARCHIVE_BUCKET to hand off to")
        settings = cls(
            hooks=hooks,
            api_url=api_url,
            token_parameter=_name(env, "GITHUB_TOKEN_PARAMETER", _SSM_NAME),
            token=env.get("GITHUB_TOKEN", "").strip() or None,
            app_id=_name(env, "GITHUB_APP_ID"),
            app_private_key_parameter=_name(env, "GITHUB_APP_PRIVATE_KEY_PARAMETER", _SSM_NAME),
            app_private_key_file=_name(env, "GITHUB_APP_PRIVATE_KEY_FILE"),
            state_table=_name(env, "REDELIVERY_STATE_TABLE", _TABLE),
            policy=redelivery.Policy(
                lookback_seconds=_int(env, "REDELIVERY_LOOKBACK_HOURS", 72, minimum=1, maximum=24 * 366) * 3600,
                max_attempts=_int(env, "REDELIVERY_MAX_ATTEMPTS", 3, minimum=1, maximum=100),
            ),
            mode=mode_name,
            max_pages=_int(env, "REDELIVERY_MAX_PAGES", DEFAULT_REDELIVERY_MAX_PAGES, minimum=1, maximum=10_000),
            pipeline=pipeline,
        )
        if hooks and _deployed(env) and not settings.state_table:
            # Without it every run starts over and no cap holds: a deployed function refuses to run.
            raise ConfigurationError("REDELIVERY_STATE_TABLE is required: the cap and each hook's progress live there")
        has_key = settings.app_private_key_parameter or settings.app_private_key_file
        if any(hook.is_app for hook in hooks) and not (settings.app_id and has_key):
            raise ConfigurationError("the app hook needs GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY_PARAMETER")
        if any(not hook.is_app for hook in hooks) and not (settings.token or settings.token_parameter):
            raise ConfigurationError("repository and organization hooks need GITHUB_TOKEN_PARAMETER")
        return settings


def _redelivery() -> Any:
    """The redelivery decisions' module, imported only by the redelivery function (not the receiver)."""
    from handler.core import redelivery

    return redelivery


def _deployed(env: Mapping[str, str]) -> bool:
    """Running in a real Lambda function (not `sam local`, which sets AWS_SAM_LOCAL)."""
    return bool(env.get("AWS_LAMBDA_FUNCTION_NAME")) and env.get("AWS_SAM_LOCAL") != "true"


def _name(env: Mapping[str, str], name: str, pattern: re.Pattern[str] | None = None) -> str | None:
    """A name or id: surrounding spaces are a typo, not part of it; empty means unset."""
    value = env.get(name, "").strip() or None
    if value is not None and pattern is not None and not pattern.fullmatch(value):
        raise ConfigurationError(f"{name} is not a valid name: {value[:80]!r}")
    return value


def _check_powertools(env: Mapping[str, str]) -> None:
    """The Powertools variables the receiver depends on, which Powertools reads itself (some of them
    only when a delivery is traced, when a bad value would be a 500)."""
    _bool(env, "POWERTOOLS_TRACE_DISABLED", False)
    level = env.get("POWERTOOLS_LOG_LEVEL", "").strip()
    if level and level.upper() not in _LOG_LEVELS:
        raise ConfigurationError("POWERTOOLS_LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
    namespace = env.get("POWERTOOLS_METRICS_NAMESPACE", "").strip()
    if namespace and (not _NAMESPACE.fullmatch(namespace) or namespace.startswith(("AWS/", ":"))):
        raise ConfigurationError("POWERTOOLS_METRICS_NAMESPACE is not a CloudWatch namespace")
    service = env.get("POWERTOOLS_SERVICE_NAME", "").strip()
    if service and (len(service) > 255 or not service.isprintable()):
        raise ConfigurationError("POWERTOOLS_SERVICE_NAME must be at most 255 printable characters")


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int, maximum: int | None = None) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be an integer") from None
    if value < minimum:
        raise ConfigurationError(f"{name} must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise ConfigurationError(f"{name} must be at most {maximum}")
    return value


def _choice(env: Mapping[str, str], name: str, kind: type[_E], default: _E) -> _E:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    try:
        return kind(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be one of {', '.join(item.value for item in kind)}") from None


_E = TypeVar("_E", bound=StrEnum)


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigurationError(f"{name} must be true or false")
