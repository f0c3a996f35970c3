"""`make deploy`'s preflight: what `sam deploy` would otherwise find out half-way through a stack update.

``python -m devkit.deploy --config-env ENV [--region R]`` reads ``samconfig.toml``'s section for ENV
and checks, before anything is built or uploaded, that every SecureString the stack names exists
in the region (the webhook secret; the GitHub token or App key when redelivery is on). A missing one
is named, with the `./webhook secret` command that creates it. It prints the region it checked, which
`make deploy` then hands to `sam deploy`. It never reads a value (no decryption is asked for).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path

from devkit.errors import REJECTED, UNREACHABLE, USAGE, CliError

ROOT = Path(__file__).resolve().parent.parent
SAMCONFIG = ROOT / "samconfig.toml"
# template.yaml's WebhookSecretParameterName default
DEFAULT_SECRET_PARAMETER = "/github-webhook/secret"  # noqa: S105 (a name, not a secret)
# Parameters of template.yaml that name a SecureString the stack reads, and how to create each.
SECURE_PARAMETERS = {
    "WebhookSecretParameterName": "./webhook secret create --parameter {name} --region {region}",
    "GitHubTokenParameterName": (
        'printf %s "$GITHUB_TOKEN" | aws ssm put-parameter --type SecureString --name {name} --value file:///dev/stdin'
    ),
    "GitHubAppPrivateKeyParameterName": "./webhook secret store APP_KEY.pem --parameter {name} --region {region}",
}


def deploy_parameters(config_env: str, samconfig: Path | None = None) -> dict[str, str]:
    """``[ENV.deploy.parameters]`` of samconfig.toml, with its ``parameter_overrides`` split into a dict."""
    samconfig = samconfig or SAMCONFIG
    try:
        document = tomllib.loads(samconfig.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CliError(f"cannot read {samconfig.name} ({type(exc).__name__})", USAGE) from None
    section = document.get(config_env, {}).get("deploy", {}).get("parameters")
    if not isinstance(section, dict):
        raise CliError(f"{samconfig.name} has no [{config_env}.deploy.parameters]", USAGE)
    overrides = section.get("parameter_overrides", "")
    pairs = shlex.split(overrides) if isinstance(overrides, str) else [str(item) for item in overrides]
    return {key: value for key, _, value in (pair.partition("=") for pair in pairs)} | {
        f"samconfig:{key}": str(value) for key, value in section.items() if key != "parameter_overrides"
    }


# template.yaml's defaults of the parameters the retention check reads (a test keeps them equal).
TEMPLATE_DEFAULTS = {
    "ArchiveMode": "large",
    "BusReplayArchive": "auto",
    "BusArchiveRetentionDays": "30",
    "ArchiveExpirationDays": "90",
}


def retention_problem(parameters: Mapping[str, str]) -> str | None:
    """Why the bus's archive would outlive the objects its events point at, or None.

    With ArchiveMode large or off, an entry over EVENT_INLINE_MAX_BYTES points at an S3 object that
    expires after ArchiveExpirationDays; EventBridge's archive replays the entry for
    BusArchiveRetentionDays (0: forever). A replay after the object expired hands consumers a pointer
    to nothing."""
    value = {**TEMPLATE_DEFAULTS, **{k: v for k, v in parameters.items() if k in TEMPLATE_DEFAULTS}}
    if value["ArchiveMode"] == "every" or value["BusReplayArchive"] == "off":
        return None
    bus, s3 = int(value["BusArchiveRetentionDays"]), int(value["ArchiveExpirationDays"])
    if bus == 0 or bus > s3:
        kept = "forever" if bus == 0 else f"{bus} days"
        return (
            f"BusArchiveRetentionDays keeps events {kept}, but ArchiveExpirationDays deletes the objects large ones "
            f"point at after {s3} days: set BusArchiveRetentionDays to at most {s3} in samconfig.toml's "
            "parameter_overrides"
        )
    return None


def secure_parameters(parameters: Mapping[str, str]) -> dict[str, str]:
    """The SecureStrings the stack will read: template parameter -> SSM name."""
    names = {"WebhookSecretParameterName": parameters.get("WebhookSecretParameterName") or DEFAULT_SECRET_PARAMETER}
    for key in ("GitHubTokenParameterName", "GitHubAppPrivateKeyParameterName"):
        if parameters.get(key) and parameters.get("RedeliveryHooks"):
            names[key] = parameters[key]
    return names


def missing(names: Mapping[str, str]) -> list[str]:
    """The SSM names of ``names`` that do not exist in the default session's region."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

    ssm = boto3.client("ssm")
    absent = []
    for name in names.values():
        try:
            ssm.get_parameter(Name=name, WithDecryption=False)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "error")
            if code != "ParameterNotFound":
                raise CliError(f"SSM refused to describe {name} ({code})", REJECTED) from None
            absent.append(name)
        except EndpointConnectionError:
            raise CliError("SSM is unreachable (check the region and the network)", UNREACHABLE) from None
        except BotoCoreError as exc:
            raise CliError(f"cannot call SSM: {exc}", USAGE) from None
    return absent


def preflight(config_env: str, region: str | None, samconfig: Path | None = None) -> str:
    """Check what the stack needs before `sam deploy`; returns the region."""
    from devkit.replay import use_region

    parameters = deploy_parameters(config_env, samconfig)
    problem = retention_problem(parameters)
    if problem:
        raise CliError(problem, USAGE)
    region = use_region(region or parameters.get("samconfig:region"))
    names = secure_parameters(parameters)
    absent = set(missing(names))
    if absent:
        steps = [
            SECURE_PARAMETERS[key].format(name=name, region=region) for key, name in names.items() if name in absent
        ]
        raise CliError(
            f"{', '.join(sorted(absent))} not found in {region}: CloudFormation cannot create a SecureString. "
            "Create it first: " + " ; ".join(steps),
            REJECTED,
        )
    return region


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devkit.deploy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config-env", default="default", help="the samconfig.toml environment (default, prod)")
    parser.add_argument("--region", help="AWS region (default: samconfig's, AWS_REGION, AWS_DEFAULT_REGION, profile)")
    args = parser.parse_args(argv)
    try:
        region = preflight(args.config_env, args.region or None)
    except CliError as exc:
        print(f"make deploy: {exc}", file=sys.stderr)
        return exc.code
    print(region)
    return 0


if __name__ == "__main__":
    sys.exit(main())
