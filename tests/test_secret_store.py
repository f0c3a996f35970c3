"""The secret from SSM Parameter Store (moto): decryption, caching, rotation, refresh rate, fail-closed."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from devkit.github import DEV_SECRET
from handler.aws import clients
from handler.aws.ssm import SsmSecrets
from handler.core.budget import active_budget
from handler.core.outcomes import SecretUnavailable
from handler.core.settings import DEFAULT_TIME_BUDGET_SECONDS
from tests import fakes
from tests.conftest import SECRET_PARAMETER, Logs, Send, put_secret, reset_receiver, signed


def test_securestring_is_read_with_decryption(send: Send, ssm_secret: str) -> None:
    body, headers = signed("push")
    assert send(body, headers).status == 202


def test_warm_container_reads_ssm_once(send: Send, ssm_secret: str, ssm_calls: list[str]) -> None:
    for _ in range(50):
        body, headers = signed("push")
        assert send(body, headers).status == 202
    assert ssm_calls == [SECRET_PARAMETER]


def test_flood_of_bad_signatures_adds_no_ssm_calls_within_the_refresh_interval(
    send: Send, ssm_secret: str, ssm_calls: list[str], ssm_clock: fakes.Clock
) -> None:
    """The whole flood lands within one interval on the store's clock, however slow the machine."""
    body, headers = signed("push")
    assert send(body, headers).status == 202
    for _ in range(200):
        body, headers = signed("push", secret="forged")
        assert send(body, headers).status == 401
    assert len(ssm_calls) == 1


def test_rotation_two_secrets_in_the_parameter(send: Send, ssm_secret: str) -> None:
    put_secret("brand-new-secret\n" + DEV_SECRET + "\n")
    for secret, status in (("brand-new-secret", 202), (DEV_SECRET, 202), ("third", 401)):
        body, headers = signed("push", secret=secret)
        assert send(body, headers).status == status


def test_mismatch_refreshes_once_per_interval_and_picks_up_a_rotation(aws: None, ssm_calls: list[str]) -> None:
    put_secret("old")
    clock = fakes.Clock()
    store = SsmSecrets(SECRET_PARAMETER, max_age=300, refresh_interval=30, telemetry=fakes.Telemetry(), clock=clock)
    assert store.current() == (b"old",)
    put_secret("new\nold")
    clock.advance(10)
    assert store.refreshed() is None  # too soon after the last call to SSM
    assert store.current() == (b"old",)  # cached
    clock.advance(21)
    assert store.refreshed() == (b"new", b"old")
    assert store.refreshed() is None
    assert store.current() == (b"new", b"old")  # the forced read refreshed the cache too
    assert len(ssm_calls) == 2


def test_flood_of_refresh_requests_costs_one_call_per_interval(aws: None, ssm_calls: list[str]) -> None:
    put_secret("only")
    clock = fakes.Clock()
    store = SsmSecrets(SECRET_PARAMETER, max_age=300, refresh_interval=30, telemetry=fakes.Telemetry(), clock=clock)
    store.current()
    for _ in range(10):  # ten intervals, a thousand mismatches in each
        clock.advance(30)
        results = [store.refreshed() for _ in range(1000)]
        assert sum(r is not None for r in results) == 1
    assert len(ssm_calls) == 11


def test_cache_expires_after_max_age(aws: None, ssm_calls: list[str]) -> None:
    put_secret("one")
    clock = fakes.Clock()
    store = SsmSecrets(SECRET_PARAMETER, max_age=300, refresh_interval=30, telemetry=fakes.Telemetry(), clock=clock)
    assert store.current() == (b"one",)
    put_secret("two")
    clock.advance(299)
    assert store.current() == (b"one",)
    assert len(ssm_calls) == 1
    # Past max age on the store's clock (Powertools' own cache ages on the wall clock, which has not moved).
    clock.advance(1)
    assert store.current() == (b"two",)
    assert len(ssm_calls) == 2
    clock.advance(299)
    assert store.current() == (b"two",)  # a new max age from that read
    assert len(ssm_calls) == 2


def test_a_one_character_secret_is_read_once_per_max_age(aws: None, ssm_calls: list[str]) -> None:
    """CPython hands back the same object for every read of a one-character string: a new read must
    still count as one (or every request past the first max age would call SSM)."""
    put_secret("x")
    clock = fakes.Clock()
    store = SsmSecrets(SECRET_PARAMETER, max_age=300, refresh_interval=30, telemetry=fakes.Telemetry(), clock=clock)
    store.current()
    clock.advance(300)
    for _ in range(5):
        assert store.current() == (b"x",)
    assert len(ssm_calls) == 2


