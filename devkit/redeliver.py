"""`webhook deliveries` and `webhook redeliver`: a hook's recent deliveries, and the redelivery
function's run once from a laptop (with ``GITHUB_TOKEN``, or an App's id and key file).

Both build their configuration with the function's own settings code (``RedeliverySettings``) from
the environment and the command's options, and list with the core's paging (``handler.core.recovery``).
``redeliver`` keeps its state in ``REDELIVERY_STATE_TABLE`` when set (so it and the function never
both recover one delivery), else in memory for the one run.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from devkit.errors import REJECTED, UNREACHABLE, USAGE, CliError
from handler.core.hooks import Hook
from handler.core.outcomes import ConfigurationError
from handler.core.ports import GitHubError, RunStopped
from handler.core.recovery import HookSummary, ListingLoops, ListingTooLong, RunSummary, pages
from handler.core.redelivery import Attempt, NotAnAttempt, by_guid
from handler.core.settings import RedeliverySettings

# A laptop run has no Lambda timeout: it still stops itself after this long.
RUN_SECONDS = 15 * 60
# `webhook deliveries` reads at most this many pages (100 attempts each).
MAX_LIST_PAGES = 200


def settings_for(
    hook: str, *, app_id: str | None, key_file: str | None, max_attempts: int | None = None
) -> RedeliverySettings:
    """The function's settings for one hook, from the environment and the command's options."""
    env = dict(os.environ)
    env["REDELIVERY_HOOKS"] = hook
    env["REDELIVERY_MODE"] = "redeliver"  # pull mode is the deployed function's (it needs the pipeline)
    if app_id:
        env["GITHUB_APP_ID"] = app_id
    if key_file:
        env["GITHUB_APP_PRIVATE_KEY_FILE"] = key_file
    if max_attempts is not None:
        env["REDELIVERY_MAX_ATTEMPTS"] = str(max_attempts)
    try:
        parsed = Hook.parse(hook)
    except ValueError as exc:
        raise CliError(str(exc), USAGE) from None
    if parsed.is_app and not (env.get("GITHUB_APP_ID") and key_file):
        raise CliError("the app hook needs --app-id and --app-key FILE (the App's PEM private key)", USAGE)
    if not parsed.is_app and not (env.get("GITHUB_TOKEN", "").strip() or env.get("GITHUB_TOKEN_PARAMETER")):
        raise CliError(
            "set GITHUB_TOKEN (a token with admin:repo_hook / admin:org_hook, or Webhooks: read and write)", USAGE
        )
    if key_file and not os.access(key_file, os.R_OK):
        raise CliError(f"cannot read {key_file}", USAGE)
    try:
        return RedeliverySettings.from_env(env)
    except ConfigurationError as exc:
        raise CliError(exc.detail or exc.message, USAGE) from None


def client(settings: RedeliverySettings) -> Any:
    from handler.github.deliveries import GitHubDeliveries
    from handler.redelivery import credentials

    deadline = time.monotonic() + RUN_SECONDS
    return GitHubDeliveries(
        api_url=settings.api_url, credentials=credentials(settings), time_left=lambda: deadline - time.monotonic()
    )


def attempts_since(api: Any, hook: Hook, since: float) -> tuple[list[Attempt], int]:
    """Every attempt newer than ``since`` (epoch seconds), newest first, and how many items were not attempts."""
    found: list[Attempt] = []
    malformed = 0
    try:
        for page in pages(api, hook, max_pages=MAX_LIST_PAGES):
            for item in page.items:
                try:
                    attempt = Attempt.from_api(item)
                except NotAnAttempt:
                    malformed += 1
                    continue
                if attempt.delivered_at < since:
                    return found, malformed
                found.append(attempt)
    except (ListingLoops, ListingTooLong) as exc:
        print(f"webhook deliveries: listing stopped ({exc}); showing what was read", file=sys.stderr)
    except GitHubError as exc:
        raise CliError(str(exc), REJECTED) from None
    except RunStopped as exc:
        raise CliError(f"stopped: {exc}", UNREACHABLE if exc.reason == "network" else REJECTED) from None
    return found, malformed


@dataclass(frozen=True, slots=True)
class Row:
    guid: str
    event: str
    action: str
    status: int
    attempts: int
    last: float

    @property
    def failed(self) -> bool:
        return not 200 <= self.status < 300


def rows(attempts: Sequence[Attempt]) -> list[Row]:
    """One row per guid: its newest attempt's status (or its success), and how many attempts GitHub shows."""
    table = []
    for guid, seen in by_guid(attempts).items():
        newest = max(seen, key=lambda a: a.id)
        ok = next((a.status_code for a in seen if a.succeeded), None)
        status = ok if ok is not None else newest.status_code
        table.append(Row(guid, newest.event or "", newest.action or "", status, len(seen), newest.delivered_at))
    return table


