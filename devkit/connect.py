"""`webhook connect`: point a repository's (or an organization's) webhook at a deployed stack, and prove it.

1. The stack's ``WebhookUrl`` output and ``WebhookSecretParameterName`` parameter (CloudFormation), then the
   secret itself (SSM, decrypted: the parameter's first line, the one the receiver calls ``current``).
2. The hook that already points at that URL is updated (``PATCH``): its config (``json``, TLS verified,
   the secret), its events and ``active``; with none, one is created (``POST …/hooks``). Run twice, it
   finds its own hook: never a second one.
3. A ping (``POST …/hooks/{id}/pings``), then the ping's delivery read back through the deliveries API:
   what the receiver answered, or why GitHub could not reach it.

The secret is sent to GitHub and never printed. Credentials as for `webhook redeliver`: ``GITHUB_TOKEN``
(``admin:repo_hook``, or ``admin:org_hook`` for ``--org``; a fine-grained token's Webhooks: read and
write) and ``GITHUB_API_URL``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from devkit.errors import REJECTED, UNREACHABLE, USAGE, CliError
from handler.core.hooks import Hook
from handler.core.ports import GitHubError, Refused, RunStopped
from handler.core.secrets import split_secrets

PING_WAIT_SECONDS = 20.0  # GitHub sends the ping within seconds of the request
PING_POLL_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where GitHub must deliver, and the secret it must sign with."""

    url: str
    secret: str = ""  # never printed


@dataclass(frozen=True, slots=True)
class Connected:
    hook: Hook  # its REDELIVERY_HOOKS entry
    created: bool
    status_code: int  # the ping's answer (0: GitHub reached nothing)
    status: str  # GitHub's words for it


def owner_path(repo: str | None, org: str | None) -> str:
    """``repos/O/R`` or ``orgs/O``, checked as a hook spec would be."""
    if bool(repo) == bool(org):
        raise CliError("give --repo OWNER/REPO or --org ORG", USAGE)
    spec = f"repos/{repo}/hooks/1" if repo else f"orgs/{org}/hooks/1"
    try:
        return Hook.parse(spec).spec.rsplit("/hooks/", 1)[0]
    except ValueError:
        raise CliError(f"not a repository (OWNER/REPO) or organization: {repo or org}", USAGE) from None


def stack_endpoint(stack: str) -> tuple[str, str]:
    """The stack's webhook URL and the name of its secret parameter, from CloudFormation."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        [found] = boto3.client("cloudformation").describe_stacks(StackName=stack)["Stacks"]
    except ClientError as exc:
        raise CliError(f"no stack {stack} in this region ({exc.response['Error'].get('Code')})", REJECTED) from None
    except BotoCoreError as exc:
        raise CliError(f"cannot call CloudFormation: {exc}", USAGE) from None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in found.get("Outputs", [])}
    parameters = {
        p["ParameterKey"]: p.get("ResolvedValue") or p.get("ParameterValue") for p in found.get("Parameters", [])
    }
    url, name = outputs.get("WebhookUrl"), parameters.get("WebhookSecretParameterName")
    if not url or not name:
        raise CliError(f"stack {stack} has no WebhookUrl output or WebhookSecretParameterName: is it this one?", USAGE)
    return url, name


def current_secret(parameter: str) -> str:
    """The first line of the secret parameter: the secret the receiver verifies first."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        value = boto3.client("ssm").get_parameter(Name=parameter, WithDecryption=True)["Parameter"]["Value"]
    except ClientError as exc:
        raise CliError(f"cannot read {parameter} ({exc.response['Error'].get('Code')})", REJECTED) from None
    except BotoCoreError as exc:
        raise CliError(f"cannot call SSM: {exc}", USAGE) from None
    secrets = split_secrets(value)
    if not secrets:
        raise CliError(f"{parameter} holds no secret", REJECTED)
    return secrets[0].decode()


def connect(
    api: Any,
    owner: str,
    endpoint: Endpoint,
    *,
    events: Sequence[str] = ("*",),
    wait: float = PING_WAIT_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> Connected:
    """Create or update the hook, ping it and read what the receiver answered."""
    any_hook = Hook.parse(f"{owner}/hooks/1")  # the credential: a token for repositories and organizations
    config = {"url": endpoint.url, "content_type": "json", "insecure_ssl": "0", "secret": endpoint.secret}
    hooks = call(api, any_hook, "GET", f"/{owner}/hooks?per_page=100")
    mine = [h for h in hooks or [] if isinstance(h, Mapping) and (h.get("config") or {}).get("url") == endpoint.url]
    settings = {"config": config, "events": list(events), "active": True}
    if mine:
        hook_id, created = int(mine[0]["id"]), False
        call(api, any_hook, "PATCH", f"/{owner}/hooks/{hook_id}", settings)
    else:
        made = call(api, any_hook, "POST", f"/{owner}/hooks", {"name": "web", **settings})
        hook_id, created = int(made["id"]), True
    hook = Hook.parse(f"{owner}/hooks/{hook_id}")
    status_code, status = ping(api, hook, wait=wait, sleep=sleep)
    return Connected(hook, created, status_code, status)


def ping(api: Any, hook: Hook, *, wait: float, sleep: Callable[[float], None]) -> tuple[int, str]:
    """Ping ``hook`` and wait for the ping's delivery: (status code, GitHub's status text)."""
    before = max((item["id"] for item in _pings(api, hook)), default=0)
    call(api, hook, "POST", f"/{hook.spec}/pings")
    deadline = time.monotonic() + wait
    while True:
        fresh = [item for item in _pings(api, hook) if item["id"] > before]
        if fresh:
            newest = max(fresh, key=lambda item: item["id"])
            return int(newest.get("status_code") or 0), str(newest.get("status") or "")
        if time.monotonic() >= deadline:
            raise CliError(
                f"GitHub has not delivered the ping within {wait:.0f} s: see the hook's Recent Deliveries", REJECTED
            )
        sleep(PING_POLL_SECONDS)


def explain(status_code: int, status: str) -> str:
    """What the ping's answer means, in one line."""
    if 200 <= status_code < 300:
        return f"ping answered {status_code}: the receiver verified it with the stack's secret"
    if status_code == 401:
        return "ping refused (401): the hook's secret is not the stack's (a signature mismatch)"
    if status_code == 403:
        return "ping refused (403): the receiver's ALLOWED_SOURCE_CIDRS leave out GitHub (./webhook github-ranges)"
    if status_code == 0:
        return f"GitHub reached nothing at the URL ({status or 'no answer'}): DNS, TLS or the network"
    return f"ping answered {status_code} ({status})"


def _pings(api: Any, hook: Hook) -> list[Mapping[str, Any]]:
    items = call(api, hook, "GET", f"/{hook.spec}/deliveries?per_page=30") or []
    return [i for i in items if isinstance(i, Mapping) and i.get("event") == "ping" and isinstance(i.get("id"), int)]


def call(api: Any, hook: Hook, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
    try:
        return api.call(hook, method, path, body)
    except Refused as exc:
        hint = " (the token needs admin:repo_hook, or admin:org_hook)" if exc.status in (403, 404) else ""
        raise CliError(f"GitHub refused: {exc}{hint}", REJECTED) from None
    except RunStopped as exc:
        raise CliError(f"GitHub did not answer: {exc}", UNREACHABLE) from None
    except GitHubError as exc:
        raise CliError(f"GitHub: {exc}", REJECTED) from None
    except PermissionError as exc:
        raise CliError(str(exc), USAGE) from None
