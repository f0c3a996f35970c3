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

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from devkit.connect import call, explain, ping
from devkit.errors import REJECTED, UNREACHABLE, USAGE, CliError
from handler.core.hooks import Hook
from handler.core.secrets import split_secrets

DEFAULT_MAX_AGE = 300  # WEBHOOK_SECRET_MAX_AGE in template.yaml and in the code
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


class Rotation:
    """One run of the command: each step printed as it is done (``say``), the secrets never."""

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
    ) -> None:
        self.api, self.ssm, self.hook, self.name = api, ssm, hook, name
        self.max_age, self.say, self.sleep, self.clock, self.ping_wait = max_age, say, sleep, clock, ping_wait

    def plan(self, *, finish: bool, rollback: bool) -> Parameter:
        parameter = self.ssm.read(self.name)
        if not parameter.lines:
            raise CliError(f"{self.name} holds no secret: create it first (./webhook secret create)", USAGE)
        if len(parameter.lines) > 2:
            raise CliError(f"{self.name} holds {len(parameter.lines)} secrets: finish or undo that rotation by hand")
        under_way = len(parameter.lines) == 2
        if rollback:
            steps = ["the hook's secret back to the old one", f"{self.name}: the old secret alone"]
            if not under_way:
                raise CliError(f"nothing to roll back: {self.name} holds one secret (finished, or never started)")
        else:
            steps = (
                ["a rotation is under way: the same new secret"]
                if under_way
                else ["a new secret (32 random bytes)", f"{self.name}: new, then old"]
            )
            steps += [
                f"wait until receivers have read it ({self.max_age:.0f} s after it was written)",
                f"{self.hook.spec}: its secret becomes the new one (url, content type, TLS as they are)",
                "a ping, read back through the deliveries API" if not self.hook.is_app else "(an App's hook: no ping)",
            ]
            if finish:
                steps.append(f"once verified, {self.name}: the new secret alone (the old one refused from then on)")
        self.say("plan: " + "; ".join(steps))
        return parameter

    def run(self, parameter: Parameter, *, finish: bool, drain: float) -> bool:
        """Steps 1 to 5 (and 6 with ``finish``). True when the hook's new secret was verified."""
        if len(parameter.lines) == 1:
            new = secrets.token_hex(32)
            parameter = self.ssm.write(parameter, (new, parameter.lines[0]))
            self.say(f"{self.name}: new, then old (both accepted)")
        new = parameter.lines[0]
        self._wait_for_receivers(parameter)
        self._set_hook_secret(new)
        self.say(f"{self.hook.spec}: signs with the new secret")
        # Counted from here: a delivery made before the PATCH was signed with the old secret.
        verified = self._verify(self._newest_delivery())
        if finish and verified:
            if drain > 0:
                self.say(f"draining: {drain:.0f} s for deliveries signed with the old secret")
                self.sleep(drain)
            self.ssm.write(parameter, (new,))
            self.say(
                f"{self.name}: the new secret alone. Done: receivers refuse the old one within {self.max_age:.0f} s."
            )
        return verified

    def rollback(self, parameter: Parameter) -> bool:
        old = parameter.lines[1]
        self._set_hook_secret(old)  # first: the old secret is still in the parameter
        self.say(f"{self.hook.spec}: signs with the old secret again")
        before = self._newest_delivery()
        self.ssm.write(parameter, (old,))
        self.say(f"{self.name}: the old secret alone. Rolled back.")
        return self._verify(before)

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

    def _verify(self, before: int) -> bool:
        """A ping's answer, or for the App's hook (no ping) the first delivery made after ``before``."""
        if not self.hook.is_app:
            status_code, status = ping(self.api, self.hook, wait=self.ping_wait, sleep=self.sleep)
            self.say(explain(status_code, status))
            return 200 <= status_code < 300
        self.say(f"an App's hook has no ping: waiting up to {self.ping_wait:.0f} s for its next delivery")
        deadline = time.monotonic() + self.ping_wait
        while True:
            fresh = [item for item in self._app_deliveries() if item["id"] > before]
            if fresh:
                newest = max(fresh, key=lambda item: item["id"])
                status_code = int(newest.get("status_code") or 0)
                self.say(explain(status_code, str(newest.get("status") or "")).replace("ping", "delivery", 1))
                return 200 <= status_code < 300
            if time.monotonic() >= deadline:
                self.say("no delivery yet: run again (with --finish) once the App's next delivery has been made")
                return False
            self.sleep(2.0)


def max_age_of(function: str | None) -> tuple[float, str]:
    """How long a receiver keeps the secret: its function's WEBHOOK_SECRET_MAX_AGE, or the default."""
    if not function:
        return (
            DEFAULT_MAX_AGE,
            f"WEBHOOK_SECRET_MAX_AGE's default, {DEFAULT_MAX_AGE} s (--function reads the deployed one)",
        )
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        configuration = boto3.client("lambda").get_function_configuration(FunctionName=function)
    except (ClientError, BotoCoreError) as exc:
        raise CliError(f"cannot read {function}'s configuration ({type(exc).__name__})", REJECTED) from None
    value = configuration.get("Environment", {}).get("Variables", {}).get("WEBHOOK_SECRET_MAX_AGE", "")
    seconds = float(value) if value.strip() else DEFAULT_MAX_AGE
    return seconds, f"{function}'s WEBHOOK_SECRET_MAX_AGE, {seconds:.0f} s"
