"""handler.core.settings where a rule, not only a variable, is read (the variables: tests/test_config.py)."""

from __future__ import annotations

import pytest

from handler.core.outcomes import ConfigurationError
from handler.core.settings import Settings

DEPLOYED = {"AWS_LAMBDA_FUNCTION_NAME": "github-webhook-WebhookFunction", "WEBHOOK_SECRET": "literal"}


def test_a_literal_secret_is_refused_in_a_deployed_function() -> None:
    with pytest.raises(ConfigurationError, match="WEBHOOK_SECRET is for local use"):
        Settings.from_env(DEPLOYED)


def test_a_literal_secret_is_accepted_under_sam_local_and_beside_a_parameter() -> None:
    # `sam local invoke` sets both variables and runs on the development secret.
    assert Settings.from_env({**DEPLOYED, "AWS_SAM_LOCAL": "true"}).secrets == (b"literal",)
    assert Settings.from_env({**DEPLOYED, "WEBHOOK_SECRET_PARAMETER": "/p"}).secret_parameter == "/p"
