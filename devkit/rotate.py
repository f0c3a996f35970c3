"""`webhook rotate-secret`: a new webhook secret on both ends, with no delivery refused at any moment.

GitHub holds one secret per hook; the receiver accepts every line of its SSM parameter. So the
rotation keeps the hook's secret in the parameter at every moment:

1. a new secret: 32 random bytes from :mod:`secrets`, as 64 hex characters (never printed unless asked);
2. the parameter becomes ``new`` then ``old``, one per line (SecureString, the same KMS key);
3. a wait, until every running receiver has read it: a receiver keeps what it read for at most
   ``WEBHOOK_SECRET_MAX_AGE`` seconds (300 by default), so the wait ends that long after the parameter
   was last written (SSM's ``LastModifiedDate``), whoever wrote it;
4. the hook's secret becomes ``new`` (``PATCH …/config``, its ``url``, ``content_type`` and
   ``insecure_ssl`` sent back as they were);
5. a ping (repository and organization hooks), read back through the deliveries API: 2xx means the
   receiver verified GitHub's new signature. An App's hook has no ping: its next delivery shows it.
6. ``--finish`` (in the same run, after ``--drain`` seconds, or later): the parameter becomes ``new``
   alone, once a ping verifies again.

Each step is safe to repeat: a parameter that already holds two lines is a rotation under way, and
a rerun goes on from it with the same new secret. ``--rollback`` (before ``--finish``) puts the old
secret back on the hook first, then in the parameter. The state lives in the parameter and the hook,
nowhere else.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from devkit.connect import call, explain, ping
from devkit.errors import REJECTED, UNREACHABLE, USAGE, CliError
from handler.core.hooks import Hook
from handler.core.secrets import split_secrets

DEFAULT_MAX_AGE = 300  # WEBHOOK_SECRET_MAX_AGE in template.yaml and in the code
DEFAULT_DRAIN_SECONDS = 10.0  # before the parameter is left with one secret: deliveries already on their way
# The parameter's tag: "<fingerprint of the secret on its first line>:<state>[:<when the hook changed>]".
# A two-line parameter without it was not written by this command, and is not guessed at.
TAG = "webhook-rotation"
QUIET_SECONDS = 60.0  # after the hook changed: deliveries signed before it have arrived by then
MARGIN_SECONDS = 2  # past the max age: a read that was under way when the parameter changed


@dataclass
class Parameter:
    """The secret parameter as SSM holds it: its lines, its KMS key and when it was last written."""

    name: str
    lines: tuple[str, ...]
    key_id: str | None
    modified: float


class Ssm:
    """The few SSM calls of a rotation, with errors in the command's words (never a value)."""

    def __init__(self) -> None:
        import boto3

        self._ssm = boto3.client("ssm")

    def read(self, name: str) -> Parameter:
        from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

        try:
            value = self._ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
            [described] = self._ssm.describe_parameters(
                ParameterFilters=[{"Key": "Name", "Option": "Equals", "Values": [name]}]
            )["Parameters"]
        except ClientError as exc:
            raise CliError(f"cannot read {name} ({exc.response['Error'].get('Code')})", REJECTED) from None
        except EndpointConnectionError:
            raise CliError("SSM is unreachable: nothing was changed", UNREACHABLE) from None
        except BotoCoreError as exc:
            raise CliError(f"cannot call SSM: {exc}", USAGE) from None
        modified = described.get("LastModifiedDate")
        return Parameter(
            name,
            tuple(line.decode() for line in split_secrets(value)),
            described.get("KeyId"),
            modified.timestamp() if modified is not None else 0.0,
        )

    def tag_of(self, name: str) -> str:
        """The rotation's mark on the parameter (``TAG``): whose rotation it holds, and how far it went."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            tags = self._ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=name)["TagList"]
        except (ClientError, BotoCoreError):
            return ""
        return next((tag["Value"] for tag in tags if tag["Key"] == TAG), "")

    def mark(self, name: str, value: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._ssm.add_tags_to_resource(
                ResourceType="Parameter", ResourceId=name, Tags=[{"Key": TAG, "Value": value}]
            )
        except (ClientError, BotoCoreError) as exc:
            raise CliError(f"cannot tag {name} ({type(exc).__name__}): nothing else was changed", REJECTED) from None

    def write(self, parameter: Parameter, lines: tuple[str, ...]) -> Parameter:
        from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

        request: dict[str, Any] = {
            "Name": parameter.name,
            "Value": "\n".join(lines),
            "Type": "SecureString",
            "Overwrite": True,
        }
        if parameter.key_id:
            request["KeyId"] = parameter.key_id
        try:
            self._ssm.put_parameter(**request)
        except ClientError as exc:
            raise CliError(
                f"SSM refused to write {parameter.name} ({exc.response['Error'].get('Code')})", REJECTED
            ) from None
        except EndpointConnectionError:
            raise CliError(f"SSM is unreachable: {parameter.name} was not written", UNREACHABLE) from None
        except BotoCoreError as exc:
            raise CliError(f"cannot call SSM: {exc}", USAGE) from None
        return self.read(parameter.name)


def fingerprint(secret: str) -> str:
    """Which secret a tag speaks of: 16 hex characters of its SHA-256, which reveal nothing of it."""
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


class Rotation:
    """One run of the command: each step printed as it is done (``say``), the secrets never.

    ``previous_verified(start, end)``: how many deliveries the receiver verified with the parameter's
    second line in that time (CloudWatch's ``SecretVerified``, ``secret=previous``), or None when the
    receiver is not known. ``only_hook``: the caller says no other hook signs with this parameter.
    """

    def __init__(
        self,
        api: Any,
        ssm: Ssm,
        hook: Hook,
        name: str,
        *,
        max_age: float,
        say: Callable[[str], None] = print,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        ping_wait: float = 20.0,
        previous_verified: Callable[[float, float], float] | None = None,
        only_hook: bool = False,
    ) -> None:
        self.api, self.ssm, self.hook, self.name = api, ssm, hook, name
        self.max_age, self.say, self.sleep, self.clock, self.ping_wait = max_age, say, sleep, clock, ping_wait
        self.previous_verified, self.only_hook = previous_verified, only_hook
        self.tag = ""  # the parameter's rotation tag, as plan() read it

    def plan(self, *, finish: bool, rollback: bool) -> Parameter:
        parameter = self.ssm.read(self.name)
        if not parameter.lines:
            raise CliError(f"{self.name} holds no secret: create it first (./webhook secret create)", USAGE)
        if len(parameter.lines) > 2:
            raise CliError(f"{self.name} holds {len(parameter.lines)} secrets: finish or undo that rotation by hand")
        under_way = len(parameter.lines) == 2
        tag = self.tag = self.ssm.tag_of(self.name)
        first = fingerprint(parameter.lines[0])
        ours = tag.startswith((f"{first}:started", f"{first}:patched"))
        if under_way and not ours:
            # Which line the hook signs with is not known (GitHub never shows it): nothing is guessed. A tag
            # that says finished is not ours either: the second line was written after it, by someone else.
            raise CliError(
                f"{self.name} holds two secrets this command did not write in that order: finish or undo that "
                "rotation by hand (README: Rotating the webhook secret)"
            )
        if rollback:
            if not under_way:
                raise CliError(f"nothing to roll back: {self.name} holds one secret (finished, or never started)")
            steps = ["the hook's secret back to the old one", "a drain", f"{self.name}: the old secret alone"]
        elif finish and self.finished(parameter, tag):
            steps = [f"nothing: the rotation to {self.name}'s secret is finished"]
        else:
            steps = (
                ["a rotation is under way: the same new secret"]
                if under_way
                else ["a new secret (32 random bytes)", f"{self.name}: new, then old"]
            )
            steps += [
                f"wait until receivers have read it ({self.max_age:.0f} s after it was written)",
                f"{self.hook.spec}: its secret becomes the new one (url, content type, TLS as they are)",
                "a ping, read back through the deliveries API" if not self.hook.is_app else "the App's next delivery",
            ]
            if finish:
                steps += [
                    "once verified, no delivery still signed with the old secret (another hook may share it)",
                    f"a drain, then {self.name}: the new secret alone",
                ]
        url = self._hook_url()
        self.say(f"hook: {self.hook.spec}, delivering to {url or 'an unknown URL'}")
        self.say("plan: " + "; ".join(steps))
        return parameter

    def _hook_url(self) -> str | None:
        """Where the hook delivers (GitHub shows the URL, never the secret): for the reader to check the pair."""
        path = "/app/hook/config" if self.hook.is_app else f"/{self.hook.spec}/config"
        shown = call(self.api, self.hook, "GET", path) or {}
        url = shown.get("url") if isinstance(shown, dict) else None
        return url if isinstance(url, str) else None

    def finished(self, parameter: Parameter, tag: str) -> bool:
        return len(parameter.lines) == 1 and tag.startswith(fingerprint(parameter.lines[0]) + ":finished")

    def run(self, parameter: Parameter, *, finish: bool, drain: float) -> bool:
        """Steps 1 to 5 (and 6 with ``finish``), after :meth:`plan`. True when the hook's new secret was verified."""
        if finish and self.finished(parameter, self.tag):
            self.say(f"{self.name}: the rotation is finished already; nothing done")
            return True
        if len(parameter.lines) == 1:
            new = secrets.token_hex(32)
            self.ssm.mark(self.name, f"{fingerprint(new)}:started")  # first: a rerun then knows its own pair
            parameter = self.ssm.write(parameter, (new, parameter.lines[0]))
            self.say(f"{self.name}: new, then old (both accepted)")
        new = parameter.lines[0]
        self._wait_for_receivers(parameter)
        self._set_hook_secret(new)
        patched_at = self.clock()
        self.ssm.mark(self.name, f"{fingerprint(new)}:patched:{patched_at:.0f}")
        self.say(f"{self.hook.spec}: signs with the new secret")
        # Counted from here: a delivery made before the PATCH was signed with the old secret.
        verified = self._verify(self._newest_delivery(), after=patched_at)
        if finish and verified:
            self._check_old_secret_unused(patched_at, drain)  # drains first, when it can go on
            self.ssm.write(parameter, (new,))
            self.ssm.mark(self.name, f"{fingerprint(new)}:finished")
            self.say(
                f"{self.name}: the new secret alone. Done: receivers refuse the old one within {self.max_age:.0f} s."
            )
        return verified

    def rollback(self, parameter: Parameter, *, drain: float) -> bool:
        old = parameter.lines[1]
        self._set_hook_secret(old)  # first: the old secret is still in the parameter
        patched_at = self.clock()
        self.say(f"{self.hook.spec}: signs with the old secret again")
        before = self._newest_delivery()
        self._drain(drain)  # deliveries already signed with the new one still verify meanwhile
        self.ssm.write(parameter, (old,))
        self.ssm.mark(self.name, f"{fingerprint(old)}:finished")
        self.say(f"{self.name}: the old secret alone. Rolled back.")
        return self._verify(before, after=patched_at)

    def _drain(self, seconds: float) -> None:
        if seconds > 0:
            self.say(f"draining: {seconds:.0f} s for deliveries already on their way")
            self.sleep(seconds)

    def _check_old_secret_unused(self, patched_at: float, drain: float) -> None:
        """Every hook that signs with the parameter's old secret is refused once it is removed: this one was
        verified; any other must have been rotated too, which only the receiver's metric can tell. The drain
        comes first (the metric's window ends after it), once nothing stands in the way."""
        if self.only_hook:
            self.say(f"--only-hook: no other hook signs with {self.name}")
            self._drain(drain)
            return
        if self.previous_verified is None:
            raise CliError(
                f"--finish removes the old secret for every hook that signs with {self.name}: give --function (the "
                "receiver, whose SecretVerified metric shows whether any still does) or --only-hook",
                USAGE,
            )
        start, end = patched_at + QUIET_SECONDS, self.clock() + drain
        if end - start < QUIET_SECONDS:
            raise CliError(
                f"too soon to tell whether another hook still signs with the old secret: run --finish again in "
                f"{QUIET_SECONDS * 2:.0f} s (or give --drain {QUIET_SECONDS * 2:.0f}), or --only-hook",
                REJECTED,
            )
        self._drain(drain)
        still = self.previous_verified(start, self.clock())
        if still:
            raise CliError(
                f"{still:.0f} deliveries verified with the old secret since this hook changed: another hook signs "
                f"with {self.name}. Rotate it too (--hook), then --finish",
                REJECTED,
            )
        self.say("no delivery verified with the old secret since the hook changed")

    def _wait_for_receivers(self, parameter: Parameter) -> None:
        until = parameter.modified + self.max_age + MARGIN_SECONDS
        left = until - self.clock()
        if left > 0:
            self.say(f"waiting {left:.0f} s: receivers keep what they read for {self.max_age:.0f} s")
            self.sleep(left)

    def _set_hook_secret(self, secret: str) -> None:
        path = "/app/hook/config" if self.hook.is_app else f"/{self.hook.spec}/config"
        shown = call(self.api, self.hook, "GET", path) or {}
        # Everything but the secret as it was: GitHub shows the secret as ********, never its value.
        kept = {key: shown[key] for key in ("url", "content_type", "insecure_ssl") if key in shown}
        call(self.api, self.hook, "PATCH", path, {**kept, "secret": secret})

    def _newest_delivery(self) -> int:
        """The newest attempt's id on the App's hook (0 for none; repository and organization hooks are pinged)."""
        if not self.hook.is_app:
            return 0
        return max((item["id"] for item in self._app_deliveries()), default=0)

    def _app_deliveries(self) -> list[dict[str, Any]]:
        items = call(self.api, self.hook, "GET", "/app/hook/deliveries?per_page=30") or []
        return [i for i in items if isinstance(i, dict) and isinstance(i.get("id"), int)]

    def _verify(self, before: int, *, after: float) -> bool:
        """A ping's answer, or for the App's hook (no ping) the first delivery listed after ``before`` and made
        a few seconds after ``after`` (the change): one signed before it may be listed later."""
        if not self.hook.is_app:
            status_code, status = ping(self.api, self.hook, wait=self.ping_wait, sleep=self.sleep)
            self.say(explain(status_code, status))
            return 200 <= status_code < 300
        self.say(f"an App's hook has no ping: waiting up to {self.ping_wait:.0f} s for its next delivery")
        deadline = time.monotonic() + self.ping_wait
        while True:
            fresh = [
                item
                for item in self._app_deliveries()
                if item["id"] > before and _delivered_at(item) >= after + SIGNED_BEFORE_SECONDS
            ]
            if fresh:
                newest = max(fresh, key=lambda item: item["id"])
                status_code = int(newest.get("status_code") or 0)
                self.say(explain(status_code, str(newest.get("status") or "")).replace("ping", "delivery", 1))
                return 200 <= status_code < 300
            if time.monotonic() >= deadline:
                self.say("no delivery yet: run again (with --finish) once the App's next delivery has been made")
                return False
            self.sleep(2.0)


SIGNED_BEFORE_SECONDS = 5.0


def _delivered_at(item: dict[str, Any]) -> float:
    try:
        return datetime.fromisoformat(str(item.get("delivered_at", "")).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def previous_verified(namespace: str, service: str) -> Callable[[float, float], float]:
    """Deliveries verified with the parameter's second line between two times: the receiver's metric."""
    import boto3

    cloudwatch = boto3.client("cloudwatch")

    def total(start: float, end: float) -> float:
        answer = cloudwatch.get_metric_statistics(
            Namespace=namespace,
            MetricName="SecretVerified",
            Dimensions=[{"Name": "service", "Value": service}, {"Name": "secret", "Value": "previous"}],
            StartTime=datetime.fromtimestamp(start, UTC),
            EndTime=datetime.fromtimestamp(end, UTC),
            Period=60,
            Statistics=["Sum"],
        )
        return float(sum(point["Sum"] for point in answer["Datapoints"]))

    return total


@dataclass(frozen=True, slots=True)
class Receiver:
    """What the rotation needs to know of the deployed receiver: how long it keeps the secret, and where
    its metrics are."""

    max_age: float
    why: str
    namespace: str | None = None
    service: str | None = None
    parameter: str | None = None  # the secret parameter it reads


def receiver_of(function: str | None) -> Receiver:
    """The function's WEBHOOK_SECRET_MAX_AGE and metric names, or the defaults when it is not given."""
    if not function:
        why = f"WEBHOOK_SECRET_MAX_AGE's default, {DEFAULT_MAX_AGE} s (--function reads the deployed one)"
        return Receiver(DEFAULT_MAX_AGE, why)
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        configuration = boto3.client("lambda").get_function_configuration(FunctionName=function)
    except (ClientError, BotoCoreError) as exc:
        raise CliError(f"cannot read {function}'s configuration ({type(exc).__name__})", REJECTED) from None
    variables = configuration.get("Environment", {}).get("Variables", {})
    value = variables.get("WEBHOOK_SECRET_MAX_AGE", "").strip()
    seconds = float(value) if value else DEFAULT_MAX_AGE
    return Receiver(
        seconds,
        f"{function}'s WEBHOOK_SECRET_MAX_AGE, {seconds:.0f} s",
        variables.get("POWERTOOLS_METRICS_NAMESPACE") or "GitHubWebhook",
        variables.get("POWERTOOLS_SERVICE_NAME") or "github-webhook",
        variables.get("WEBHOOK_SECRET_PARAMETER") or None,
    )
