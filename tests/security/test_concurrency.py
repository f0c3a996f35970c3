"""Concurrency: many invocations of the Lambda handler at once, deduplication on (moto).

Every thread is held at its first DynamoDB PutItem until all of them have reached it, so the
conditional writes really race instead of running one after the other.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto.dynamodb.models import DynamoDBBackend

from devkit.apigw import http_api_event
from handler.core.archive import parse_key
from tests.conftest import InvokeThread, Pipeline, invoke, invoke_in_thread, signed
from tests.security.support import Fault, assert_documented, client_error

THREADS = 12


@pytest.fixture(autouse=True)
def atomic_conditional_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """DynamoDB applies a conditional write atomically; moto checks and writes in plain Python, so
    two threads could both pass the check. Serialise moto's item writes as DynamoDB would."""
    lock = threading.RLock()

    def locked(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def call(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return method(*args, **kwargs)

        return call

    for name in ("put_item", "update_item", "delete_item", "get_item"):
        monkeypatch.setattr(DynamoDBBackend, name, locked(getattr(DynamoDBBackend, name)))


class StartTogether:
    """A before-call hook on PutItem that, once armed, holds the first ``parties`` callers until all of
    them have arrived, then lets every call through (retries and later requests are not held)."""

    def __init__(self, parties: int) -> None:
        self.parties = parties
        self.barrier = threading.Barrier(parties, timeout=10)
        self.armed = False
        self.arrived = 0
        self._lock = threading.Lock()
        boto3.DEFAULT_SESSION.events.register("before-call.dynamodb.PutItem", self)

    def __call__(self, **_: Any) -> None:
        with self._lock:
            hold = self.armed and self.arrived < self.parties
            self.arrived += hold
        if hold:
            # A broken barrier means some thread never got here: the assertions on the answers will say.
            with contextlib.suppress(threading.BrokenBarrierError):
                self.barrier.wait()


@pytest.fixture
def warm(pipeline: Pipeline) -> Iterator[Callable[[], StartTogether]]:
    """Arm the gate on a warm container: the receiver and its clients exist before the threads start
    (on Lambda each concurrent invocation has its own container; here they share one, the harder case).
    Faults must be injected before calling it, since the clients are created here."""
    gates = []

    def start() -> StartTogether:
        gate = StartTogether(THREADS)
        gates.append(gate)
        assert invoke(http_api_event(*signed("ping"))).status == 202
        pipeline.forwarded()
        gate.armed = True
        return gate

    yield start
    for gate in gates:
        gate.barrier.abort()


def run_all(requests: list[tuple[bytes, dict[str, str]]]) -> list[Any]:
    threads: list[InvokeThread] = [invoke_in_thread(body, headers) for body, headers in requests]
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads)
    answers = [thread.answer for thread in threads]
    assert all(answer is not None for answer in answers), "an invocation raised instead of answering"
    for answer in answers:
        assert_documented(answer)
    return answers


def archived_ids(pipeline: Pipeline) -> Counter[str]:
    return Counter(parse_key(key)["delivery_id"] for key in pipeline.archived())


def test_same_delivery_from_many_threads_is_handed_off_exactly_once(
    pipeline: Pipeline, warm: Callable[[], StartTogether]
) -> None:
    gate = warm()
    body, headers = signed("push")
    delivery_id = headers["x-github-delivery"]
    answers = run_all([(body, headers)] * THREADS)
    assert gate.arrived == THREADS  # they really raced
    outcomes = Counter((a.status, a.body.get("status") or a.body.get("error")) for a in answers)
    assert outcomes[(202, "accepted")] == 1, outcomes
    assert set(outcomes) <= {(202, "accepted"), (202, "duplicate"), (409, "in_progress")}, outcomes
    assert all(a.body.get("delivery_id", delivery_id) == delivery_id for a in answers)
    forwarded = pipeline.forwarded()
    assert [event["detail"]["delivery_id"] for event in forwarded] == [delivery_id]
    assert archived_ids(pipeline)[delivery_id] == 1
    statuses = Counter(record["status"]["S"] for record in pipeline.records())
    assert statuses == {"COMPLETED": 2}  # the warm-up ping and this delivery
    again = invoke(http_api_event(body, headers))
    assert again.body == {"status": "duplicate", "delivery_id": delivery_id}
    assert pipeline.forwarded() == []


def test_many_distinct_deliveries_at_once_are_all_handed_off_none_twice(
    pipeline: Pipeline, warm: Callable[[], StartTogether]
) -> None:
    gate = warm()
    requests = [signed(event) for event in ["push", "pull_request", "issues", "release"] * (THREADS // 4)]
    ids = [headers["x-github-delivery"] for _, headers in requests]
    answers = run_all(requests)
    assert gate.arrived == THREADS
    assert [a.body for a in answers] == [{"status": "accepted", "delivery_id": i} for i in ids]
    forwarded = Counter(event["detail"]["delivery_id"] for event in pipeline.forwarded())
    assert forwarded == Counter(ids)
    archived = archived_ids(pipeline)
    assert all(archived[i] == 1 for i in ids)
    assert Counter(record["status"]["S"] for record in pipeline.records()) == {"COMPLETED": THREADS + 1}


def test_same_delivery_racing_a_failing_archive_is_never_accepted_and_is_redelivered_once(
    pipeline: Pipeline, warm: Callable[[], StartTogether]
) -> None:
    # The warm-up ping archives; every archive after it fails.
    fault = Fault("before-call", "s3", "PutObject", client_error("InternalError", "PutObject"), after=1)
    gate = warm()
    body, headers = signed("push")
    delivery_id = headers["x-github-delivery"]
    answers = run_all([(body, headers)] * THREADS)
    outcomes = Counter((a.status, a.body["error"]) for a in answers)
    assert set(outcomes) <= {(503, "archive_failed"), (409, "in_progress")}, outcomes
    assert outcomes[(503, "archive_failed")] >= 1
    assert pipeline.forwarded() == []
    assert archived_ids(pipeline)[delivery_id] == 0
    assert [record["status"]["S"] for record in pipeline.records()] == ["COMPLETED"]  # the warm-up ping only
    assert fault.calls >= 1
    assert gate.arrived == THREADS
    fault.clear()
    assert invoke(http_api_event(body, headers)).body == {"status": "accepted", "delivery_id": delivery_id}
    assert [event["detail"]["delivery_id"] for event in pipeline.forwarded()] == [delivery_id]
