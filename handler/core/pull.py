"""Pull recovery, sans I/O: a failed delivery read back through GitHub's deliveries API and handed
to the receiver's own pipeline (archive, bus, claim check), under the receiver's deduplication key.

GitHub's record of an attempt (``GET …/deliveries/{id}``) has ``request.headers`` (what it sent) and
``request.payload`` (the payload as a JSON object, or null). The exact bytes are not kept, so the
signature cannot be checked again: the record's authenticity rests on the API (TLS, and the token or
App key that read it). The body is the payload as compact JSON, whatever the hook's content type.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from handler.core import headers as h
from handler.core.budget import Budget
from handler.core.delivery import JSON, Delivery, parse_delivery
from handler.core.handoff import Handoff
from handler.core.outcomes import Rejected
from handler.core.ports import Once, RunStopped, Status
from handler.core.recovery import Unrecoverable

# One hand-off's time: the archive, a claim check and the bus, each a few seconds at worst.
HANDOFF_SECONDS = 30.0
# What a hand-off needs at least (the archive's and the bus's calls, and the record's) to be started.
MIN_HANDOFF_SECONDS = 15.0


def request_of(record: Mapping[str, Any]) -> tuple[dict[str, str], bytes]:
    """The headers (lower-case) and a JSON body for the request a delivery record describes."""
    request = record.get("request")
    payload = request.get("payload") if isinstance(request, Mapping) else None
    sent = request.get("headers") if isinstance(request, Mapping) else None
    if not isinstance(payload, Mapping):
        raise Unrecoverable("GitHub kept no payload for this delivery")
    headers = {str(k).lower(): v for k, v in sent.items() if isinstance(v, str)} if isinstance(sent, Mapping) else {}
    # The record's own fields stand in for headers it lacks.
    if not headers.get(h.DELIVERY) and isinstance(record.get("guid"), str):
        headers[h.DELIVERY] = record["guid"]
    if not headers.get(h.EVENT) and isinstance(record.get("event"), str):
        headers[h.EVENT] = record["event"]
    headers[h.CONTENT_TYPE] = JSON
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
    return headers, body


def delivery_of(record: Mapping[str, Any]) -> tuple[Delivery, dict[str, str]]:
    """The :class:`Delivery` a record describes, marked recovered; raises :class:`Unrecoverable`."""
    headers, body = request_of(record)
    try:
        delivery = parse_delivery(headers, body)
    except Rejected as exc:  # a header the receiver would refuse too (no event, an invalid id)
        raise Unrecoverable(f"GitHub's record is not a delivery the receiver accepts ({exc.code})") from None
    return replace(delivery, recovered=True), headers


class PullRecovery:
    """A :class:`~handler.core.ports.Recovery` over the receiver's :class:`Handoff` and deduplication."""

    def __init__(
        self,
        *,
        handoff: Handoff,
        once: Once | None,
        time_left: Callable[[], float],
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._handoff = handoff
        self._once = once
        self._time_left = time_left
        self._clock = clock
        self._monotonic = monotonic

    def room(self) -> None:
        if self._time_left() < MIN_HANDOFF_SECONDS:
            raise RunStopped("no time left for another hand-off", reason="time")

    def recover(self, record: Mapping[str, Any]) -> Status:
        delivery, headers = delivery_of(record)
        budget = Budget(min(HANDOFF_SECONDS, self._time_left()), clock=self._monotonic)
        received_at = self._clock()

        def work() -> None:
            self._handoff.deliver(delivery, headers, received_at, budget)

        # While active, every AWS call checks the budget (handler.aws.clients), as in the receiver.
        with budget.active():
            if self._once is None:
                work()
                return Status.ACCEPTED
            status = self._once.once(delivery.key, work, deadline=budget)
        return Status.ACCEPTED if status is Status.UNRECORDED else status
