"""The redelivery function: every few minutes, recovers the deliveries that failed in a way a retry
can fix (``handler.redelivery.handler`` in template.yaml, on a schedule), by asking GitHub to
redeliver them (``REDELIVERY_MODE=redeliver``) or by reading them back and handing them off itself
(``pull``).

The loop and its decisions are the core's (``handler.core.recovery``); this module wires them to
GitHub's REST API (``handler.github``), the state table, SSM and, in pull mode, the receiver's
pipeline (``handler.aws``), and Powertools telemetry. It never imports the receiver's web stack.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from handler.aws import pipeline
from handler.aws.redelivery_state import DynamoStateStore
from handler.aws.ssm import secure_string
from handler.aws.telemetry import PowertoolsTelemetry
from handler.core.memory_state import MemoryStateStore
from handler.core.outcomes import Outcome
from handler.core.ports import StateStore, Telemetry
from handler.core.pull import PullRecovery
from handler.core.recovery import HookSummary, Mode, RunSummary
from handler.core.recovery import run as run_hooks
from handler.core.settings import RedeliverySettings, TelemetrySettings
from handler.github.auth import Credentials
from handler.github.deliveries import GitHubDeliveries

# Stop starting requests this long before the function's timeout: the state must still be saved
# (each save is one bounded DynamoDB call) and the summary logged.
SAFETY_MARGIN_SECONDS = 10.0
# Rate limits seen by this container's runs (credential -> until when, why): the next run of a warm
# container sends nothing with a spent credential before its reset either.
_BLOCKED: dict[str, tuple[float, str]] = {}


def handler(event: Any, context: Any) -> dict[str, Any]:
    """One scheduled run over every configured hook; returns (and logs) the summary."""
    telemetry = PowertoolsTelemetry(TelemetrySettings.from_env())
    try:
        settings = RedeliverySettings.from_env()
    except Outcome as exc:
        telemetry.log("error", "redelivery not configured", error=exc.code, detail=exc.detail)
        raise  # an invocation error: the function's Errors alarm fires, every run, until it is fixed
    remaining = context.get_remaining_time_in_millis
    return run(settings, telemetry, time_left=lambda: remaining() / 1000 - SAFETY_MARGIN_SECONDS).as_dict()


def run(
    settings: RedeliverySettings,
    telemetry: Telemetry,
    *,
    time_left: Callable[[], float],
    store: StateStore | None = None,
    api: GitHubDeliveries | None = None,
    dry_run: bool = False,
    progress: Callable[[str, HookSummary], None] | None = None,
    clock: Callable[[], float] = time.time,
) -> RunSummary:
    """Check each hook once. ``store`` defaults to the state table (or memory without one)."""
    if store is None:
        lookback = settings.policy.lookback_seconds
        store = (
            DynamoStateStore(settings.state_table, lookback_seconds=lookback)
            if settings.state_table
            else MemoryStateStore()
        )
    if api is None:
        api = GitHubDeliveries(
            api_url=settings.api_url, credentials=credentials(settings), time_left=time_left, blocked=_BLOCKED
        )
    mode = Mode(settings.mode)
    recovery = None
    if mode is Mode.PULL:
        assert settings.pipeline is not None  # RedeliverySettings requires it in pull mode
        recovery = PullRecovery(
            handoff=pipeline.handoff(settings.pipeline, telemetry),
            once=pipeline.deduplicator(settings.pipeline),
            time_left=time_left,
        )
    return run_hooks(
        settings.hooks,
        api=api,
        store=store,
        policy=settings.policy,
        telemetry=telemetry,
        mode=mode,
        recovery=recovery,
        clock=clock,
        max_pages=settings.max_pages,
        dry_run=dry_run,
        progress=progress,
    )


def credentials(settings: RedeliverySettings) -> Credentials:
    """Secrets are read when first needed (a run with only the app hook never reads the token)."""
    token: Callable[[], str] | None = None
    if settings.token:
        literal = settings.token
        token = lambda: literal  # noqa: E731
    elif settings.token_parameter:
        token = secure_string(settings.token_parameter)
    private_key: Callable[[], str] | None = None
    if settings.app_private_key_parameter:
        private_key = secure_string(settings.app_private_key_parameter)
    elif settings.app_private_key_file:
        path = Path(settings.app_private_key_file)
        private_key = lambda: path.read_text(encoding="utf-8")  # noqa: E731
    return Credentials(token=token, app_id=settings.app_id, private_key=private_key)
