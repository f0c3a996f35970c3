"""The receiver's flow, top-down: source, size, signature, parse, hand off (once), route, answer.

No FastAPI and no boto3 here: the HTTP edge (``handler.app``) hands in headers and the raw
body; the secret store, the hand-off, deduplication and the router are injected.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from handler import signature
from handler.budget import Budget
from handler.config import Settings
from handler.dedup import ACCEPTED, DUPLICATE, UNRECORDED, Deduplicator
from handler.delivery import Delivery, claimed_ids, parse_delivery
from handler.errors import ForbiddenSource, PayloadTooLarge, Rejected, SignatureMismatch, Unavailable
from handler.handoff import Handoff
from handler.routing import Router
from handler.secret_store import SecretStore
from handler.telemetry import capped, log_unexpected, logger, metric


@dataclass(frozen=True, slots=True)
class Receipt:
    """What the receiver did with a delivery: ``status`` is ``accepted`` or ``duplicate``."""

    status: str
    delivery: Delivery


class Receiver:
    def __init__(
        self,
        settings: Settings,
        secrets: SecretStore,
        *,
        handoff: Handoff | None = None,
        dedup: Deduplicator | None = None,
        router: Router | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._secrets = secrets
        self._handoff = handoff if handoff is not None and handoff.configured else None
        self._dedup = dedup
        self._router = router
        self._clock = clock

    def receive(
        self, headers: Mapping[str, str], body: bytes, *, source_ip: str | None = None, lambda_context: Any = None
    ) -> Receipt:
        """Verify, hand off and route one request. ``headers`` must be lower-case or case-insensitive.

        Raises :class:`~handler.errors.Rejected` (a 4xx) or :class:`~handler.errors.Unavailable` (a 503).
        """
        received_at = self._clock()
        budget = Budget.for_request(self._settings.time_budget_seconds, lambda_context)
        # Context for every log line of this request, removed at the end (uvicorn reuses the logger).
        keys = claimed_ids(headers)
        logger.append_keys(**keys)
        # While active, every AWS call made for this request checks the budget (handler.aws_clients).
        with budget.active():
            try:
                try:
                    delivery = self._verified(headers, body, source_ip)
                    verified = {
                        "action": capped(delivery.action),
                        "hook_id": delivery.hook_id,
                        "repository": capped(delivery.repository),
                    }
                    keys.update(verified)
                    logger.append_keys(**verified)
                    status = self._hand_off_once(delivery, headers, received_at, budget, lambda_context)
                except Rejected as exc:
                    self._log_rejected(exc)
                    raise
                except Unavailable as exc:
                    extra = {
                        "error": exc.code,
                        "detail": capped(exc.detail),
                        **metric("HandoffFailed", target=exc.target),
                    }
                    logger.error("delivery not accepted", extra=extra)
                    raise
                except Exception as exc:
                    log_unexpected(exc, extra=metric("UnexpectedError"))
                    raise
                self._log_outcome(delivery, status)
                if status != DUPLICATE:
                    self._route(delivery)
                return Receipt(ACCEPTED if status == UNRECORDED else status, delivery)
            finally:
                logger.remove_keys(keys)

    @property
    def max_body_bytes(self) -> int:
        return self._settings.max_body_bytes

    def refuse(self, headers: Mapping[str, str], exc: Rejected) -> None:
        """Log a refusal decided by the edge before :meth:`receive` (an oversized body it did not read)."""
        keys = claimed_ids(headers)
        logger.append_keys(**keys)
        try:
            self._log_rejected(exc)
        finally:
            logger.remove_keys(keys)

    @staticmethod
    def _log_rejected(exc: Rejected) -> None:
        logger.warning("delivery rejected", extra={"error": exc.code, **metric("DeliveryRejected", reason=exc.reason)})

    def _log_outcome(self, delivery: Delivery, status: str) -> None:
        """The one line a delivery logs, carrying its metrics (EMF) too."""
        if status == UNRECORDED:
            # Handed off, so accepted; only the dedup record failed (a redelivery may forward again).
            extra = {"status": ACCEPTED, **metric("DeliveryAccepted", "DedupRecordFailed", event=delivery.event)}
            logger.warning("delivery accepted but not recorded as done", extra=extra)
        elif status == DUPLICATE:
            logger.info("delivery duplicate", extra={"status": status, **metric("DeliveryDuplicate")})
        else:
            extra = {"status": status, **metric("DeliveryAccepted", event=delivery.event)}
            logger.info("delivery accepted", extra=extra)

    def _verified(self, headers: Mapping[str, str], body: bytes, source_ip: str | None) -> Delivery:
        # Source and size first: we refuse to hash more than the limit. Then the signature,
        # before anything in the body (or any header besides the signature) is interpreted.
        allowed = self._settings.allowed_sources
        if allowed is not None and not allowed.allows(source_ip):
            raise ForbiddenSource()
        if len(body) > self._settings.max_body_bytes:
            raise PayloadTooLarge()
        presented = signature.Signature.from_headers(headers, allow_sha1=self._settings.allow_sha1)
        self._check_signature(body, presented)
        return parse_delivery(headers, body)

    def _check_signature(self, body: bytes, presented: signature.Signature) -> None:
        known = self._secrets.current()
        if signature.verify(body, signature=presented, secrets=known):
            return
        # A mismatch may mean the secret was rotated: re-read it, at most once per interval.
        try:
            fresh = self._secrets.refreshed()
        except Unavailable as exc:
            # Still a 401: a forged request must not learn that SSM is failing.
            logger.warning("secret refresh failed", extra={"error": exc.code, "detail": capped(exc.detail)})
            fresh = None
        if fresh is not None:
            new = [secret for secret in fresh if secret not in known]
            if new and signature.verify(body, signature=presented, secrets=new):
                logger.info("webhook secret refreshed after a rotation")
                return
        raise SignatureMismatch()

    def _hand_off_once(
        self, delivery: Delivery, headers: Mapping[str, str], received_at: float, budget: Budget, context: Any
    ) -> str:
        handoff = self._handoff

        def work() -> None:
            if handoff is not None:
                handoff.deliver(delivery, headers, received_at, budget)

        if self._dedup is None:
            work()
            return ACCEPTED
        budget.check("deduplication")
        # Outside Lambda (uvicorn) the request's budget stands in for the Lambda context.
        return self._dedup.once(delivery.delivery_id, work, lambda_context=context or budget)

    def _route(self, delivery: Delivery) -> None:
        if self._router is None:
            return
        for func, exc in self._router.dispatch(delivery):
            # The type, not the message: a message may quote payload text.
            name = getattr(func, "__qualname__", repr(func))
            extra = {"handler": name, "error_type": type(exc).__name__, **metric("RouteHandlerFailed")}
            logger.error("route handler failed", extra=extra)
