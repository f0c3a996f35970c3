"""handler.core.settings where a rule, not only a variable, is read (the variables: tests/test_config.py)."""

from __future__ import annotations

import pytest

from handler.core.outcomes import ConfigurationError
from handler.core.settings import Settings, TelemetrySettings

DEPLOYED = {
    "AWS_LAMBDA_FUNCTION_NAME": "github-webhook-WebhookFunction",
    "WEBHOOK_SECRET": "literal",
    "EVENT_BUS_NAME": "github-webhooks",
}


def test_a_literal_secret_is_refused_in_a_deployed_function() -> None:
    with pytest.raises(ConfigurationError, match="WEBHOOK_SECRET is for local use"):
        Settings.from_env(DEPLOYED)


def test_a_literal_secret_is_accepted_under_sam_local_and_beside_a_parameter() -> None:
    # `sam local invoke` sets both variables and runs on the development secret.
    assert Settings.from_env({**DEPLOYED, "AWS_SAM_LOCAL": "true"}).secrets == (b"literal",)
    assert Settings.from_env({**DEPLOYED, "WEBHOOK_SECRET_PARAMETER": "/p"}).secret_parameter == "/p"


# Configuration that fails closed, and says why -----------------------------------------------------


def test_a_deployed_receiver_with_nowhere_to_hand_off_refuses_unless_told_its_listeners_are_its_work() -> None:
    deployed = {"AWS_LAMBDA_FUNCTION_NAME": "github-webhook-WebhookFunction", "WEBHOOK_SECRET_PARAMETER": "/p"}
    with pytest.raises(ConfigurationError, match="nowhere to hand off"):
        Settings.from_env(deployed)
    with pytest.raises(ConfigurationError, match="nowhere to hand off"):
        Settings.from_env({**deployed, "EVENT_BUS_NAME": " ", "ARCHIVE_BUCKET": ""})  # empty is unset
    assert Settings.from_env({**deployed, "WEBHOOK_LISTENERS_ONLY": "true"}).listeners_only
    assert Settings.from_env({**deployed, "ARCHIVE_BUCKET": "archive"}).archive_bucket == "archive"
    assert Settings.from_env({}).event_bus_name is None  # locally (serve, tests) a receiver may verify only


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("WEBHOOK_SECRET_MAX_AGE", "99999999999999999999"),
        ("IDEMPOTENCY_TTL_SECONDS", "99999999999999999999"),
        ("WEBHOOK_SECRET_REFRESH_INTERVAL", "86401"),
        ("WEBHOOK_MAX_BODY_BYTES", str(26 * 1024 * 1024)),
        ("EVENT_MAX_ENTRY_BYTES", str(2 * 1024 * 1024)),
        ("EVENT_INLINE_MAX_BYTES", "1023"),
        ("EVENT_INLINE_MAX_BYTES", str(2 * 1024 * 1024)),
        ("ARCHIVE_MODE", "sometimes"),
        ("DEDUP_MODE", "before"),
        ("ARCHIVE_MODE", "large"),  # without EVENT_BUS_NAME: the archive is the only hand-off
        ("WEBHOOK_TIME_BUDGET_SECONDS", "30"),
        ("ARCHIVE_BUCKET", "my archive"),
        ("ARCHIVE_BUCKET", "a"),
        ("PAYLOAD_BUCKET", "Payloads_Bucket"),
        ("IDEMPOTENCY_TABLE", "deliveries table"),
        ("EVENT_BUS_NAME", "bus name"),
        ("WEBHOOK_SECRET_PARAMETER", "/github webhook/secret"),
        ("POWERTOOLS_TRACE_DISABLED", "maybe"),
        ("POWERTOOLS_LOG_LEVEL", "LOUD"),
        ("POWERTOOLS_METRICS_NAMESPACE", "AWS/Lambda"),
        ("POWERTOOLS_METRICS_NAMESPACE", "Ümlaut/GitHub"),
    ],
)
def test_an_invalid_value_is_misconfigured_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        Settings.from_env({name: value})
    assert refused.value.code == "misconfigured"
    assert name in str(refused.value.detail)


def test_names_are_trimmed_and_empty_values_are_unset() -> None:
    settings = Settings.from_env(
        {
            "ARCHIVE_BUCKET": " github-webhook-archive ",
            "IDEMPOTENCY_TABLE": "\tdeliveries\n",
            "WEBHOOK_SECRET_PARAMETER": " /github-webhook/dev/secret ",
            "POWERTOOLS_TRACE_DISABLED": "",
            "POWERTOOLS_LOG_LEVEL": "",
            "POWERTOOLS_METRICS_NAMESPACE": "",
            "WEBHOOK_SECRET_MAX_AGE": "",
        }
    )
    assert (settings.archive_bucket, settings.payload_bucket) == ("github-webhook-archive", "github-webhook-archive")
    assert (settings.idempotency_table, settings.secret_parameter) == ("deliveries", "/github-webhook/dev/secret")
    assert settings.secret_max_age == 300
    assert TelemetrySettings.from_env({"POWERTOOLS_METRICS_NAMESPACE": " "}).metrics_namespace == "GitHubWebhook"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("POWERTOOLS_METRICS_NAMESPACE", "My Org/GitHub"),
        ("POWERTOOLS_LOG_LEVEL", "fatal"),
        ("WEBHOOK_SECRET_PARAMETER", "arn:aws:ssm:us-east-1:123456789012:parameter/shared/github-webhook/secret"),
        ("IDEMPOTENCY_TABLE", "arn:aws:dynamodb:us-east-1:123456789012:table/deliveries"),
        ("EVENT_BUS_NAME", "arn:aws:events:us-east-1:123456789012:event-bus/github"),
        ("ARCHIVE_BUCKET", "archive.example.com"),
        ("ALLOWED_SOURCE_CIDRS", " "),
        ("ARCHIVE_MODE", " Every "),
        ("EVENT_INLINE_MAX_BYTES", "1048576"),
    ],
)
def test_valid_values_of_every_kind_are_accepted(name: str, value: str) -> None:
    Settings.from_env({name: value})  # raises ConfigurationError otherwise
    assert Settings.from_env({name: value}) == Settings.from_env({name: value})


def test_archive_modes_other_than_every_need_a_bus() -> None:
    bus = {"EVENT_BUS_NAME": "github-webhooks", "ARCHIVE_BUCKET": "github-webhook-archive"}
    assert Settings.from_env({**bus, "ARCHIVE_MODE": "LARGE"}).archive_mode == "large"
    assert Settings.from_env({**bus, "ARCHIVE_MODE": "off"}).archive_mode == "off"
    assert Settings.from_env({}).archive_mode == "every"
    with pytest.raises(ConfigurationError, match="ARCHIVE_MODE=off needs EVENT_BUS_NAME"):
        Settings.from_env({"ARCHIVE_BUCKET": "github-webhook-archive", "ARCHIVE_MODE": "off"})
