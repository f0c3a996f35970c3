"""`webhook serve` in a subprocess on a free loopback port, for tests that need a real running receiver: the
CLI's (with its own emulator), and `webhook connect` and `rotate-secret`'s (reading its secret from SSM on
moto's server on loopback, which :func:`emulator` starts)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import boto3
from moto.server import ThreadedMotoServer

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"


def until_listening(process: subprocess.Popen[bytes], port: int, log: Path, seconds: float = 60) -> None:
    """Wait until ``process`` accepts connections on ``port``; fail with its output if it exits or never does."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "serve did not start: " + log.read_text()
            time.sleep(0.1)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def emulator(parameters: Mapping[str, str]) -> Iterator[dict[str, str]]:
    """moto's server with these SecureStrings; yields the AWS environment that points at it."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
    }
    ssm = boto3.client(
        "ssm",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name=REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    for name, value in parameters.items():
        # moto's servers in one process share their state: another test's emulator may have left this
        # parameter, with its tags (rotate-secret's mark). Each test starts from a parameter of its own.
        with contextlib.suppress(ssm.exceptions.ParameterNotFound):
            ssm.delete_parameter(Name=name)
        ssm.put_parameter(Name=name, Value=value, Type="SecureString")
    try:
        yield env
    finally:
        server.stop()


@contextmanager
def served(env: Mapping[str, str], log: Path, options: tuple[str, ...] = ("--no-emulator",)) -> Iterator[str]:
    """`webhook serve --json` with ``options`` and ``env`` (its AWS and WEBHOOK_ settings); yields its URL."""
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "WEBHOOK_", "EVENT_", "ARCHIVE_"))}
    with log.open("w") as stderr:
        process = subprocess.Popen(  # noqa: S603 (our own module, fixed arguments)
            [sys.executable, "-m", "devkit", "serve", *options, "--json", "--port", str(port)],
            cwd=ROOT,
            env=clean | dict(env),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        try:
            until_listening(process, port, log)
            yield f"http://127.0.0.1:{port}/webhook"
        finally:
            process.terminate()
            process.wait(10)
