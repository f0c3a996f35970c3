"""The redelivery function: every few minutes, asks GitHub to redeliver the deliveries that failed in a
way a retry can fix (``handler.redelivery.handler`` in template.yaml, on a schedule).

The decisions are the core's (``handler.core.redelivery``); this module wires them to GitHub's
REST API (``handler.github``), the state table and SSM (``handler.aws``) and Powertools telemetry.
It never imports the receiver's web stack, and the receiver never imports it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from handler.aws.redelivery_state import DynamoStateStore
from handler.aws.ssm import secure_string
from handler.aws.telemetry import PowertoolsTelemetry
from handler.core.outcomes import Outcome
from handler.core.redelivery import HookSummary, MemoryStateStore, NotAnAttempt, StateStore, run_hook
from handler.core.settings import RedeliverySettings, TelemetrySettings
from handler.github.auth import Credentials
from handler.github.deliveries import GitHubDeliveries, GitHubError

# Stop starting requests this long before the function's timeout: the summary must still be logged.
SAFETY_MARGIN_SECONDS = 5.0


def handler(event: Any, context: Any) -> dict[str, Any]:
    """One scheduled run over every configured hook; returns (and logs) the summary."""
    telemetry = PowertoolsTelemetry(TelemetrySettings.from_env())
    try:
        settings = RedeliverySettings.from_env()
    except Outcome as exc:
        telemetry.log("error", "redelivery not configured", error=exc.code, detail=exc.detail)
        raise  # an invocation error: the function's Errors alarm fires, every run, until it is fixed
    remaining = context.get_remaining_time_in_millis
    return run(settings, telemetry, time_left=lambda: remaining() / 1000 - SAFETY_MARGIN_SECONDS)


def run(
    settings: RedeliverySettings,
    telemetry: PowertoolsTelemetry,
    *,
    time_left: Callable[[], float],
    store: StateStore | None = None,
    dry_run: bool = False,
    progress: Callable[[str, HookSummary], None] | None = None,
) -> dict[str, Any]:
    """Check each hook once. ``store`` defaults to the state table (or memory without one)."""
    if store is None:
        lookback = settings.policy.lookback_seconds
        store = (
            DynamoStateStore(settings.state_table, lookback_seconds=lookback)
            if settings.state_table
            else MemoryStateStore()
        )
    api = GitHubDeliveries(api_url=settings.api_url, credentials=credentials(settings), time_left=time_left)
    summary: dict[str, Any] = {"redelivered": 0, "hooks": {}}
    for hook in settings.hooks:
        try:
            counts = run_hook(
                hook,
                api=api,
                store=store,
                policy=settings.policy,
                now=time.time(),
                telemetry=telemetry,
                dry_run=dry_run,
            )
        except (GitHubError, PermissionError, NotAnAttempt) as exc:  # messages of ours: safe to show
            telemetry.log("error", "hook not checked", hook=hook.spec, detail=str(exc)[:300])
            summary["hooks"][hook.spec] = {"error": str(exc)[:300]}
            continue
        except Exception as exc:  # anything else (the state table, a library): its type only, never its text
            telemetry.unexpected(exc, "hook not checked")
            summary["hooks"][hook.spec] = {"error": type(exc).__name__}
            continue
        summary["redelivered"] += counts.redelivered
        summary["hooks"][hook.spec] = asdict(counts)
        metrics = {
            "DeliveriesChecked": counts.checked,
            "RedeliveryRequested": counts.redelivered,
            "RedeliveryRefused": counts.refused,
            "RedeliveryGaveUp": counts.capped,
        }
        telemetry.log("info", "hook checked", metrics=metrics, hook=hook.spec, **asdict(counts))
        if not counts.complete:
            telemetry.log("warning", "hook check stopped early: continued next run", hook=hook.spec, why=counts.stopped)
        if progress is not None:
            progress(hook.spec, counts)
    summary["requests"] = api.requests
    return summary


def credentials(settings: RedeliverySettings) -> Credentials:
    """Secrets are read when first needed (a run with only the app hook never reads the token)."""
    token: Callable[[], str] | None = None
    if settings.token:
        literal = settings.token
        token = lambda: literal  # noqa: E731
    elif settings.token_parameter:
        token = secure_string(settings.token_parameter)
    private_key = secure_string(settings.app_private_key_parameter) if settings.app_private_key_parameter else None
    return Credentials(token=token, app_id=settings.app_id, private_key=private_key)
