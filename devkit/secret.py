"""`webhook secret`: the SecureStrings a deployment needs, written without the value ever reaching a terminal.

``create`` generates a webhook secret (32 random bytes from :mod:`secrets`, as 64 hex characters: printable,
and safe in GitHub's settings page and in a one-secret-per-line parameter) and stores it. ``store`` puts
a file's content in one, such as a GitHub App's private key (PEM) for the redelivery function.
CloudFormation cannot create a SecureString, so both run before `make deploy`.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from devkit.errors import REJECTED, UNREACHABLE, USAGE, CliError

SECRET_BYTES = 32
# SSM's standard tier holds 4 KB; an RSA 4096 key in PEM is about 3.3 KB.
STANDARD_TIER_MAX_BYTES = 4096


def new_secret() -> str:
    """A webhook secret: 32 random bytes as 64 lower-case hex characters."""
    return secrets.token_hex(SECRET_BYTES)


def create(name: str, *, kms_key_id: str | None = None, overwrite: bool = False) -> str:
    """Store a new webhook secret as ``name``; returns it (the caller decides whether to show it)."""
    value = new_secret()
    put(name, value, kms_key_id=kms_key_id, overwrite=overwrite)
    return value


def store(name: str, path: str, *, kms_key_id: str | None = None, overwrite: bool = False) -> int:
    """Store the content of the file ``path`` (a PEM private key) as ``name``; returns its size."""
    try:
        text = Path(path).read_text(encoding="ascii")
    except FileNotFoundError:
        raise CliError(f"no such file: {path}", USAGE) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"{path} is not a readable PEM file ({type(exc).__name__})", USAGE) from None
    if "-----BEGIN" not in text or "PRIVATE KEY-----" not in text:
        raise CliError(
            f"{path} is not a PEM private key (GitHub's App key starts with -----BEGIN RSA PRIVATE KEY-----)"
        )
    put(name, text.strip() + "\n", kms_key_id=kms_key_id, overwrite=overwrite)
    return len(text)


def put(name: str, value: str, *, kms_key_id: str | None, overwrite: bool) -> None:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

    request: dict[str, Any] = {"Name": name, "Value": value, "Type": "SecureString", "Overwrite": overwrite}
    if len(value.encode()) > STANDARD_TIER_MAX_BYTES:
        request["Tier"] = "Advanced"
    if kms_key_id:
        request["KeyId"] = kms_key_id
    try:
        boto3.client("ssm").put_parameter(**request)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        if code == "ParameterAlreadyExists":
            raise CliError(
                f"{name} already exists: give --overwrite to replace it (to change a live webhook secret without "
                "refusing deliveries: ./webhook rotate-secret)",
                REJECTED,
            ) from None
        raise CliError(f"SSM refused to store {name} ({code})", REJECTED) from None
    except EndpointConnectionError:
        raise CliError("SSM is unreachable (check the region and the network)", UNREACHABLE) from None
    except BotoCoreError as exc:  # no credentials, no region: the message names no value
        raise CliError(f"cannot call SSM: {exc}", USAGE) from None
