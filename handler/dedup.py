"""Deduplication by delivery id: Powertools Idempotency on DynamoDB.

GitHub keeps ``X-GitHub-Delivery`` on a redelivery, so the id is the key. A hand-off that
completed is remembered for the TTL and a repeat is answered ``duplicate`` with nothing sent.
A hand-off that failed leaves no record (Powertools deletes it), so a redelivery runs again.
A repeat that arrives while the first is still running is :class:`InProgress` (409): it is not
accepted, because the first may still fail. A record left by an invocation that timed out
expires with the invocation (the Lambda context is registered), not after the TTL.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from handler.aws_clients import client, error_code
from handler.errors import DeduplicationUnavailable, InProgress

ACCEPTED = "accepted"
DUPLICATE = "duplicate"
# A stable key prefix: renaming a function must not forget every delivery id.
KEY_PREFIX = "github-delivery"
GITHUB_TIMEOUT_SECONDS = 10


class Deduplicator:
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
            response_hook=lambda response, record: {"status": DUPLICATE},
        )
        persistence = DynamoDBPersistenceLayer(table_name=table, boto3_client=client("dynamodb"))
        self._once = idempotent_function(
            data_keyword_argument="key",
            config=self.config,
            persistence_store=persistence,
            key_prefix=KEY_PREFIX,
        )(_run)

    def once(self, delivery_id: str, work: Callable[[], None], *, lambda_context: Any = None) -> str:
        """Run ``work`` unless ``delivery_id`` was already handed off: ``accepted`` or ``duplicate``.

        ``lambda_context`` makes an INPROGRESS record expire when this invocation would time out;
        outside Lambda (uvicorn) GitHub's own 10-second budget stands in for it.
        """
        self.config.register_lambda_context(lambda_context or _GitHubBudget())
        from aws_lambda_powertools.utilities.idempotency.exceptions import (
            BaseError,
            IdempotencyAlreadyInProgressError,
        )

        try:
            result = self._once(key={"delivery_id": delivery_id}, work=work)
        except IdempotencyAlreadyInProgressError:
            raise InProgress() from None
        except BaseError as exc:  # the table failed: saving, reading or deleting the record
            raise DeduplicationUnavailable(f"idempotency store failed ({error_code(exc.__cause__ or exc)})") from None
        return result["status"]


class _GitHubBudget:
    """Stands in for the Lambda context outside Lambda: GitHub gives up after 10 seconds."""

    def __init__(self) -> None:
        self._deadline = time.monotonic() + GITHUB_TIMEOUT_SECONDS

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _run(key: dict[str, str], work: Callable[[], None]) -> dict[str, str]:
    work()
    return {"status": ACCEPTED}