def render(table: Sequence[Row]) -> str:
    lines = [f"{'guid':<36}  {'event.action':<32} {'status':>6} {'attempts':>8}  last attempt (UTC)"]
    for row in table:
        name = f"{row.event}.{row.action}" if row.action else row.event
        stamp = datetime.fromtimestamp(row.last, UTC).strftime("%Y-%m-%d %H:%M:%S")
        status = str(row.status) if row.status else "none"
        lines.append(f"{row.guid[:36]:<36}  {name[:32]:<32} {status:>6} {row.attempts:>8}  {stamp}")
    return "\n".join(lines)


class ConsoleTelemetry:
    """The run's telemetry as short lines on stderr, and a progress bar (on a terminal only)."""

    def __init__(self, *, progress: bool) -> None:
        from tqdm import tqdm

        self.bar = tqdm(desc="redelivering", unit="delivery", disable=not progress, file=sys.stderr)

    def bind(self, **keys: Any) -> None: ...

    def unbind(self, *names: str) -> None: ...

    def log(
        self, level: str, message: str, *, metrics: Any = (), dimensions: Mapping[str, str] | None = None, **fields: Any
    ) -> None:
        if message in ("hook checked", "redelivery run"):
            return  # the command prints its own summary
        if message == "redelivery requested":
            self.bar.update(1)
        guid = fields.get("guid", "")
        extra = fields.get("detail") or fields.get("why") or ""
        self.bar.write(f"{level:<7} {message} {guid} {fields.get('event') or ''} {extra}".rstrip(), file=sys.stderr)

    def unexpected(self, exc: BaseException, message: str, **_: Any) -> None:
        self.bar.write(f"error   {message} ({type(exc).__name__})", file=sys.stderr)

    @contextmanager
    def span(self, name: str) -> Iterator[None]:
        yield


def since_or_window(since: str | None, lookback_hours: float = 72) -> float:
    """``--since`` as epoch seconds, or the default look-back window."""
    if since is None:
        return time.time() - lookback_hours * 3600
    from devkit.replay import parse_time

    return parse_time(since).timestamp()


def redeliver(settings: RedeliverySettings, *, since: float, dry_run: bool, progress: bool) -> RunSummary:
    """The redelivery function's run for the settings' hook, once."""
    from handler.redelivery import run

    telemetry = ConsoleTelemetry(progress=progress and not dry_run and sys.stderr.isatty())
    deadline = time.monotonic() + RUN_SECONDS
    policy = settings.policy
    if not settings.state_table:  # the shared state's window is the function's: --since never narrows it
        policy = replace(policy, lookback_seconds=max(0.0, time.time() - since))
    try:
        return run(
            replace(settings, policy=policy),
            telemetry,
            time_left=lambda: deadline - time.monotonic(),
            dry_run=dry_run,
        )
    finally:
        telemetry.bar.close()


def outcome(summary: RunSummary, hook: Hook, *, dry_run: bool) -> tuple[str, int]:
    """The summary line and the exit code: 0 done, 1 refused or stopped early, 3 GitHub unreachable."""
    result = dict(summary.hooks.get(hook.spec, {}))
    error = result.pop("error", None)
    if error is not None and "pages" not in result:  # an unexpected failure: its type only
        return f"not checked: {error}", REJECTED
    counts = HookSummary(**result)
    if error is not None:
        return f"not checked: {error}", REJECTED
    verb = "would redeliver" if dry_run else "redelivered"
    line = (
        f"{verb} {counts.redelivered}; checked {counts.checked} attempts in {counts.pages} pages; failed "
        f"{counts.failed}, refused by the receiver {counts.refused}, refused by GitHub {counts.github_refused}, "
        f"given up {counts.capped}, too old {counts.too_old}"
    )
    if counts.malformed:
        line += f", not attempts {counts.malformed}"
    if counts.complete:
        return line, 0
    line += f"; stopped early ({counts.stopped}: {counts.detail}): run it again"
    return line, UNREACHABLE if counts.stopped == "network" else REJECTED
