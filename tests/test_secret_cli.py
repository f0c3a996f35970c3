"""`webhook secret create|store` against moto: the SecureStrings a deployment needs, the value never printed."""

from __future__ import annotations

import re
from pathlib import Path

import boto3
import pytest

from devkit.cli import main

NAME = "/github-webhook/dev/secret"


def stored(name: str) -> tuple[str, str]:
    parameter = boto3.client("ssm", region_name="us-east-1").get_parameter(Name=name, WithDecryption=True)["Parameter"]
    return parameter["Type"], parameter["Value"]


def test_create_stores_a_strong_secret_and_never_prints_it(aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["secret", "create", "--parameter", NAME, "--region", "us-east-1"]) == 0
    kind, value = stored(NAME)
    assert kind == "SecureString"
    assert re.fullmatch(r"[0-9a-f]{64}", value)  # 32 random bytes, printable
    captured = capsys.readouterr()
    assert value not in captured.out + captured.err
    assert captured.out.strip() == f"created {NAME} (SecureString, 64 characters)"
    assert "get-parameter" in captured.err


def test_create_refuses_to_replace_a_secret_unless_told(aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["secret", "create", "--parameter", NAME, "--region", "us-east-1"]) == 0
    _, first = stored(NAME)
    assert main(["secret", "create", "--parameter", NAME, "--region", "us-east-1"]) == 1
    assert "already exists" in capsys.readouterr().err
    assert stored(NAME)[1] == first
    assert main(["secret", "create", "--parameter", NAME, "--region", "us-east-1", "--overwrite", "--show"]) == 0
    _, second = stored(NAME)
    assert second != first
    assert second in capsys.readouterr().out  # only with --show


def test_store_puts_a_github_app_key_and_refuses_what_is_not_one(
    aws: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "app.private-key.pem"
    pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\n"
    key.write_text(pem)
    name = "/github-webhook/github-app-key"
    assert main(["secret", "store", str(key), "--parameter", name, "--region", "us-east-1"]) == 0
    assert stored(name) == ("SecureString", pem)
    assert "MIIEow" not in capsys.readouterr().out
    not_a_key = tmp_path / "notes.txt"
    not_a_key.write_text("hello")
    assert main(["secret", "store", str(not_a_key), "--parameter", "/x", "--region", "us-east-1"]) == 2
    assert main(["secret", "store", str(tmp_path / "missing.pem"), "--parameter", "/x", "--region", "us-east-1"]) == 2
