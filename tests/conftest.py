"""Fixtures: a clean receiver per test, moto for AWS, and one way to send a request through
either the Lambda handler (API Gateway v2 events) or the FastAPI app."""

from __future__ import annotations

import asyncio
import functools
import gc
import io
import json
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.loaders
import botocore.session
import pytest
from aws_lambda_powertools import Logger
from fastapi.testclient import TestClient
from moto import mock_aws

from devkit.apigw import LambdaContext, http_api_event
from devkit.aws_resources import Names, connect, provision
from devkit.github import DEV_SECRET, encode_body, github_headers, sample_payload
from handler import app as app_module
from handler import wiring
from handler.aws import clients
from handler.aws.ssm import SsmSecrets
from handler.core.receiver import Receiver
from handler.core.settings import DEFAULT_SERVICE_NAME
from tests import fakes

RECEIVER_ENV = (
    "WEBHOOK_SECRET",
    "WEBHOOK_SECRET_PARAMETER",
    "WEBHOOK_SECRET_MAX_AGE",
    "WEBHOOK_SECRET_REFRESH_INTERVAL",
    "WEBHOOK_ALLOW_SHA1",
    "WEBHOOK_MAX_BODY_BYTES",
    "WEBHOOK_TIME_BUDGET_SECONDS",
    "EVENT_BUS_NAME",
    "EVENT_MAX_ENTRY_BYTES",
    "ARCHIVE_BUCKET",
    "PAYLOAD_BUCKET",
    "IDEMPOTENCY_TABLE",
    "IDEMPOTENCY_TTL_SECONDS",
    "AWS_ENDPOINT_URL",
    "AWS_PROFILE",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_SAM_LOCAL",
    "POWERTOOLS_LOGGER_LOG_EVENT",
    "ALLOWED_SOURCE_CIDRS",
)
SECRET_PARAMETER = "/github-webhook/secret"


def reset_receiver() -> None:
    """Forget the container's state, as a new Lambda container would."""
    wiring.forget_container_state()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in RECEIVER_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("WEBHOOK_SECRET", DEV_SECRET)
    reset_receiver()
    yield
    reset_receiver()


@pytest.fixture(autouse=True)
def budget_clock(monkeypatch: pytest.MonkeyPatch) -> fakes.Clock:
    """The clock each request's time budget runs on (handler.app builds the receiver with it). It moves
    only when a test advances it, so no answer here depends on how fast or how loaded the machine is;
    the budget on the real clock is measured in fresh processes by tests/test_answer_time.py."""
    clock = fakes.Clock(1000.0)
    monkeypatch.setattr(wiring, "Receiver", functools.partial(Receiver, monotonic=clock))
    return clock


@pytest.fixture
def backoff(monkeypatch: pytest.MonkeyPatch, budget_clock: fakes.Clock) -> list[float]:
    """Every back-off of a retry, waited on the budget's clock (no real sleep), with the longest jitter
    botocore can draw (full jitter's 1.0: 1 s, 2 s, 4 s...), the worst case for fitting in the budget."""
    waits: list[float] = []

    def wait(seconds: float) -> None:
        waits.append(seconds)
        budget_clock.advance(seconds)

    monkeypatch.setattr(clients, "sleep", wait)
    monkeypatch.setattr(clients, "draw", lambda: 1.0)
    return waits


class _CurrentStdout:
    """Standard output as it is at each write (pytest swaps it per test, as capsys does)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(sys.stdout, name)


@pytest.fixture(autouse=True, scope="session")
def receiver_logs_to_current_stdout() -> None:
    """Powertools gives a service's logger one handler per process, on the ``sys.stdout`` of the
    moment it is first built. Built first in a capsys test (``webhook invoke`` in test_cli), that
    stream is closed after the test and every later log line in the worker fails: which test comes
    first varies with xdist's scheduling. Built here first, it writes wherever stdout is now."""
    Logger(service=DEFAULT_SERVICE_NAME, stream=_CurrentStdout())


