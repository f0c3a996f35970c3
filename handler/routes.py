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
    """GitHub sends a ping when the hook is created (the line carries its hook_id already)."""
    logger.info("webhook ping")


@router.on("pull_request.opened")
def pull_request_opened(delivery: Delivery) -> None:
    """Example: react to a new pull request. Read the payload freely; log no values from it."""
    if not isinstance(delivery.payload.get("pull_request"), dict):
        logger.warning("pull_request event without a pull_request object")
