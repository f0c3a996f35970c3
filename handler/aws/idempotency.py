"""Deduplication by delivery id: Powertools Idempotency on DynamoDB.

GitHub keeps ``X-GitHub-Delivery`` on a redelivery, so the id is the key. A hand-off that
completed is remembered for the TTL and a repeat is answered ``duplicate`` with nothing sent.
A hand-off that failed leaves no record (Powertools deletes it), so a redelivery runs again.
A repeat that arrives while the first is still running is :class:`InProgress` (409): it is not
accepted, because the first may still fail. A record left by an invocation that timed out
expires with the invocation (the Lambda context is registered), not after the TTL. If the
table fails only after the hand-off succeeded, the delivery is still accepted: it is on the bus.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from handler.aws.clients import causes, client, error_code
from handler.core.outcomes import DeduplicationUnavailable, DeliveryConflict, InProgress, OutOfTime, Unavailable
from handler.core.ports import Deadline, Status

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

# A stable key prefix: renaming a function must not forget every delivery id.
KEY_PREFIX = "github-delivery"


class Deduplicator:
    """A :class:`~handler.core.ports.Once` on a DynamoDB table."""

    def __init__(self, table: str, *, ttl_seconds: int) -> None:
        from aws_lambda_powertools.utilities.idempotency import (
            DynamoDBPersistenceLayer,
            IdempotencyConfig,
            idempotent_function,
        )

        self.config = IdempotencyConfig(
            event_key_jmespath="delivery_id",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=ttl_seconds,
            # What a duplicate returns: the digest the delivery was accepted with, to compare.
            response_hook=lambda response, record: {
                "status": Status.DUPLICATE.value,
                "digest": response.get("digest") if isinstance(response, dict) else None,
            },
        )
        persistence = DynamoDBPersistenceLayer(table_name=table, boto3_client=client("dynamodb"))
        self._once = idempotent_function(
            data_keyword_argument="key",
            config=self.config,
            persistence_store=persistence,
            key_prefix=KEY_PREFIX,
        )(_run)

    def once(self, key: str, work: Callable[[], None], *, deadline: Deadline, digest: str | None = None) -> Status:
        """Run ``work`` unless ``key`` was already handed off: ``ACCEPTED``, ``DUPLICATE``
        or ``UNRECORDED`` (handed off, but the table failed to record it). The record keeps
        ``digest``; a duplicate with another one raises :class:`DeliveryConflict`.

        ``deadline`` (the Lambda context, or a budget) makes an INPROGRESS record expire when this
        invocation would end.
        """
        from aws_lambda_powertools.utilities.idempotency.exceptions import (
            BaseError,
            IdempotencyAlreadyInProgressError,
        )

        # Powertools reads only get_remaining_time_in_millis(): a budget outside Lambda (serve) is a Deadline too.
        self.config.register_lambda_context(cast("LambdaContext", deadline))
        done = []

        def recorded_work() -> None:
            work()
            done.append(True)

        try:
            result = self._once(key={"delivery_id": key}, work=recorded_work, digest=digest)
        except IdempotencyAlreadyInProgressError:
            raise InProgress() from None
        except BaseError as exc:  # the table failed: saving, reading or deleting the record
            if done:
                # The delivery is archived and on the bus: answering 503 would make GitHub's
                # redelivery forward it again. The record stays INPROGRESS until it expires.
                return Status.UNRECORDED
            # The table was not asked (no time was left for the call), not broken: the answer names the
            # first failure, a hand-off's own or the timeout.
            cause = _cause_when_out_of_time(exc)
            if cause is not None:
                raise cause from None
            raise DeduplicationUnavailable(f"idempotency store failed ({error_code(exc.__cause__ or exc)})") from None
        stored = result.get("digest")
        if result["status"] == Status.DUPLICATE.value and digest and stored and stored != digest:
            raise DeliveryConflict()
        return Status(result["status"])


def _cause_when_out_of_time(exc: BaseException) -> Unavailable | None:
    """When ``exc``'s chain holds an :class:`OutOfTime`, the earliest :class:`Unavailable` in it."""
    chain = causes(exc)
    if not any(isinstance(link, OutOfTime) for link in chain):
        return None
    return next(link for link in reversed(chain) if isinstance(link, Unavailable))


def _run(key: dict[str, str], work: Callable[[], None], digest: str | None) -> dict[str, str | None]:
    work()
    return {"status": Status.ACCEPTED.value, "digest": digest}
