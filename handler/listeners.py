"""Your listeners: functions that react to verified deliveries in process. Add one here (or import
your module from here)::

    @router.on("issues.opened")
    def triage(delivery: Delivery) -> None:
        ...

A listener gets the verified :class:`~handler.core.delivery.Delivery` after it has been handed off
(archived and on the bus), and never for a duplicate. A failing listener is logged with the
delivery id and does not change the answer to GitHub. Keep listeners fast and never log payload
values. (The router itself is ``handler.core.routing``.)
"""

from __future__ import annotations

from typing import Any

from handler.core.delivery import Delivery
from handler.core.routing import Router

router = Router()


def log(level: str, message: str, **fields: Any) -> None:
    """A line on the receiver's log, at ``level`` (``info``, ``warning``, ``error``); it carries the
    delivery's keys already."""
    from handler.app import telemetry  # built per container by the edge

    telemetry().log(level, message, **fields)


@router.on("ping")
def ping(delivery: Delivery) -> None:
    """GitHub sends a ping when the hook is created (the line carries its hook_id already)."""
    log("info", "webhook ping")


@router.on("pull_request.opened")
def pull_request_opened(delivery: Delivery) -> None:
    """Example: react to a new pull request. Read the payload freely; log no values from it."""
    if not isinstance(delivery.payload.get("pull_request"), dict):
        log("warning", "pull_request event without a pull_request object")