class Logs:
    """What the receiver writes to stdout, exactly as CloudWatch would get it."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    @property
    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text.splitlines()]

    def messages(self, message: str) -> list[dict[str, Any]]:
        return [record for record in self.records if record["message"] == message]

    def clear(self) -> None:
        self.stream.seek(0)
        self.stream.truncate()

    @property
    def metrics(self) -> list[tuple[str, dict[str, str]]]:
        return emf_metrics(self.records)


def emf_metrics(documents: list[dict[str, Any]]) -> list[tuple[str, dict[str, str]]]:
    """Every (metric name, dimensions other than service) that CloudWatch would extract (EMF)."""
    found = []
    for document in documents:
        for directive in document.get("_aws", {}).get("CloudWatchMetrics", []):
            assert directive["Namespace"] == "GitHubWebhook"
            [dimension_set] = directive["Dimensions"]
            dimensions = {name: document[name] for name in dimension_set if name != "service"}
            assert document["service"] == "github-webhook"
            for metric in directive["Metrics"]:
                value = document[metric["Name"]]
                assert value == 1 or value == [1.0], metric  # a count, as one line or Powertools' list
                found.append((metric["Name"], dimensions))
    return found


@pytest.fixture
def logs() -> Iterator[Logs]:
    captured = Logs()
    handler = wiring.telemetry().logger.registered_handler
    previous = handler.setStream(captured.stream)
    yield captured
    handler.setStream(previous)


# Service models parsed once for the whole run: every test's fresh session (its own event hooks,
# credentials and clients) reads them through this one loader instead of parsing the JSON again.
_MODELS = botocore.loaders.create_loader()


def _new_default_session() -> None:
    core = botocore.session.get_session()
    core.register_component("data_loader", _MODELS)
    boto3.setup_default_session(botocore_session=core)
    # boto3 adds its resource models' folder to the loader's search paths for each new session.
    _MODELS.search_paths[:] = dict.fromkeys(_MODELS.search_paths)


@functools.cache
def _models_loaded() -> None:
    """Load the models (botocore's and moto's) of every service the tests call, then move them and
    all else alive now out of the garbage collector's sight, as handler.app does with its imports:
    they live as long as the run, and each full collection would otherwise walk them again."""
    with mock_aws():
        _new_default_session()
        boto3.client("dynamodb").list_tables()
        boto3.client("events").list_event_buses()
        boto3.client("s3").list_buckets()
        boto3.client("sqs").list_queues()
        boto3.client("ssm").describe_parameters()
    gc.collect()
    gc.freeze()


@pytest.fixture
def aws() -> Iterator[None]:
    """moto, started before any client is created (the receiver builds its clients lazily), and a
    new default session for each test, so that no event hook outlives the test that registered it."""
    _models_loaded()
    with mock_aws():
        _new_default_session()
        yield


@pytest.fixture
def ssm_calls(aws: None) -> list[str]:
    """Every GetParameter the receiver makes, counted on the default boto3 session it uses."""
    calls: list[str] = []
    boto3.DEFAULT_SESSION.events.register(
        "before-parameter-build.ssm.GetParameter", lambda params, **_: calls.append(params["Name"])
    )
    return calls


def put_secret(value: str, name: str = SECRET_PARAMETER) -> None:
    boto3.client("ssm").put_parameter(Name=name, Value=value, Type="SecureString", Overwrite=True)


@pytest.fixture
def ssm_secret(aws: None, monkeypatch: pytest.MonkeyPatch) -> str:
    """The development secret as a SecureString in (moto's) SSM, and no literal secret."""
    put_secret(DEV_SECRET)
    monkeypatch.delenv("WEBHOOK_SECRET")
    monkeypatch.setenv("WEBHOOK_SECRET_PARAMETER", SECRET_PARAMETER)
    return SECRET_PARAMETER


@pytest.fixture
def ssm_clock(monkeypatch: pytest.MonkeyPatch) -> fakes.Clock:
    """The clock the receiver's SSM store measures max age and the refresh interval on: a test
    advances it instead of sleeping (handler.app builds the store with this clock)."""
    clock = fakes.Clock()
    monkeypatch.setattr(wiring, "SsmSecrets", functools.partial(SsmSecrets, clock=clock))
    return clock


@dataclass
class Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]


