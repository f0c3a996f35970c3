"""Replay protection on the deduplication table: one item per body digest (``body#<sha256>``) naming
the delivery id that first brought it, kept for the deduplication window (a :class:`~handler.core.ports.Replays`).

GitHub signs the body only: a captured signed body resent under a fresh ``X-GitHub-Delivery`` would
pass the signature and the deduplication by id. A conditional put refuses it. Powertools Idempotency
keys on one value, so this is a second, plain record (one PutItem per delivery, on the budgeted client).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from handler.aws.clients import client, error_code
from handler.core.outcomes import DeduplicationUnavailable, OutOfTime

KEY_PREFIX = "body#"


class DynamoReplays:
    def __init__(self, table: str, *, ttl_seconds: int, clock: Callable[[], float] = time.time) -> None:
        self._table = table
        self._ttl = ttl_seconds
        self._clock = clock

    def claim(self, digest: str, delivery_id: str) -> bool:
        now = int(self._clock())
        try:
            client("dynamodb").put_item(
                TableName=self._table,
                Item={
                    "id": {"S": KEY_PREFIX + digest},
                    "delivery_id": {"S": delivery_id},
                    "expiration": {"N": str(now + self._ttl)},
                },
                # New, the same delivery again, or expired (TTL deletes items late).
                ConditionExpression="attribute_not_exists(id) OR delivery_id = :id OR expiration < :now",
                ExpressionAttributeValues={":id": {"S": delivery_id}, ":now": {"N": str(now)}},
            )
        except OutOfTime:
            raise
        except Exception as exc:
            code = error_code(exc)
            if code == "ConditionalCheckFailedException":
                return False
            raise DeduplicationUnavailable(f"replay record failed ({code})") from None
        return True
