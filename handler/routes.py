"""Your in-process handlers. Add a function here (or import your module from here):

    @router.on("issues.opened")
    def triage(delivery: Delivery) -> None:
        ...

A handler gets the verified :class:`~handler.delivery.Delivery` after it has been handed off
(archived and on the bus), and never for a duplicate. A failing handler is logged with the
delivery id and does not change the answer to GitHub. Keep handlers fast and never log
payload values.
"""

from __future__ import annotations

from handler.delivery import Delivery
from handler.routing import Router
from handler.telemetry import logger

router = Router()


@router.on("ping")
def ping(delivery: Delivery) -> None:
    """GitHub sends a ping when the hook is created: note which hook it was."""
    logger.info("webhook ping", extra={"hook_id": delivery.payload.get("hook_id")})


@router.on("pull_request.opened")
def pull_request_opened(delivery: Delivery) -> None:
    """Example: react to a new pull request (log its number; titles are payload text, not logged)."""
    pull_request = delivery.payload.get("pull_request") or {}
    logger.info("pull request opened", extra={"number": pull_request.get("number")})
