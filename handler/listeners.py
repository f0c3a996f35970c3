"""Your listeners: functions that react to verified deliveries in process. Add one here (or import
your module from here)::

    @router.on("issues.opened")
    def triage(delivery: Delivery, log: Log) -> None:
        ...

A listener gets the verified :class:`~handler.core.delivery.Delivery` after it has been handed off
(archived and on the bus), and never for a duplicate, with ``log``: a line on the receiver's log,
carrying the delivery's keys already. A failing listener is logged with the delivery id and does not
change the answer to GitHub. Keep listeners fast and never log payload values. Nothing here imports
the app: a listener is tested by calling it with a delivery and any function as ``log``. (The router
itself is ``handler.core.routing``.)
"""

from __future__ import annotations

from handler.core.delivery import Delivery
from handler.core.routing import Log, Router

router = Router()


@router.on("ping")
def ping(delivery: Delivery, log: Log) -> None:
    """GitHub sends a ping when the hook is created (the line carries its hook_id already)."""
    log("info", "webhook ping")


@router.on("pull_request.opened")
def pull_request_opened(delivery: Delivery, log: Log) -> None:
    """Example: react to a new pull request. Read the payload freely; log no values from it."""
    if not isinstance(delivery.payload.get("pull_request"), dict):
        log("warning", "pull_request event without a pull_request object")
