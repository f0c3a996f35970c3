"""The receiver's flow, top-down: source, size, signature, parse, hand off (once), route, answer.

Sans I/O: the edge (``handler.app``) hands in headers and the raw body; secrets, deduplication, the
hand-off's targets and telemetry are ports (:mod:`handler.core.ports`), wired in by the edge.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from handler.core import signature
from handler.core.budget import Budget
from handler.core.delivery import Delivery, claimed_ids, parse_delivery
from handler.core.handoff import Handoff
from handler.core.outcomes import (
    ForbiddenSource,
    Outcome,
    PayloadTooLarge,
    ReplayedDelivery,
    SignatureMismatch,
    Unavailable,
)
from handler.core.ports import Claim, Clock, Once, Replays, Secrets, Status, Telemetry
from handler.core.report import capped, report
from handler.core.routing import Router
from handler.core.settings import Settings


def secret_label(position: int) -> str:
    """Which line of the secret parameter verified a delivery, never its value: ``current`` (the
    first), ``previous`` (the second, as during a rotation), then ``line 3``…

    >>> secret_label(0), secret_label(1), secret_label(2)
    ('current', 'previous', 'line 3')
    """
    return "current" if position == 0 else "previous" if position == 1 else f"line {position + 1}"


@dataclass(frozen=True, slots=True)
class Receipt:
    """What the receiver did with a delivery: ``status`` is ``ACCEPTED`` or ``DUPLICATE``."""

    status: Status
    delivery: Delivery


class Receiver:
    def __init__(
        self,
        settings: Settings,
        secrets: Secrets,
        *,
        telemetry: Telemetry,
        handoff: Handoff | None = None,
        once: Once | None = None,
        replays: Replays | None = None,
        router: Router | None = None,
        route_args: tuple[Any, ...] = (),
        clock: Clock = time.time,
        monotonic: Clock = time.monotonic,
    ) -> None:
        self._settings = settings
        self._secrets = secrets
        self._telemetry = telemetry
        self._handoff = handoff if handoff is not None and handoff.configured else None
        self._once = once
        self._replays = replays
        self._router = router
        self._route_args = route_args
        self._clock = clock
        self._monotonic = monotonic

    @property
    def max_body_bytes(self) -> int:
        return self._settings.max_body_bytes

    def now(self) -> float:
        """The budget's clock: what an edge reads when a request arrives (see ``arrived``)."""
        return self._monotonic()

    def receive(
        self,
        headers: Mapping[str, str],
        body: bytes,
        *,
        source_ip: str | None = None,
        lambda_context: Any = None,
        arrived: float | None = None,
    ) -> Receipt:
        """Verify, hand off and route one request. ``headers`` must be lower-case or case-insensitive.
        ``arrived`` (on :meth:`now`'s clock): the budget counts from then, not from this call (a
        request that waited for a worker thread under uvicorn has less time left).

        Raises :class:`~handler.core.outcomes.Rejected` (a 4xx) or ``Unavailable`` (a 503), already
        reported (:func:`~handler.core.report.report`): the edge only renders it.
        """
        received_at = self._clock()
        waited = max(0.0, self._monotonic() - arrived) if arrived is not None else 0.0
        budget = Budget.for_request(self._settings.time_budget_seconds - waited, lambda_context, clock=self._monotonic)
        # Context for every log line of this request, removed at the end (uvicorn reuses the logger).
        keys: dict[str, Any] = claimed_ids(headers)
        self._telemetry.bind(**keys)
        # While active, every AWS call made for this request checks the budget (handler.aws.clients).
        with budget.active():
            try:
                return self._receive(headers, body, source_ip, received_at, budget, lambda_context, keys)
            finally:
                self._telemetry.unbind(*keys)

    def _receive(
        self,
        headers: Mapping[str, str],
        body: bytes,
        source_ip: str | None,
        received_at: float,
        budget: Budget,
        lambda_context: Any,
        keys: dict[str, Any],
    ) -> Receipt:
        try:
            delivery, position = self._verified(headers, body, source_ip)
            secret = secret_label(position)
            verified = {
                "action": capped(delivery.action),
                "hook_id": delivery.hook_id,
                "repository": capped(delivery.repository),
                "secret": secret,
            }
            keys.update(verified)
            self._telemetry.bind(**verified)
            if position:
                # During a rotation: an operator watches this fall to zero before removing the old secret.
                self._telemetry.log(
                    "info",
                    "delivery verified with an older secret",
                    metrics=["SecretVerified"],
                    dimensions={"secret": secret},
                )
            status = self._hand_off_once(delivery, headers, received_at, budget, lambda_context)
        except Outcome as exc:
            report(self._telemetry, exc)
            raise
        except Exception as exc:
            report(self._telemetry, Outcome(), cause=exc)
            raise
        self._log_outcome(delivery, status)
        if status is not Status.DUPLICATE:
            self._route(delivery)
        return Receipt(Status.ACCEPTED if status is Status.UNRECORDED else status, delivery)

    def _log_outcome(self, delivery: Delivery, status: Status) -> None:
        """The one line a delivery logs, carrying its metrics (EMF) too."""
        event = {"event": delivery.event}
        if status is Status.UNRECORDED:
            # Handed off, so accepted; only the dedup record failed (a redelivery may forward again).
            self._telemetry.log(
                "warning",
                "delivery accepted but not recorded as done",
                metrics=["DeliveryAccepted", "DedupRecordFailed"],
                dimensions=event,
                status=Status.ACCEPTED.value,
            )
        elif status is Status.DUPLICATE:
            self._telemetry.log("info", "delivery duplicate", metrics=["DeliveryDuplicate"], status=status.value)
        else:
            self._telemetry.log(
                "info", "delivery accepted", metrics=["DeliveryAccepted"], dimensions=event, status=status.value
            )

    def _verified(self, headers: Mapping[str, str], body: bytes, source_ip: str | None) -> tuple[Delivery, int]:
        # Source and size first: we refuse to hash more than the limit. Then the signature,
        # before anything in the body (or any header besides the signature) is interpreted.
        allowed = self._settings.allowed_sources
        if allowed is not None and not allowed.allows(source_ip):
            raise ForbiddenSource()
        if len(body) > self._settings.max_body_bytes:
            raise PayloadTooLarge()
        presented = signature.Signature.from_headers(headers, allow_sha1=self._settings.allow_sha1)
        position = self._check_signature(body, presented)
        return parse_delivery(headers, body), position

    def _check_signature(self, body: bytes, presented: signature.Signature) -> int:
        """The position of the secret that verified ``body`` in the parameter (0: its first line)."""
        known = self._secrets.current()
        position = signature.matching(body, signature=presented, secrets=known)
        if position is not None:
            return position
        # A mismatch may mean the secret was rotated: re-read it, at most once per interval.
        try:
            fresh = self._secrets.refreshed()
        except Unavailable as exc:
            # Still a 401: a forged request must not learn that SSM is failing.
            self._telemetry.log("warning", "secret refresh failed", error=exc.code, detail=capped(exc.detail))
            fresh = None
        if fresh is not None:
            # Only a secret not known before can verify now (the known ones just failed).
            position = signature.matching(body, signature=presented, secrets=fresh)
            if position is not None and fresh[position] not in known:
                self._telemetry.log("info", "webhook secret refreshed after a rotation")
                return position
        raise SignatureMismatch()

    def _hand_off_once(
        self, delivery: Delivery, headers: Mapping[str, str], received_at: float, budget: Budget, context: Any
    ) -> Status:
        handoff = self._handoff

        def work() -> None:
            if handoff is not None:
                handoff.deliver(delivery, headers, received_at, budget)

        if self._once is None:
            work()
            return Status.ACCEPTED
        # The record is bound to the body (a different body under an accepted key is refused), and a
        # body is bound to the first delivery id that brought it (a replay under a fresh id is refused).
        digest = hashlib.sha256(delivery.body).hexdigest()
        if self._replays is not None:
            budget.check("replay protection")
            claim = self._replays.claim(digest, key=delivery.key, delivery_id=delivery.delivery_id.lower())
            if claim is Claim.REPLAY:
                raise ReplayedDelivery()
            if claim is Claim.SAME_EVENT:
                # The same bytes under the same delivery id, another (unsigned) hook id: already handed
                # off. Another hook's *different* body (an App's) has its own digest and goes on.
                return Status.DUPLICATE
        budget.check("deduplication")
        # Outside Lambda (uvicorn) the request's budget stands in for the Lambda context.
        return self._once.once(delivery.key, work, deadline=context or budget, digest=digest)

    def _route(self, delivery: Delivery) -> None:
        if self._router is None:
            return
        for listener, exc in self._router.dispatch(delivery, *self._route_args):
            # The type, not the message: a message may quote payload text.
            name = getattr(listener, "__qualname__", repr(listener))
            self._telemetry.log(
                "error",
                "route handler failed",
                metrics=["RouteHandlerFailed"],
                handler=name,
                error_type=type(exc).__name__,
            )
