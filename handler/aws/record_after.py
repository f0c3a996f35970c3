"""Deduplication in one write (``DEDUP_MODE=after``): read the record, hand off, then record it.

Powertools Idempotency (:mod:`handler.aws.idempotency`, the default) writes twice per delivery: an
INPROGRESS record before the hand-off, so that a copy arriving meanwhile is answered 409, then the
COMPLETED one. That is two of the three DynamoDB writes a delivery costs ($1.25 of about $5.90 per
million). Powertools has no mode without the first write, so this adapter does it by hand: a strongly
consistent GetItem (a read unit: a fifth of a write's price), the hand-off, then one conditional
PutItem. What it gives up is the guard against two copies handed off at once: a redelivery that
arrives while the first attempt is still running is handed off too, and consumers see the delivery
twice (they already deduplicate on ``delivery_id``: the bus is at-least-once). Everything else holds:
a duplicate is answered ``duplicate``, a different body under an accepted key is refused, a failed
hand-off records nothing, and a record that cannot be written after the hand-off is still a 202.

Records live beside Powertools' under the same prefix (``github-delivery#``, the key unhashed), so that
the redelivery function's grant covers them; switching modes forgets what the other mode recorded.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from handler.aws.clients import client, error_code
from handler.aws.idempotency import KEY_PREFIX
from handler.core.outcomes import DeduplicationUnavailable, DeliveryConflict, Unavailable
from handler.core.ports import Clock, Deadline, Status


class RecordAfter:
    """A :class:`~handler.core.ports.Once` on a DynamoDB table, one write per delivery."""

    def __init__(self, table: str, *, ttl_seconds: int, clock: Clock = time.time) -> None:
        self._table = table
        self._ttl = ttl_seconds
        self._clock = clock

    def once(self, key: str, work: Callable[[], None], *, deadline: Deadline, digest: str | None = None) -> Status:
        item_key = {"id": {"S": f"{KEY_PREFIX}#{key}"}}
        try:
            found = client("dynamodb").get_item(TableName=self._table, Key=item_key, ConsistentRead=True).get("Item")
        except Unavailable:  # no time left to ask (OutOfTime): nothing was handed off
            raise
        except Exception as exc:  # botocore's errors: the text may name the table only
            raise DeduplicationUnavailable(f"deduplication read failed ({error_code(exc)})") from None
        now = self._clock()
        if found is not None and int(found.get("expiration", {}).get("N", "0")) > now:
            stored = found.get("digest", {}).get("S")
            if digest and stored and stored != digest:
                raise DeliveryConflict()
            return Status.DUPLICATE
        work()  # a failure propagates, and nothing is recorded: a redelivery runs it again
        item = {**item_key, "status": {"S": "COMPLETED"}, "expiration": {"N": str(int(now) + self._ttl)}}
        if digest:
            item["digest"] = {"S": digest}
        try:
            client("dynamodb").put_item(
                TableName=self._table,
                Item=item,
                # Over an expired record, or none; a copy handed off at the same moment may have won.
                ConditionExpression="attribute_not_exists(id) OR expiration < :now",
                ExpressionAttributeValues={":now": {"N": str(int(now))}},
            )
        except Exception as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return Status.ACCEPTED  # both copies are on the bus; the first record stands
            # Handed off (archived, on the bus): a 503 would make GitHub's redelivery forward it again.
            return Status.UNRECORDED
        return Status.ACCEPTED