def invoke(event: dict[str, Any]) -> Answer:
    """Call the real Lambda handler as the Lambda runtime would."""
    result = app_module.handler(event, LambdaContext())
    assert result["headers"]["content-type"] == "application/json"
    body = result["body"]
    return Answer(result["statusCode"], json.loads(body) if body else {}, result["headers"])


Send = Callable[..., Answer]


@pytest.fixture(params=["lambda", "http"])
def send(request: pytest.FixtureRequest) -> Send:
    """Send a raw request through the Lambda handler (API Gateway v2 event) or the FastAPI app."""
    if request.param == "lambda":

        def via_lambda(body: bytes, headers: dict[str, str], *, base64_encoded: bool = False) -> Answer:
            return invoke(http_api_event(body, headers, base64_encoded=base64_encoded))

        return via_lambda

    http = TestClient(app_module.app)

    def via_http(body: bytes, headers: dict[str, str], *, base64_encoded: bool = False) -> Answer:
        response = http.post("/webhook", content=body, headers=headers)
        assert response.headers["content-type"] == "application/json"
        return Answer(response.status_code, response.json(), dict(response.headers))

    return via_http


def signed(event: str, *, payload: dict[str, Any] | bytes | None = None, form: bool = False, **kwargs: Any):
    """A body and headers for ``event``, signed as GitHub would (real-shaped sample payload by default)."""
    body = encode_body(sample_payload(event) if payload is None else payload, form=form)
    return body, github_headers(event, body, form=form, **kwargs)


BUS, BUCKET, TABLE = "github-webhooks", "github-webhook-archive", "github-webhook-deliveries"
PIPELINE = Names(bus=BUS, queue="forwarded", bucket=BUCKET, table=TABLE)


class Pipeline:
    """moto resources for the hand-off (devkit.aws_resources): a bus whose rule feeds an SQS queue,
    a bucket, a table."""

    def __init__(self) -> None:
        self.resources = provision(connect(), PIPELINE)

    def forwarded(self) -> list[dict[str, Any]]:
        """Every event the bus delivered since the last call (EventBridge envelope, detail parsed)."""
        return self.resources.forwarded()

    def archived(self) -> list[str]:
        return self.resources.archived()

    def object(self, bucket: str, key: str) -> dict[str, Any]:
        return self.resources.stored(key, bucket=bucket)

    def records(self) -> list[dict[str, Any]]:
        return self.resources.records()


@pytest.fixture
def pipeline(aws: None, monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    """Bus, archive and deduplication all configured, against moto."""
    resources = Pipeline()
    for name, value in PIPELINE.environment().items():
        monkeypatch.setenv(name, value)
    return resources


class FakeHttpResponse:
    status_code = 200


def inject(event: str, response: dict[str, Any] | Exception) -> list[int]:
    """Fault injection at the AWS boundary: answer (or fail) ``event`` (``before-call.events.PutEvents``)
    on the default session instead of calling moto. Returns a list counting the calls it answered."""
    calls: list[int] = []

    def answer(**_: Any) -> Any:
        calls.append(1)
        if isinstance(response, Exception):
            raise response
        return FakeHttpResponse(), response

    boto3.DEFAULT_SESSION.events.register(event, answer)
    return calls


class InvokeThread(threading.Thread):
    """The Lambda handler on its own thread, as a second concurrent container would run it."""

    def __init__(self, event: dict[str, Any]) -> None:
        super().__init__()
        self.event = event
        self.answer: Answer | None = None

    def run(self) -> None:
        # Mangum drives the app on the thread's event loop; a new thread has none.
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            self.answer = invoke(self.event)
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def invoke_in_thread(body: bytes, headers: dict[str, str]) -> InvokeThread:
    thread = InvokeThread(http_api_event(body, headers))
    thread.start()
    return thread


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Tables a test records as its ``summary`` property (the answer times), printed after the run;
    this also works when pytest-xdist workers run the tests (properties travel with the reports)."""
    for report in terminalreporter.stats.get("passed", []) + terminalreporter.stats.get("failed", []):
        for name, value in getattr(report, "user_properties", []):
            if name == "summary" and report.when == "call":
                terminalreporter.write_sep("-", report.nodeid.rsplit("::", 1)[-1])
                terminalreporter.write_line(str(value))
