"""RedeliverySettings.from_env: the redelivery function's configuration, read in one place."""

from __future__ import annotations

import pytest

from handler.core.hooks import Hook
from handler.core.outcomes import ConfigurationError
from handler.core.redelivery import Policy
from handler.core.settings import DEFAULT_GITHUB_API_URL, RedeliverySettings
from tests.redelivery.conftest import APP_ID, ORG_HOOK, REPO_HOOK, TOKEN

DEPLOYED = {"AWS_LAMBDA_FUNCTION_NAME": "github-webhook-redelivery"}
REPO = {"REDELIVERY_HOOKS": REPO_HOOK, "GITHUB_TOKEN_PARAMETER": "/github-webhook/github-token"}


def test_nothing_configured_checks_no_hook() -> None:
    settings = RedeliverySettings.from_env({})
    assert settings == RedeliverySettings(hooks=(), api_url=DEFAULT_GITHUB_API_URL, policy=Policy(72 * 3600, 3))


def test_every_variable() -> None:
    settings = RedeliverySettings.from_env(
        {
            "REDELIVERY_HOOKS": f"{REPO_HOOK}, {ORG_HOOK}, app",
            "GITHUB_API_URL": "https://ghe.example.com/api/v3/",
            "GITHUB_TOKEN_PARAMETER": "/github-webhook/github-token",
            "GITHUB_APP_ID": APP_ID,
            "GITHUB_APP_PRIVATE_KEY_PARAMETER": "/github-webhook/app-key",
            "REDELIVERY_STATE_TABLE": "github-webhook-deliveries",
            "REDELIVERY_LOOKBACK_HOURS": "24",
            "REDELIVERY_MAX_ATTEMPTS": "5",
            **DEPLOYED,
        }
    )
    assert settings.hooks == (Hook(REPO_HOOK), Hook(ORG_HOOK), Hook("app"))
    assert settings.api_url == "https://ghe.example.com/api/v3"
    assert (settings.token_parameter, settings.token) == ("/github-webhook/github-token", None)
    assert (settings.app_id, settings.app_private_key_parameter) == (APP_ID, "/github-webhook/app-key")
    assert settings.state_table == "github-webhook-deliveries"
    assert settings.policy == Policy(lookback_seconds=24 * 3600, max_attempts=5)


def test_a_literal_token_is_refused_in_a_deployed_function() -> None:
    with pytest.raises(ConfigurationError) as refused:
        RedeliverySettings.from_env({**REPO, "GITHUB_TOKEN": TOKEN, **DEPLOYED})
    assert "GITHUB_TOKEN_PARAMETER" in refused.value.detail
    assert TOKEN not in str(refused.value)


def test_a_literal_token_is_for_local_runs_and_never_shown() -> None:
    local = {"REDELIVERY_HOOKS": REPO_HOOK, "GITHUB_TOKEN": TOKEN}
    for environment in (local, {**local, **DEPLOYED, "AWS_SAM_LOCAL": "true"}):
        settings = RedeliverySettings.from_env(environment)
        assert settings.token == TOKEN
        assert TOKEN not in repr(settings)


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({"REDELIVERY_HOOKS": "repos/octo-org/hello-world"}, "REDELIVERY_HOOKS: not a hook"),
        ({"REDELIVERY_HOOKS": REPO_HOOK}, "need GITHUB_TOKEN_PARAMETER"),
        ({"REDELIVERY_HOOKS": "app", "GITHUB_APP_ID": APP_ID}, "needs GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY"),
        ({"REDELIVERY_HOOKS": "app", "GITHUB_APP_PRIVATE_KEY_PARAMETER": "/k"}, "needs GITHUB_APP_ID"),
        ({**REPO, "REDELIVERY_MAX_ATTEMPTS": "0"}, "REDELIVERY_MAX_ATTEMPTS must be at least 1"),
        ({**REPO, "REDELIVERY_LOOKBACK_HOURS": "three days"}, "REDELIVERY_LOOKBACK_HOURS must be an integer"),
        ({**REPO, "GITHUB_API_URL": "http://api.github.com"}, "GITHUB_API_URL must be an https:// URL"),
        ({**REPO, "REDELIVERY_MODE": "push"}, "REDELIVERY_MODE must be redeliver or pull"),
        ({**REPO, **DEPLOYED}, "REDELIVERY_STATE_TABLE is required"),
        ({**REPO, "REDELIVERY_MODE": "pull"}, "needs EVENT_BUS_NAME or ARCHIVE_BUCKET"),
        ({**REPO, "REDELIVERY_MAX_PAGES": "0"}, "REDELIVERY_MAX_PAGES must be at least 1"),
        ({**REPO, "REDELIVERY_MAX_ATTEMPTS": "99999999999999999999"}, "REDELIVERY_MAX_ATTEMPTS must be at most 100"),
    ],
)
def test_a_misconfiguration_is_named(environment: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        RedeliverySettings.from_env(environment)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8123", "http://localhost:8123/", "https://api.github.com"])
def test_plain_http_only_on_loopback(url: str) -> None:
    assert RedeliverySettings.from_env({**REPO, "GITHUB_API_URL": url}).api_url == url.rstrip("/")


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1.attacker.example", "http://localhost.attacker.example:80", "http://api.github.com", "ftp://x"],
)
def test_plain_http_to_a_host_that_only_looks_local_is_refused(url: str) -> None:
    with pytest.raises(ConfigurationError):
        RedeliverySettings.from_env({**REPO, "GITHUB_API_URL": url})


def test_pull_mode_reads_the_receivers_pipeline_under_the_same_names() -> None:
    pipeline = {
        "EVENT_BUS_NAME": "github-webhooks",
        "ARCHIVE_BUCKET": " github-webhook-archive ",
        "IDEMPOTENCY_TABLE": "github-webhook-deliveries",
    }
    settings = RedeliverySettings.from_env({**REPO, "REDELIVERY_MODE": " Pull ", **pipeline})
    assert settings.mode == "pull"
    assert settings.pipeline is not None
    assert settings.pipeline.event_bus_name == "github-webhooks"
    assert settings.pipeline.idempotency_table == "github-webhook-deliveries"
    assert RedeliverySettings.from_env({**REPO, **pipeline}).pipeline is None  # redeliver mode needs none


def test_names_are_trimmed_and_empty_values_are_unset() -> None:
    settings = RedeliverySettings.from_env(
        {**REPO, "GITHUB_TOKEN_PARAMETER": " /t ", "REDELIVERY_STATE_TABLE": " ", "REDELIVERY_MODE": ""}
    )
    assert (settings.token_parameter, settings.state_table, settings.mode) == ("/t", None, "redeliver")
