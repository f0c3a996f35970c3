"""`webhook deliveries` and `webhook redeliver`: a hook's recent deliveries, and the redelivery
function's logic run once from a laptop (with ``GITHUB_TOKEN``, or an App's id and key file)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from devkit.errors import USAGE, CliError
from handler.core.redelivery import Attempt, Hook, HookSummary, MemoryStateStore, Policy, RunStopped, by_guid, run_hook
from handler.core.settings import DEFAULT_GITHUB_API_URL
from handler.github.auth import Credentials
from handler.github.deliveries import GitHubDeliveries, GitHubError

# A laptop run has no Lambda timeout: it still stops itself after this long.
RUN_SECONDS = 15 * 60


def hook_from(spec: str) -> Hook:
    try:
        return Hook.parse(spec)
    except ValueError as exc:
        raise CliError(str(exc), USAGE) from None


def credentials(hook: Hook, *, app_id: str | None, key_file: str | None) -> Credentials:
    if hook.is_app:
        if not (app_id and key_file):
            raise CliError("the app hook needs --app-id and --app-key FILE (the App's PEM private key)", USAGE)
        try:
            key = Path(key_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise CliError(f"cannot read {key_file} ({exc.strerror})", USAGE) from None
        return Credentials(app_id=app_id, private_key=lambda: key)
    token = os.environ.get("GITHUB_TOKEN", "").strip()
    if not token:
        raise CliError(
            "set GITHUB_TOKEN (a token with admin:repo_hook / admin:org_hook, or Webhooks: read and write)", USAGE
        )
    return Credentials(token=lambda: token)


def client(hook: Hook, *, app_id: str | None, key_file: str | None) -> GitHubDeliveries:
    deadline = time.monotonic() + RUN_SECONDS
    return GitHubDeliveries(
        api_url=os.environ.get("GITHUB_API_URL") or DEFAULT_GITHUB_API_URL,
        credentials=credentials(hook, app_id=app_id, key_file=key_file),
        time_left=lambda: deadline - time.monotonic(),
    )


def attempts_since(api: GitHubDeliveries, hook: Hook, since: float) -> list[Attempt]:
    """Every attempt newer than ``since`` (epoch seconds), newest first."""
    found: list[Attempt] = []
    try:
        page = api.first_page(hook)
        while True:
            for item in page.items:
                attempt = Attempt.from_api(item)
                if attempt.delivered_at < since:
                    return found
                found.append(attempt)
            if page.next_url is None:
                return found
            page = api.next_page(hook, page.next_url)
    except GitHubError as exc:
        raise CliError(str(exc)) from None
    except RunStopped as exc:
        raise CliError(f"stopped: {exc}") from None


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
    """One row per guid: its newest attempt's status, and how many attempts GitHub shows."""
    table = []
    for guid, seen in by_guid(attempts).items():
        newest = max(seen, key=lambda a: a.id)
        ok = any(a.succeeded for a in seen)
        status = next(a.status_code for a in seen if a.succeeded) if ok else newest.status_code
        table.append(Row(guid, newest.event or "", newest.action or "", status, len(seen), newest.delivered_at))
    return table


def render(table: Sequence[Row]) -> str:
    lines = [f"{'guid':<36}  {'event.action':<32} {'status':>6} {'attempts':>8}  last attempt (UTC)"]
    for row in table:
        name = f"{row.event}.{row.action}" if row.action else row.event
        stamp = datetime.fromtimestamp(row.last, UTC).strftime("%Y-%m-%d %H:%M:%S")
        status = str(row.status) if row.status else "none"
        lines.append(f"{row.guid:<36}  {name[:32]:<32} {status:>6} {row.attempts:>8}  {stamp}")
    return "\n".join(lines)


class ConsoleTelemetry:
    """The run's telemetry as short lines on stderr, and a progress bar over the redeliveries."""

    def __init__(self, *, progress: bool) -> None:
        from tqdm import tqdm

        self.bar = tqdm(desc="redelivering", unit="delivery", disable=not progress, file=sys.stderr)

    def bind(self, **keys: Any) -> None: ...

    def unbind(self, *names: str) -> None: ...

    def log(
        self, level: str, message: str, *, metrics: Any = (), dimensions: Mapping[str, str] | None = None, **fields: Any
    ) -> None:
        if message == "redelivery requested":
            self.bar.update(1)
        guid = fields.get("guid", "")
        self.bar.write(f"{level:<7} {message} {guid} {fields.get('event') or ''}".rstrip(), file=sys.stderr)

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


def redeliver(
    api: GitHubDeliveries, hook: Hook, *, since: float, max_attempts: int, dry_run: bool, progress: bool
) -> HookSummary:
    """The redelivery function's run for one hook, once, with no state kept between runs."""
    telemetry = ConsoleTelemetry(progress=progress and not dry_run)
    policy = Policy(lookback_seconds=max(0.0, time.time() - since), max_attempts=max_attempts)
    try:
        return run_hook(
            hook,
            api=api,
            store=MemoryStateStore(),
            policy=policy,
            now=time.time(),
            telemetry=telemetry,
            dry_run=dry_run,
        )
    except GitHubError as exc:
        raise CliError(str(exc)) from None
    finally:
        telemetry.bar.close()
