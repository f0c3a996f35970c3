"""`make deploy`'s preflight (devkit/deploy.py) against moto: a missing SecureString is named, with the command
that creates it, before anything is built or uploaded; the region is the one samconfig.toml or the caller gives."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from devkit.deploy import SAMCONFIG, deploy_parameters, main, secure_parameters

OVERRIDES = (
    "WebhookSecretParameterName=/team/secret RedeliveryHooks=repos/o/r/hooks/1 GitHubTokenParameterName=/team/token"
)
SAMCONFIG_WITH_REDELIVERY = f"""
[dev.deploy.parameters]
region = "eu-west-1"
parameter_overrides = "{OVERRIDES}"
"""


def test_the_shipped_samconfig_names_the_secrets_of_both_environments() -> None:
    for env, name in (("default", "/github-webhook/dev/secret"), ("prod", "/github-webhook/prod/secret")):
        assert secure_parameters(deploy_parameters(env, SAMCONFIG)) == {"WebhookSecretParameterName": name}


def test_a_missing_secret_is_named_with_the_command_that_creates_it(
    aws: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config-env", "default", "--region", "us-east-1"]) == 1
    err = capsys.readouterr().err
    assert "/github-webhook/dev/secret not found in us-east-1" in err
    assert "./webhook secret create --parameter /github-webhook/dev/secret --region us-east-1" in err
    boto3.client("ssm", region_name="us-east-1").put_parameter(
        Name="/github-webhook/dev/secret", Value="s", Type="SecureString"
    )
    assert main(["--config-env", "default", "--region", "us-east-1"]) == 0
    assert capsys.readouterr().out.strip() == "us-east-1"


def test_redeliverys_credential_is_checked_too_in_samconfigs_region(
    aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "samconfig.toml"
    config.write_text(SAMCONFIG_WITH_REDELIVERY)
    monkeypatch.setattr("devkit.deploy.SAMCONFIG", config)
    ssm = boto3.client("ssm", region_name="eu-west-1")
    ssm.put_parameter(Name="/team/secret", Value="s", Type="SecureString")
    assert main(["--config-env", "dev"]) == 1
    assert "/team/token not found in eu-west-1" in capsys.readouterr().err
    ssm.put_parameter(Name="/team/token", Value="t", Type="SecureString")
    assert main(["--config-env", "dev"]) == 0
    assert capsys.readouterr().out.strip() == "eu-west-1"


def test_the_retention_check_reads_the_templates_defaults() -> None:
    from bench.cost import load_template
    from devkit.deploy import TEMPLATE_DEFAULTS

    parameters = load_template()["Parameters"]
    assert {name: str(parameters[name]["Default"]) for name in TEMPLATE_DEFAULTS} == TEMPLATE_DEFAULTS


@pytest.mark.parametrize(
    ("overrides", "refused"),
    [
        ({}, False),  # 30 days on the bus, 90 in S3
        ({"ArchiveExpirationDays": "14"}, True),  # large events replayed to deleted objects
        ({"ArchiveExpirationDays": "14", "BusArchiveRetentionDays": "14"}, False),
        ({"BusArchiveRetentionDays": "0"}, True),  # forever
        ({"BusArchiveRetentionDays": "0", "ArchiveMode": "every"}, False),  # no bus archive then
        ({"ArchiveExpirationDays": "7", "BusReplayArchive": "off"}, False),
    ],
)
def test_a_bus_archive_that_outlives_the_objects_its_events_point_at_is_refused(
    overrides: dict[str, str], refused: bool
) -> None:
    from devkit.deploy import retention_problem

    assert (retention_problem(overrides) is not None) is refused


def test_the_shipped_samconfig_passes_the_retention_check() -> None:
    from devkit.deploy import retention_problem

    for env in ("default", "prod"):
        assert retention_problem(deploy_parameters(env, SAMCONFIG)) is None
