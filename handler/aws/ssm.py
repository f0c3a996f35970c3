"""The webhook secrets from SSM Parameter Store (Powertools Parameters): a :class:`~handler.core.ports.Secrets`.

:meth:`SsmSecrets.current` is cached; :meth:`SsmSecrets.refreshed` is a forced re-read, rate-limited,
used only after a signature mismatch so a rotation is picked up without waiting for max age.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from functools import cache
from typing import Any

from handler.aws.clients import causes, client, error_code
from handler.core.outcomes import OutOfTime, SecretUnavailable
from handler.core.ports import Telemetry
from handler.core.secrets import split_secrets


class SsmSecrets:
    """A SecureString parameter holding one secret per line, read with decryption.

    Powertools caches the value for ``max_age`` seconds, so a warm container calls SSM at most
    once per max age. :meth:`refreshed` forces a read at most once per ``refresh_interval``
    seconds since the last call to SSM, so a flood of bad signatures cannot become a flood of
    GetParameter calls (SSM has a per-account rate limit). Every age is measured on ``clock``.
    """

    def __init__(
        self,
        name: str,
        *,
        max_age: int,
        refresh_interval: int,
        telemetry: Telemetry,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._name = name
        self._telemetry = telemetry
        self._max_age = max_age
        self._refresh_interval = refresh_interval
        self._clock = clock
        self._provider: Any = None
        self._last_call = float("-inf")
        self._calls = 0  # GetParameter calls made (Powertools answers the others from its cache)
        self._read_at = float("-inf")  # when SSM last answered one
        self._raw: str | None = None
        self._parsed: tuple[bytes, ...] = ()
        self._failed = False
        self._lock = threading.Lock()

    def current(self) -> tuple[bytes, ...]:
        return self._get(force_fetch=False)

    def refreshed(self) -> tuple[bytes, ...] | None:
        with self._lock:
            if self._clock() - self._last_call < self._refresh_interval:
                return None
            return self._get(force_fetch=True)

    def _get(self, *, force_fetch: bool) -> tuple[bytes, ...]:
        now = self._clock()
        # After a failed read, SSM is not asked again until the interval has passed: an outage or
        # throttling must not turn every request (forgeries included) into another GetParameter.
        # Meanwhile the last secrets read, if any, keep verifying GitHub's deliveries.
        if self._failed and now - self._last_call < self._refresh_interval:
            if self._parsed:
                return self._parsed
            raise SecretUnavailable("secret parameter unreadable recently; not retried yet")
        # Powertools' cache ages on the wall clock; max age is also checked here, on our clock, so
        # that the value is read again once it has passed whichever clock noticed first.
        expired = now - self._read_at >= self._max_age
        calls = self._calls
        try:
            value = self._ssm().get(self._name, decrypt=True, max_age=self._max_age, force_fetch=force_fetch or expired)
        except Exception as exc:  # GetParameterError, botocore errors, no region or credentials
            # Not a failure of SSM: the request had no time left to ask it.
            if any(isinstance(cause, OutOfTime) for cause in causes(exc)):
                if self._parsed:
                    return self._parsed
                raise OutOfTime("not enough time left to read the secret parameter") from None
            self._failed = True
            # The AWS error code (ThrottlingException, AccessDeniedException), not Powertools' wrapper.
            why = f"cannot read the secret parameter ({error_code(causes(exc)[-1])})"
            if self._parsed and not force_fetch:
                # Max age passed and SSM failed: the secrets read before keep verifying (a forgery still
                # fails against them). Failing closed here would turn an SSM outage into lost deliveries.
                self._telemetry.log(
                    "warning", "secret parameter unreadable; verifying with the secrets read before", detail=why
                )
                return self._parsed
            raise SecretUnavailable(why) from None
        self._failed = False
        if self._calls != calls:
            self._read_at = now
        if value is not self._raw:
            if not isinstance(value, str):
                raise SecretUnavailable("secret parameter is not a string")
            self._raw, self._parsed = value, split_secrets(value)
        if not self._parsed:
            raise SecretUnavailable("secret parameter is empty")
        return self._parsed

    def _ssm(self) -> Any:
        if self._provider is None:
            from aws_lambda_powertools.utilities.parameters import SSMProvider

            ssm = client("ssm")
            # Every real GetParameter (cache misses and forced reads alike) starts the refresh interval.
            ssm.meta.events.register("before-call.ssm.GetParameter", self._on_call)
            self._provider = SSMProvider(boto3_client=ssm)
        return self._provider

    def _on_call(self, **_: Any) -> None:
        self._calls += 1
        self._last_call = self._clock()


def secure_string(name: str) -> Callable[[], str]:
    """A reader of one SecureString (the redelivery function's token or App key), read once when first
    needed. A failure is a :class:`PermissionError` naming the parameter and the AWS error code only."""

    @cache
    def read() -> str:
        from aws_lambda_powertools.utilities.parameters import SSMProvider
        from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

        try:
            value = SSMProvider(boto3_client=client("ssm")).get(name, decrypt=True)
        except GetParameterError as exc:
            cause = exc.__cause__ or exc.__context__ or exc
            raise PermissionError(f"parameter {name} could not be read ({error_code(cause)})") from None
        if not isinstance(value, str) or not value.strip():
            raise PermissionError(f"parameter {name} is empty")
        return value.strip()

    return read
