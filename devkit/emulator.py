"""An AWS emulator for local runs: moto's server on loopback, with the receiver's resources.

The secret parameter, bus, archive bucket and deduplication table are created in it, and the
receiver's environment points at it, so `serve` runs the same SSM read, hand-off, archive and
deduplication as on Lambda, with no AWS account. What reaches the bus is printed.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from devkit.aws_resources import REGION, Names, Provisioned, connect, provision

LOCAL = Names(
    secret_parameter="/github-webhook/local/secret",  # noqa: S106 (a name, not a secret)
    bus="local-github",
    queue="local-github-forwarded",
    bucket="local-github-archive",
    table="local-github-deliveries",
)


class Emulator:
    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._stop = threading.Event()
        self.endpoint = ""
        self.resources: Provisioned | None = None

    def start(self, secret: str) -> dict[str, str]:
        """Start the server, create the resources; returns the receiver's environment for them."""
        # moto's server logs every request through werkzeug: keep the terminal for the receiver.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        aws = {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
        }
        os.environ.update(aws)
        os.environ.pop("AWS_PROFILE", None)
        os.environ.pop("AWS_SESSION_TOKEN", None)
        self.resources = provision(connect(self.endpoint), LOCAL, secret=secret)
        return aws | LOCAL.environment()

    def replay_command(self) -> str:
        """The `webhook replay` line that puts this emulator's archive back on its bus."""
        return (
            f"AWS_ENDPOINT_URL={self.endpoint} AWS_REGION={REGION} AWS_ACCESS_KEY_ID=local "
            f"AWS_SECRET_ACCESS_KEY=local ./webhook replay --bucket {LOCAL.bucket} --bus {LOCAL.bus}"
        )

    def banner(self) -> str:
        """What `serve` prints at start: where the emulator is, what is in it, and how to replay."""
        return "\n".join(
            [
                f"AWS emulator (moto) on {self.endpoint}, region {REGION}:",
                f"  secret parameter  {LOCAL.secret_parameter} (SSM SecureString)",
                f"  event bus         {LOCAL.bus}",
                f"  archive bucket    {LOCAL.bucket}",
                f"  dedup table       {LOCAL.table}",
                "replay the archive onto the bus, from another terminal:",
                f"  {self.replay_command()}",
            ]
        )

    def watch(self, show: Callable[[dict[str, Any]], None]) -> threading.Thread:
        """Call ``show`` with each event the bus delivers (an EventBridge rule feeds a queue)."""
        resources = self.resources
        if resources is None:
            raise RuntimeError("start the emulator first")

        def run() -> None:
            while not self._stop.is_set():
                for event in resources.forwarded():
                    show(event)
                self._stop.wait(0.5)

        thread = threading.Thread(target=run, name="bus-watcher", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()
        self._server.stop()
