"""The receiver's AWS resources in moto: created in one place, read back by tests, `serve` and the bench.

Works against in-process moto (``mock_aws``: clients of the default boto3 session) and against
moto's server on loopback (clients pointed at its endpoint URL)::

    aws = provision(connect("http://127.0.0.1:5000"), Names(bus="b", queue="q", bucket="a"))
    ...  # the receiver runs with aws.names.environment()
    events, keys = aws.forwarded(), aws.archived()
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from handler.core.archive import PREFIX

REGION = "us-east-1"
# The rule that feeds the queue: every event the receiver puts on the bus.
RULE = "github-to-queue"
RULE_PATTERN = {"source": ["github.com"]}

Clients = Callable[[str], Any]
"""A boto3 client for a service name (``"s3"``, ``"sqs"``, ...)."""


@dataclass(frozen=True, slots=True)
class Names:
    """The resources to create, by name; a name left ``None`` is not created."""

    bus: str | None = None
    queue: str | None = None  # fed by a rule on the bus, so that what was forwarded can be read back
    bucket: str | None = None
    table: str | None = None  # the deduplication table: string key ``id``
    secret_parameter: str | None = None  # a SecureString

    def environment(self) -> dict[str, str]:
        """The receiver's settings that point it at these resources."""
        settings = {
            "WEBHOOK_SECRET_PARAMETER": self.secret_parameter,
            "EVENT_BUS_NAME": self.bus,
            "ARCHIVE_BUCKET": self.bucket,
            "IDEMPOTENCY_TABLE": self.table,
        }
        return {name: value for name, value in settings.items() if value}


def connect(endpoint: str | None = None, *, region: str = REGION) -> Clients:
    """Clients created once per service: the default session's (in-process moto under ``mock_aws``),
    or, given an ``endpoint``, clients of moto's server there with placeholder credentials."""
    import boto3

    if endpoint is None:
        return functools.cache(boto3.client)
    session = boto3.Session(aws_access_key_id="local", aws_secret_access_key="local", region_name=region)  # noqa: S106 (moto's)
    return functools.cache(functools.partial(session.client, endpoint_url=endpoint))


@dataclass(frozen=True, slots=True)
class Provisioned:
    """What :func:`provision` created, and what the receiver left there."""

    clients: Clients
    names: Names
    queue_url: str | None = None

    def forwarded(self) -> list[dict[str, Any]]:
        """Every event the bus delivered since the last call (EventBridge envelope), taken off the queue."""
        if self.queue_url is None:
            raise ValueError("no queue was provisioned: name one to read what the bus delivered")
        sqs = self.clients("sqs")
        events = []
        while messages := sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages"):
            for message in messages:
                events.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return events

    def archived(self, prefix: str = PREFIX) -> list[str]:
        """The bucket's keys under ``prefix`` (the archive's, by default), in S3's lexicographic order."""
        pages = self.clients("s3").get_paginator("list_objects_v2").paginate(Bucket=self.names.bucket, Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def stored(self, key: str, *, bucket: str | None = None) -> dict[str, Any]:
        """GetObject's answer for ``key`` in the bucket (or in ``bucket``)."""
        return self.clients("s3").get_object(Bucket=bucket or self.names.bucket, Key=key)

    def records(self) -> list[dict[str, Any]]:
        """The deduplication table's items, as DynamoDB returns them."""
        pages = self.clients("dynamodb").get_paginator("scan").paginate(TableName=self.names.table)
        return [item for page in pages for item in page["Items"]]

    def record_status(self, delivery_id: str, hook_id: str | None = None) -> str | None:
        """The status of a delivery's deduplication record (``INPROGRESS``, ``COMPLETED``), or None:
        keyed by the hook and the delivery, as the receiver keys it (``Delivery.key``).

        Its key is a hash of the id, so Powertools finds it, configured as the receiver's
        Deduplicator is (handler.aws.idempotency).
        """
        from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig
        from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyItemNotFoundError

        from handler.aws.idempotency import KEY_PREFIX
        from handler.core.delivery import delivery_key

        table = DynamoDBPersistenceLayer(table_name=self.names.table, boto3_client=self.clients("dynamodb"))
        table.configure(IdempotencyConfig(event_key_jmespath="delivery_id"), key_prefix=KEY_PREFIX)
        try:
            record = table.get_record({"delivery_id": delivery_key(hook_id, delivery_id)})
        except IdempotencyItemNotFoundError:
            return None
        return record.status if record is not None else None

    def empty_bucket(self) -> None:
        """Delete every object in the bucket (archive and claim checks)."""
        s3 = self.clients("s3")
        for key in self.archived(prefix=""):
            s3.delete_object(Bucket=self.names.bucket, Key=key)


def provision(clients: Clients, names: Names, *, secret: str | None = None) -> Provisioned:
    """Create every resource ``names`` names; the secret parameter holds ``secret``.

    ``provision(connect(), Names(bus="b", queue="q"))`` under ``mock_aws`` gives a bus whose events
    :meth:`Provisioned.forwarded` reads.
    """
    if (names.secret_parameter is None) != (secret is None):
        raise ValueError("a secret parameter needs a secret, and a secret needs a parameter name")
    if names.queue and not names.bus:
        raise ValueError("a queue is fed by the bus: name the bus too")
    if names.secret_parameter:
        clients("ssm").put_parameter(Name=names.secret_parameter, Value=secret, Type="SecureString", Overwrite=True)
    if names.bus:
        clients("events").create_event_bus(Name=names.bus)
    queue_url = None
    if names.queue:
        sqs, events = clients("sqs"), clients("events")
        queue_url = sqs.create_queue(QueueName=names.queue)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name=RULE, EventBusName=names.bus, EventPattern=json.dumps(RULE_PATTERN))
        events.put_targets(Rule=RULE, EventBusName=names.bus, Targets=[{"Id": "queue", "Arn": arn}])
    if names.bucket:
        clients("s3").create_bucket(Bucket=names.bucket)
    if names.table:
        clients("dynamodb").create_table(
            TableName=names.table,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    return Provisioned(clients, names, queue_url)
