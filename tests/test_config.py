"""handler.core.settings: the one place configuration is read."""

from __future__ import annotations

import pytest

from handler.core.outcomes import ConfigurationError
from handler.core.secrets import split_secrets
from handler.core.settings import Settings


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.secret_parameter is None
    assert settings.secrets == ()
    assert (settings.secret_max_age, settings.secret_refresh_interval) == (300, 30)
    assert settings.allow_sha1 is False
    assert settings.max_body_bytes == 6 * 1024 * 1024
    assert (settings.event_bus_name, settings.archive_bucket, settings.idempotency_table) == (None, None, None)
    assert settings.event_max_entry_bytes == 256 * 1024
    assert settings.dedup_ttl_seconds == 4 * 24 * 3600


def test_every_variable_is_read() -> None:
    settings = Settings.from_env(
        {
            "WEBHOOK_SECRET_PARAMETER": "/p",
            "WEBHOOK_SECRET": " new \n\n old \r\n",
            "WEBHOOK_SECRET_MAX_AGE": "60",
            "WEBHOOK_SECRET_REFRESH_INTERVAL": "5",
            "WEBHOOK_ALLOW_SHA1": "TRUE",
            "WEBHOOK_MAX_BODY_BYTES": "1000",
            "EVENT_BUS_NAME": "bus",
            "EVENT_MAX_ENTRY_BYTES": "1048576",
            "ARCHIVE_BUCKET": "archive",
            "IDEMPOTENCY_TABLE": "table",
            "IDEMPOTENCY_TTL_SECONDS": "3600",
        }
    )
    assert settings.secret_parameter == "/p"
    assert settings.secrets == (b"new", b"old")
    assert (settings.secret_max_age, settings.secret_refresh_interval) == (60, 5)
    assert settings.allow_sha1 is True
    assert settings.max_body_bytes == 1000
    assert (settings.event_bus_name, settings.event_max_entry_bytes) == ("bus", 1048576)
    assert (settings.archive_bucket, settings.payload_bucket) == ("archive", "archive")
    assert (settings.idempotency_table, settings.dedup_ttl_seconds) == ("table", 3600)


def test_payload_bucket_can_differ_from_the_archive() -> None:
    assert Settings.from_env({"ARCHIVE_BUCKET": "archive", "PAYLOAD_BUCKET": "payloads"}).payload_bucket == "payloads"


def test_secrets_are_not_in_repr() -> None:
    assert "hunter2" not in repr(Settings.from_env({"WEBHOOK_SECRET": "hunter2"}))


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("WEBHOOK_SECRET_MAX_AGE", "0"),
        ("WEBHOOK_SECRET_MAX_AGE", "5m"),
        ("WEBHOOK_SECRET_REFRESH_INTERVAL", "0"),
        ("WEBHOOK_ALLOW_SHA1", "maybe"),
        ("WEBHOOK_MAX_BODY_BYTES", "-1"),
        ("EVENT_MAX_ENTRY_BYTES", "10"),
        ("IDEMPOTENCY_TTL_SECONDS", "1"),
    ],
)
def test_invalid_values_are_configuration_errors(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=name):
        Settings.from_env({name: value})


def test_split_secrets() -> None:
    assert split_secrets("a\nb\n") == (b"a", b"b")
    assert split_secrets("  \n") == ()
    assert split_secrets("é") == ("é".encode(),)
    assert split_secrets(" old \r\n\r\n\tnew\t\r\n") == (b"old", b"new")


# Every character str.splitlines() treats as a line break, except \n and \r.
NOT_LINE_BREAKS = ["\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]


@pytest.mark.parametrize("separator", NOT_LINE_BREAKS, ids=[f"U+{ord(c):04X}" for c in NOT_LINE_BREAKS])
def test_a_secret_is_cut_at_newlines_only(separator: str) -> None:
    """A secret containing a character splitlines() would cut at stays whole: no short piece verifies."""
    secret = f"first-half{separator}x"
    assert split_secrets(secret) == (secret.encode(),)
    assert split_secrets(f"{secret}\nsecond") == (secret.encode(), b"second")


@pytest.mark.parametrize(
    ("env", "enabled"),
    [
        ({}, False),
        ({"AWS_LAMBDA_FUNCTION_NAME": "f"}, True),
        ({"AWS_LAMBDA_FUNCTION_NAME": "f", "POWERTOOLS_TRACE_DISABLED": "true"}, False),
        ({"AWS_LAMBDA_FUNCTION_NAME": "f", "AWS_SAM_LOCAL": "true"}, False),
    ],
)
def test_tracing_only_in_a_deployed_function(env: dict[str, str], enabled: bool) -> None:
    from handler.core.settings import TelemetrySettings

    assert TelemetrySettings.from_env(env).tracing is enabled


def test_tracer_is_not_imported_when_tracing_is_off() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from handler.aws.telemetry import PowertoolsTelemetry\n"
        "from handler.core.settings import TelemetrySettings\n"
        "with PowertoolsTelemetry(TelemetrySettings()).span('x'): pass\n"
        "print('aws_xray_sdk' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)  # noqa: S603
    assert out.stdout.strip() == "False"


def test_a_budget_too_short_for_one_archive_call_is_refused() -> None:
    """An S3 attempt needs 4 s left after the calls before it: a 4 s budget would answer every delivery 503."""
    with pytest.raises(ConfigurationError, match="at least 5"):
        Settings.from_env({"WEBHOOK_TIME_BUDGET_SECONDS": "4"})
    assert Settings.from_env({"WEBHOOK_TIME_BUDGET_SECONDS": "5"}).time_budget_seconds == 5


def test_an_invalid_log_level_logs_at_info_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    """Powertools refuses an unknown POWERTOOLS_LOG_LEVEL; the function must still answer (and log)."""
    import io

    from handler.aws.telemetry import PowertoolsTelemetry
    from handler.core.settings import TelemetrySettings

    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "LOUD")
    telemetry = PowertoolsTelemetry(TelemetrySettings(service_name="log-level-check"))
    stream = io.StringIO()
    telemetry.logger.registered_handler.setStream(stream)
    telemetry.log("info", "still logging")
    assert '"message":"still logging"' in stream.getvalue()