def test_forged_request_after_a_rotation_is_still_401(
    send: Send, ssm_secret: str, ssm_calls: list[str], ssm_clock: fakes.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEBHOOK_SECRET_REFRESH_INTERVAL", "5")
    assert send(*signed("push")).status == 202
    put_secret("rotated\n" + DEV_SECRET)
    ssm_clock.advance(5)
    assert send(*signed("push", secret="forged")).status == 401  # the refresh found a new secret...
    assert len(ssm_calls) == 2
    assert send(*signed("push", secret="rotated")).status == 202  # ...which is now known


def test_failing_refresh_still_answers_a_forgery_401_not_503(
    send: Send, ssm_secret: str, ssm_clock: fakes.Clock, logs: Logs, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEBHOOK_SECRET_REFRESH_INTERVAL", "5")
    assert send(*signed("push")).status == 202
    boto3.client("ssm").delete_parameter(Name=SECRET_PARAMETER)
    ssm_clock.advance(5)
    answer = send(*signed("push", secret="forged"))
    assert (answer.status, answer.body["error"]) == (401, "signature_mismatch")
    assert any(line["message"] == "secret refresh failed" for line in logs.records)
    assert send(*signed("push")).status == 202  # the cached secret still verifies GitHub


def test_rotation_is_picked_up_through_the_handler_after_the_interval(
    send: Send, ssm_secret: str, ssm_calls: list[str], ssm_clock: fakes.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEBHOOK_SECRET_REFRESH_INTERVAL", "5")
    assert send(*signed("push")).status == 202
    put_secret("rotated\n" + DEV_SECRET)
    ssm_clock.advance(4.9)
    assert send(*signed("push", secret="rotated")).status == 401  # within the interval: not re-read
    ssm_clock.advance(0.1)
    assert send(*signed("push", secret="rotated")).status == 202
    assert len(ssm_calls) == 2


def test_missing_parameter_fails_closed_and_logs_why(
    send: Send, ssm_secret: str, logs: Logs, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEBHOOK_SECRET_PARAMETER", "/does/not/exist")
    body, headers = signed("push")
    answer = send(body, headers)
    assert answer.status == 503
    # The caller is not verified yet: it learns nothing about SSM. The log says why.
    assert answer.body == {"error": "secret_unavailable", "message": "webhook secret is unavailable"}
    [line] = logs.records
    assert line["detail"] == "cannot read the secret parameter (ParameterNotFound)"


def test_empty_parameter_fails_closed(send: Send, ssm_secret: str) -> None:
    put_secret(" \n ")
    body, headers = signed("push")
    assert send(body, headers).status == 503


def test_ssm_unreachable_fails_closed_and_never_falls_back_to_the_literal(
    send: Send, ssm_secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEBHOOK_SECRET", DEV_SECRET)  # ignored when a parameter is named
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens on the discard port
    body, headers = signed("push")
    answer = send(body, headers)
    assert answer.status == 503
    assert answer.body["error"] == "secret_unavailable"


def test_store_raises_rather_than_returning_nothing(aws: None) -> None:
    store = SsmSecrets("/missing", max_age=300, refresh_interval=30, telemetry=fakes.Telemetry())
    with pytest.raises(SecretUnavailable):
        store.current()


def test_failed_read_is_not_retried_per_request(
    send: Send, ssm_secret: str, ssm_calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An SSM outage must not become a GetParameter per request (forgeries included)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    for secret in ("forged", DEV_SECRET) * 10:
        answer = send(*signed("push", secret=secret))
        assert (answer.status, answer.body["error"]) == (503, "secret_unavailable")
    assert len(ssm_calls) == 1  # one failed read, then fail fast for WEBHOOK_SECRET_REFRESH_INTERVAL


def test_failed_read_is_retried_after_the_interval(aws: None, ssm_calls: list[str]) -> None:
    clock = fakes.Clock()
    store = SsmSecrets(SECRET_PARAMETER, max_age=300, refresh_interval=30, telemetry=fakes.Telemetry(), clock=clock)
    with pytest.raises(SecretUnavailable):
        store.current()  # no parameter yet
    put_secret("now-there")
    clock.advance(10)
    with pytest.raises(SecretUnavailable, match="not retried yet"):
        store.current()
    clock.advance(21)
    assert store.current() == (b"now-there",)
    assert len(ssm_calls) == 2


def test_expired_cache_and_failing_ssm_keep_verifying_with_the_secrets_read_before(
    send: Send,
    ssm_secret: str,
    ssm_calls: list[str],
    ssm_clock: fakes.Clock,
    logs: Logs,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past max age SSM fails: GitHub's deliveries are still accepted, a forgery is still 401 (not 503)."""
    monkeypatch.setenv("WEBHOOK_SECRET_MAX_AGE", "60")
    assert send(*signed("push")).status == 202
    boto3.client("ssm").delete_parameter(Name=SECRET_PARAMETER)
    ssm_clock.advance(59)
    assert send(*signed("push")).status == 202
    assert len(ssm_calls) == 1  # within max age: the cached value, SSM not asked
    ssm_clock.advance(1)
    assert send(*signed("push")).status == 202
    forged = send(*signed("push", secret="forged"))
    assert (forged.status, forged.body["error"]) == (401, "signature_mismatch")
    assert len(ssm_calls) == 2  # the failed read is not repeated within the refresh interval
    assert any(line["message"].startswith("secret parameter unreadable") for line in logs.records)


@pytest.mark.parametrize("separator", ["\x0c", "\x1e", "\u2028"], ids=["form feed", "record separator", "U+2028"])
def test_a_piece_of_a_secret_never_verifies(
    send: Send, ssm_secret: str, monkeypatch: pytest.MonkeyPatch, separator: str
) -> None:
    """str.splitlines() would cut this secret into pieces, and the one-character piece would verify."""
    secret = f"first-part-of-the-secret{separator}x"
    put_secret(secret)
    assert send(*signed("push", secret="x")).status == 401
    assert send(*signed("push", secret="first-part-of-the-secret")).status == 401
    assert send(*signed("push", secret=secret)).status == 202
    monkeypatch.setenv("WEBHOOK_SECRET", secret)  # the literal secret follows the same rule
    monkeypatch.delenv("WEBHOOK_SECRET_PARAMETER")
    reset_receiver()
    assert send(*signed("push", secret="x")).status == 401
    assert send(*signed("push", secret=secret)).status == 202


def test_no_time_left_to_read_the_secret_keeps_the_secrets_read_before(aws: None) -> None:
    """The budget refusing the SSM call is not an SSM failure: cached secrets keep verifying, SSM is not
    marked as failing, and with nothing cached the answer is a timeout, not secret_unavailable."""
    from handler.core.budget import Budget
    from handler.core.outcomes import OutOfTime

    put_secret("cached")
    clock = fakes.Clock()
    store = SsmSecrets(SECRET_PARAMETER, max_age=300, refresh_interval=30, telemetry=fakes.Telemetry(), clock=clock)
    assert store.current() == (b"cached",)
    clock.advance(301)  # past max age: the next read goes to SSM, which the budget forbids
    with Budget(1.0).active():
        assert store.current() == (b"cached",)
    put_secret("rotated")
    assert store.current() == (b"rotated",)  # not held back by a refresh interval: SSM never failed

    cold = SsmSecrets(SECRET_PARAMETER, max_age=300, refresh_interval=30, telemetry=fakes.Telemetry())
    with Budget(1.0).active(), pytest.raises(OutOfTime):
        cold.current()


# Throttling: SSM allows 40 GetParameter a second to the whole account, and every new container asks.


class _Body:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


_THROTTLES = {  # the error each service answers a throttled call with, on the wire
    "ssm": (400, "ThrottlingException"),
    "dynamodb": (400, "ProvisionedThroughputExceededException"),
    "events": (400, "ThrottlingException"),
    "s3": (503, "SlowDown"),
}


class Throttle:
    """AWS refusing the first ``times`` attempts of ``operation`` as throttled, as an HTTP answer that
    botocore parses and its retry handling sees (an exception raised before the call would skip both);
    then moto answers. ``seen``: the budget's remaining seconds at each throttled attempt. It runs before
    the client's budget check, so it would also see an attempt that the budget then refused."""

    def __init__(self, service: str, operation: str, times: float = math.inf, **headers: str) -> None:
        aws = clients.client(service)
        self.service = service
        status, code = _THROTTLES[service]
        if service == "s3":
            body = f"<Error><Code>{code}</Code><Message>Please reduce your request rate.</Message></Error>"
            headers = {"content-type": "application/xml", **headers}
        else:
            body = json.dumps({"__type": code, "message": "Rate exceeded"})
            headers = {"content-type": "application/x-amz-json-1.1", **headers}
        self._answer = status, headers, body.encode()
        self.times = times
        self.seen: list[float] = []
        name = aws.meta.service_model.service_id.hyphenize()
        aws.meta.events.register_first(f"before-send.{name}.{operation}", self)

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        if len(self.seen) >= self.times:
            return None
        budget = active_budget()
        self.seen.append(budget.remaining() if budget is not None else math.inf)
        # Every before-send handler runs, whoever answered first: moto's would carry out the request too,
        # unless its address is not one moto serves. A throttled request must have no effect.
        url, request.url = request.url, "http://throttled.invalid/"
        status, headers, body = self._answer
        return AWSResponse(url, status, headers, _Body(body))

    @property
    def calls(self) -> int:
        return len(self.seen)

    def clear(self) -> None:
        self.times = len(self.seen)


def throttle(service: str, operation: str, times: float = math.inf, **headers: str) -> list[float]:
    """:class:`Throttle`'s record of the attempts it refused."""
    return Throttle(service, operation, times, **headers).seen


@pytest.fixture
def ssm_room() -> float:
    """What the budget leaves for throttled reads of the secret: the rest is kept for the hand-off."""
    return DEFAULT_TIME_BUDGET_SECONDS - clients.SSM_LEAVES_SECONDS


def test_a_throttled_secret_read_is_retried_with_backoff_while_the_budget_allows(
    send: Send, ssm_secret: str, backoff: list[float], ssm_room: float
) -> None:
    """A cold-start storm: three throttles, then SSM answers. One retry (the old rule) gave a 503."""
    throttled = throttle("ssm", "GetParameter", times=3)
    assert send(*signed("push")).status == 202
    assert len(throttled) == 3
    # 1 s, 2 s, then 4 s would not fit: drawn again within what is left (the draw is 1.0: all of it).
    assert backoff == [1.0, 2.0, ssm_room - 3.0]
    assert sum(backoff) <= ssm_room


def test_throttling_past_the_budget_is_a_503_that_waited_no_longer_than_the_budget_allows(
    send: Send, ssm_secret: str, backoff: list[float], budget_clock: fakes.Clock, logs: Logs, ssm_room: float
) -> None:
    started = budget_clock()
    throttled = throttle("ssm", "GetParameter")
    answer = send(*signed("push"))
    assert (answer.status, answer.body["error"]) == (503, "secret_unavailable")
    assert len(throttled) == 4  # the three retries above, and no more: nothing was left to wait
    # Every attempt started with the hand-off's share of the budget still left, and no back-off ate into it.
    assert min(throttled) >= clients.SSM_LEAVES_SECONDS
    assert budget_clock() - started == pytest.approx(ssm_room)
    assert (
        logs.messages("delivery not accepted")[0]["detail"] == "cannot read the secret parameter (ThrottlingException)"
    )


def test_a_throttle_asking_for_a_longer_wait_than_the_budget_has_is_not_retried_sooner(
    send: Send, ssm_secret: str, backoff: list[float], ssm_room: float
) -> None:
    throttled = throttle("ssm", "GetParameter", times=1, **{"x-amz-retry-after": str(int(ssm_room * 1000) + 1)})
    answer = send(*signed("push"))
    assert (answer.status, answer.body["error"]) == (503, "secret_unavailable")
    assert (len(throttled), backoff) == (1, [])


def test_a_throttle_when_the_budget_has_no_room_left_is_not_retried(
    send: Send, ssm_secret: str, backoff: list[float], budget_clock: fakes.Clock, ssm_room: float
) -> None:
    """The SSM answer came back late: less than the hand-off needs is left, so no retry starts."""
    throttled = throttle("ssm", "GetParameter", times=1)
    # Registered after the throttle: its answer takes all the room the budget had for reading the secret.
    clients.client("ssm").meta.events.register_first(
        "before-send.ssm.GetParameter", lambda **_: budget_clock.advance(ssm_room)
    )
    answer = send(*signed("push"))
    assert (answer.status, answer.body["error"]) == (503, "secret_unavailable")
    assert (len(throttled), backoff) == (1, [])


def test_without_a_budget_a_throttle_is_retried_once(aws: None, backoff: list[float]) -> None:
    """Tools that read the parameter outside a request (no budget to bound them) keep one retry."""
    put_secret("tool")
    store = SsmSecrets(SECRET_PARAMETER, max_age=300, refresh_interval=30, telemetry=fakes.Telemetry())
    throttled = throttle("ssm", "GetParameter", times=1)
    assert store.current() == (b"tool",)
    assert (len(throttled), backoff) == (1, [1.0])

    cold = SsmSecrets(SECRET_PARAMETER, max_age=300, refresh_interval=30, telemetry=fakes.Telemetry())
    throttle("ssm", "GetParameter", times=2)
    with pytest.raises(SecretUnavailable):
        cold.current()
