"""An AWS emulator for local runs: moto's server on loopback, with the receiver's resources.

The secret parameter, bus, archive bucket and deduplication table are created in it, and the
receiver's environment points at it, so `serve` runs the same SSM read, hand-off, archive and
deduplication as on Lambda, with no AWS account. What reaches the bus is printed.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

REGION = "us-east-1"
SECRET_PARAMETER = "/github-webhook/local/secret"  # noqa: S105 (a name, not a secret)
BUS = "local-github"
BUCKET = "local-github-archive"
TABLE = "local-github-deliveries"
QUEUE = "local-github-forwarded"


class Emulator:
    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._stop = threading.Event()
        self.endpoint = ""
        self.queue_url = ""

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
        self._provision(secret)
        return aws | {
            "WEBHOOK_SECRET_PARAMETER": SECRET_PARAMETER,
            "EVENT_BUS_NAME": BUS,
            "ARCHIVE_BUCKET": BUCKET,
            "IDEMPOTENCY_TABLE": TABLE,
        }

    def _provision(self, secret: str) -> None:
        import boto3

        boto3.client("ssm").put_parameter(Name=SECRET_PARAMETER, Value=secret, Type="SecureString", Overwrite=True)
        events, sqs = boto3.client("events"), boto3.client("sqs")
        events.create_event_bus(Name=BUS)
        self.queue_url = sqs.create_queue(QueueName=QUEUE)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name="everything", EventBusName=BUS, EventPattern=json.dumps({"source": ["github.com"]}))
        events.put_targets(Rule="everything", EventBusName=BUS, Targets=[{"Id": "queue", "Arn": arn}])
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        boto3.client("dynamodb").create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )

    def watch(self, show: Callable[[dict[str, Any]], None]) -> threading.Thread:
        """Call ``show`` with each event the bus delivers (an EventBridge rule feeds a queue)."""

        def run() -> None:
            import boto3

            sqs = boto3.client("sqs")
            while not self._stop.is_set():
                reply = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
                for message in reply.get("Messages", []):
                    show(json.loads(message["Body"]))
                    sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
                self._stop.wait(0.2)

        thread = threading.Thread(target=run, name="bus-watcher", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()
        self._server.stop()
