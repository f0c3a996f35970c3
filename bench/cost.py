"""What a delivery costs in AWS: the requests and billed units of each kind, priced per million deliveries.

``.venv/bin/python -m bench.cost`` (about 10 s). The real Lambda handler (``handler.app.handler``) gets
API Gateway HTTP API v2 events, configured as template.yaml configures the deployed function, against
moto in process. botocore hooks on the default session record every AWS call the receiver makes (its
clients are created lazily from that session, so they inherit the hooks) with its parameters, from
which the billed units follow: S3 PUTs, DynamoDB write and read units (item sizes by DynamoDB's rules),
EventBridge 64 KB chunks. Log bytes are what the receiver writes to stdout. Lambda's duration is the
handler's own time (wall time minus the time spent inside AWS calls, which moto answers here) plus an
assumed service latency for each call (:data:`LATENCY_MS`), rounded up to the millisecond.

Beside it: the minimal design (``bench/reference.py`` with only a bus: HMAC, ``json.loads``, one
PutEvents), measured the same way in a child process (it reads its configuration at import), and the
redelivery function's monthly cost at its default schedule, measured on runs against the GitHub
stand-in of the tests (tests/redelivery/github_standin.py) with GitHub's latency assumed.

Counted warm: one untimed delivery first reads the secret (SSM GetParameter: free at standard
throughput, and made at most once per WEBHOOK_SECRET_MAX_AGE per container), which is left out.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import math
import os
import re
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"

# Every price, in dollars per unit. AWS's list prices, read 2026-12-03 (us-east-1, on demand,
# no free tier); check them before quoting a figure.
PRICES_READ = "2026-12-03, AWS list prices, us-east-1, on demand"
PRICES = {
    "api_request": 1.00 / 1e6,  # API Gateway HTTP API, per request of up to 512 KB
    "lambda_request": 0.20 / 1e6,
    "lambda_gb_second": 0.0000133334,  # arm64
    "s3_put": 0.005 / 1000,
    "s3_gb_month": 0.023,  # Standard storage
    "dynamodb_wru": 0.625 / 1e6,  # on demand, 1 KB
    "dynamodb_rru": 0.125 / 1e6,  # on demand, 4 KB strongly consistent (half for eventually consistent)
    "eventbridge_event": 1.00 / 1e6,  # custom events, per 64 KB chunk of an entry
    "eventbridge_archive_gb": 0.10,  # events archived on the bus (their bytes: the entry's, envelope left out)
    "logs_gb": 0.50,  # CloudWatch Logs ingestion
    "xray_trace": 5.00 / 1e6,  # traces recorded
}
# Assumptions, not measurements: each call's latency as Lambda would see it in-region (small items and
# objects), added to the handler's own time. GitHub's is bench/drill.py's Latency.page.
LATENCY_MS = {
    ("s3", "PutObject"): 25,
    ("dynamodb", "PutItem"): 8,
    ("dynamodb", "UpdateItem"): 8,
    ("dynamodb", "DeleteItem"): 8,
    ("dynamodb", "GetItem"): 5,
    ("dynamodb", "BatchGetItem"): 8,
    ("dynamodb", "TransactWriteItems"): 15,
    ("eventbridge", "PutEvents"): 20,
    ("ssm", "GetParameter"): 15,
}
GITHUB_REQUEST_MS = 400
# CloudWatch Logs bills 26 bytes of metadata per log event on top of its text.
LOG_EVENT_OVERHEAD = 26
# What Lambda itself writes per invocation (text format), whatever the function does: three log events, the
# REPORT one with an XRAY line when the function is traced.
PLATFORM_LOG_EVENTS = (
    "START RequestId: 3f2b6a4e-7a43-4c59-9d1e-8a1f3c2b9e01 Version: 12\n",
    "END RequestId: 3f2b6a4e-7a43-4c59-9d1e-8a1f3c2b9e01\n",
    "REPORT RequestId: 3f2b6a4e-7a43-4c59-9d1e-8a1f3c2b9e01\tDuration: 61.32 ms\tBilled Duration: 62 ms\t"
    "Memory Size: 512 MB\tMax Memory Used: 98 MB\t\n",
)
PLATFORM_XRAY_LINE = "XRAY TraceId: 1-67890abc-0123456789abcdef01234567\tSegmentId: 0123456789abcdef\tSampled: true\t\n"
XRAY_BUSY_SHARE = 0.05  # X-Ray's default rule: 1 request a second, then 5% of the rest
HOURS_PER_MONTH = 730  # AWS's billing month
API_UNIT = 512 * 1024
EVENTBRIDGE_CHUNK = 64 * 1024
KIB = 1024
TIMES = "\N{MULTIPLICATION SIGN}"

SECRET = "cost-webhook-secret"  # noqa: S105 (only ever stored in moto)
WRONG_SECRET = "not-the-secret"  # noqa: S105 (a forgery on purpose)
REGION = "us-east-1"
# Local names for the template's resources.
RESOURCE_NAMES = {"WebhookBus": "cost-github", "ArchiveBucket": "cost-github-archive", "DeliveriesTable": "cost-github"}
RUNS = 7  # timed invocations per kind; own time is their median


# The template -----------------------------------------------------------------------------------------


def load_template() -> dict[str, Any]:
    """template.yaml with CloudFormation's short tags read as their long form (``!Ref X`` -> ``{"Ref": "X"}``)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def tag(loader: Loader, suffix: str, node: yaml.Node) -> dict[str, Any]:
        value: Any
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {"Ref" if suffix == "Ref" else f"Fn::{suffix}": value}

    Loader.add_multi_constructor("!", tag)
    return yaml.load(TEMPLATE.read_text(encoding="utf-8"), Loader=Loader)  # noqa: S506 (SafeLoader's subclass)


@dataclass(frozen=True)
class Deployed:
    """What the template gives each function, at its parameters' defaults."""

    receiver_env: dict[str, str]
    receiver_memory_mb: int
    tracing: bool
    access_log_format: str
    archive_days: int
    bus_archive: bool  # an EventBridge archive on the bus keeps every event (AWS::Events::Archive, its condition met)
    redelivery_env: dict[str, str]
    redelivery_memory_mb: int
    schedule: str

    @property
    def runs_per_month(self) -> float:
        match = re.fullmatch(r"rate\((\d+) minutes?\)", self.schedule)
        if match is None:
            raise ValueError(f"only rate(N minutes) schedules are modelled, not {self.schedule}")
        return HOURS_PER_MONTH * 60 / int(match.group(1))


def deployed(template: dict[str, Any] | None = None, parameters: Mapping[str, str] | None = None) -> Deployed:
    """The template at its parameters' defaults, or with ``parameters`` set (as ``sam deploy`` would)."""
    template = template or load_template()
    defaults = {name: str(spec.get("Default", "")) for name, spec in template["Parameters"].items()}
    unknown = set(parameters or {}) - set(defaults)
    if unknown:
        raise ValueError(f"not parameters of template.yaml: {', '.join(sorted(unknown))}")
    defaults |= parameters or {}
    conditions = template.get("Conditions", {})
    resources = template["Resources"]

    def resolve(node: Any) -> Any:
        if not isinstance(node, dict) or len(node) != 1:
            return node
        [(function, argument)] = node.items()
        if function == "Ref":
            return defaults[argument] if argument in defaults else RESOURCE_NAMES.get(argument, argument)
        if function == "Fn::Sub":
            return re.sub(r"\$\{([^}]+)\}", lambda m: str(resolve({"Ref": m.group(1)})), argument)
        if function == "Fn::If":
            name, then, otherwise = argument
            return resolve(then if holds(conditions[name]) else otherwise)
        raise ValueError(f"unmodelled template function {function}")

    def holds(condition: Any) -> bool:
        [(function, argument)] = condition.items()
        if function == "Fn::Equals":
            return str(resolve(argument[0])) == str(resolve(argument[1]))
        if function == "Fn::Not":
            return not holds(argument[0])
        if function == "Fn::And":
            return all(holds(part) for part in argument)
        if function == "Fn::Or":
            return any(holds(part) for part in argument)
        if function == "Condition":
            return holds(conditions[argument])
        raise ValueError(f"unmodelled condition {function}")

    def environment(function: str) -> dict[str, str]:
        variables = resources[function]["Properties"]["Environment"]["Variables"]
        resolved = {name: resolve(value) for name, value in variables.items()}
        return {name: str(value) for name, value in resolved.items() if value != "AWS::NoValue"}

    receiver = resources["WebhookFunction"]["Properties"]
    redelivery = resources["RedeliveryFunction"]["Properties"]
    bus_archives = [
        resource
        for resource in resources.values()
        if resource["Type"] == "AWS::Events::Archive"
        and ("Condition" not in resource or holds(conditions[resource["Condition"]]))
    ]
    return Deployed(
        receiver_env=environment("WebhookFunction"),
        receiver_memory_mb=int(resolve(receiver["MemorySize"])),
        tracing=resolve(receiver.get("Tracing", template.get("Globals", {}).get("Function", {}).get("Tracing")))
        == "Active",
        access_log_format=resources["WebhookApi"]["Properties"]["AccessLogSettings"]["Format"],
        archive_days=int(defaults["ArchiveExpirationDays"]),
        bus_archive=bool(bus_archives),
        redelivery_env=environment("RedeliveryFunction"),
        redelivery_memory_mb=int(resolve(redelivery["MemorySize"])),
        schedule=defaults["RedeliverySchedule"],
    )


# Counting calls ---------------------------------------------------------------------------------------


@dataclass
class Call:
    service: str  # botocore's hyphenized service id: s3, dynamodb, eventbridge, ssm
    operation: str
    params: dict[str, Any]
    response: dict[str, Any] | None = None
    failed: str | None = None  # the error code of a call that failed (a conditional write refused)
    seconds: float = 0.0  # from before-call to after-call: signing, moto's work, parsing
    started: float | None = None


class Recorder:
    """Every AWS call made through clients of the default boto3 session created after :meth:`install`."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._open: list[Call] = []

    @contextlib.contextmanager
    def installed(self) -> Iterator[Recorder]:
        """A new default boto3 session with the hooks: clients created from it inherit them (the receiver's,
        created lazily, included). The previous default session is put back afterwards."""
        import boto3

        previous = boto3.DEFAULT_SESSION
        boto3.setup_default_session()
        hooks = {
            "before-parameter-build": self._params,
            "before-call": self._before,
            "after-call": self._after,
            "after-call-error": self._error,
        }
        for event, hook in hooks.items():
            boto3.DEFAULT_SESSION.events.register(event, hook)
        try:
            yield self
        finally:
            for event, hook in hooks.items():
                boto3.DEFAULT_SESSION.events.unregister(event, hook)
            boto3.DEFAULT_SESSION = previous

    def take(self) -> list[Call]:
        calls, self.calls = self.calls, []
        return calls

    @staticmethod
    def _names(event_name: str) -> tuple[str, str]:
        _, service, operation = event_name.split(".", 2)
        return service, operation

    def _params(self, params: dict[str, Any], event_name: str, **_: Any) -> None:
        service, operation = self._names(event_name)
        self._open.append(Call(service, operation, dict(params)))

    def _before(self, event_name: str, **_: Any) -> None:
        call = self._find(event_name)
        call.started = time.perf_counter()

    def _after(self, event_name: str, parsed: dict[str, Any], **_: Any) -> None:
        call = self._close(event_name)
        call.response = parsed
        error = parsed.get("Error", {}).get("Code")
        call.failed = error if isinstance(error, str) else None

    def _error(self, event_name: str, exception: BaseException, **_: Any) -> None:
        self._close(event_name).failed = type(exception).__name__

    def _find(self, event_name: str) -> Call:
        service, operation = self._names(event_name)
        for call in reversed(self._open):
            if (call.service, call.operation) == (service, operation):
                return call
        raise RuntimeError(f"{event_name} without its parameters")

    def _close(self, event_name: str) -> Call:
        call = self._find(event_name)
        self._open.remove(call)
        if call.started is not None:  # a call refused before it was sent never reaches AWS
            call.seconds = time.perf_counter() - call.started
            self.calls.append(call)
        return call


# Billed units -----------------------------------------------------------------------------------------


def attribute_size(value: Mapping[str, Any]) -> int:
    """One attribute value's size as DynamoDB counts it (its name counted by the caller)."""
    [(kind, inner)] = value.items()
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        digits = inner.lstrip("-").replace(".", "").split("e")[0].split("E")[0].strip("0") or "0"
        return math.ceil(len(digits) / 2) + 1
    if kind == "B":
        return len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("SS", "NS", "BS"):
        return sum(attribute_size({kind[0]: element}) for element in inner)
    if kind == "L":  # 3 bytes, and 1 per element
        return 3 + sum(1 + attribute_size(element) for element in inner)
    if kind == "M":
        return 3 + sum(1 + len(name.encode()) + attribute_size(element) for name, element in inner.items())
    raise ValueError(f"unknown DynamoDB type {kind}")


def item_size(item: Mapping[str, Any]) -> int:
    return sum(len(name.encode()) + attribute_size(value) for name, value in item.items())


def updated_item(params: Mapping[str, Any], before: Mapping[str, Any] | None) -> dict[str, Any]:
    """An estimate of the item an UpdateItem leaves: the item put earlier in the same delivery (or the
    key alone) with the expression's SET values applied and its REMOVEs taken out."""
    names = params.get("ExpressionAttributeNames", {})
    values = params.get("ExpressionAttributeValues", {})
    item = dict(before or params["Key"])
    clauses = re.split(r"\b(SET|REMOVE|ADD|DELETE)\b", params.get("UpdateExpression", ""))
    for keyword, body in zip(clauses[1::2], clauses[2::2], strict=True):
        for assignment in (part.strip() for part in body.split(",") if part.strip()):
            path = assignment.split("=")[0].split()[0].strip()
            name = names.get(path, path)
            if keyword == "REMOVE":
                item.pop(name, None)
            elif keyword == "SET":
                referenced = re.findall(r":[A-Za-z0-9_]+", assignment)
                if referenced:  # a plain value, or a function of values: the last one named stands for it
                    item[name] = values[referenced[-1]]
    return item


def write_units(size: int, *, transactional: bool = False) -> int:
    return max(1, math.ceil(size / KIB)) * (2 if transactional else 1)


def read_units(size: int, *, consistent: bool) -> float:
    units = max(1, math.ceil(size / (4 * KIB)))
    return units if consistent else units / 2


@dataclass(frozen=True)
class Units:
    """What one delivery is billed, by service."""

    api_requests: int
    own_ms: float  # the handler's own time (median), without the time inside AWS calls
    latency_ms: float  # assumed, the sum over its calls (LATENCY_MS)
    s3_puts: int = 0
    wru: float = 0
    rru: float = 0
    events: int = 0  # EventBridge 64 KB chunks
    bus_archive_bytes: int = 0  # bytes of the entries an archive on the bus keeps
    own_log_bytes: int = 0  # its own lines, with the per-event overhead
    own_log_lines: int = 0
    other_log_bytes: int = 0  # Lambda's own lines and the API's access log line, with their overhead
    ssm_calls: int = 0
    calls: dict[str, int] = field(default_factory=dict)  # "dynamodb PutItem" -> how many

    @property
    def billed_ms(self) -> int:
        return math.ceil(self.own_ms + self.latency_ms)

    @property
    def log_bytes(self) -> int:
        return self.own_log_bytes + self.other_log_bytes


def units_of(
    calls: Sequence[Call],
    *,
    body_bytes: int,
    own_ms: float,
    own_log: tuple[int, int],
    other_log_bytes: int,
    bus_archive: bool = False,
) -> Units:
    """Bill one delivery's calls. An AWS call not modelled here is an error, never silently free."""
    s3_puts = events = ssm = archived = 0
    wru = rru = latency = 0.0
    put: dict[str, dict[str, Any]] = {}  # DynamoDB items put so far, by key, for UpdateItem's estimate
    for call in calls:
        name = (call.service, call.operation)
        if name not in LATENCY_MS:
            raise ValueError(f"unpriced AWS call: {call.service} {call.operation}")
        latency += LATENCY_MS[name]
        p = call.params
        if name == ("s3", "PutObject"):
            s3_puts += 1
        elif name == ("eventbridge", "PutEvents"):
            for entry in p["Entries"]:  # envelope.entry_size's rule: Source + DetailType + Detail
                size = sum(len(entry.get(part, "").encode()) for part in ("Source", "DetailType", "Detail"))
                events += math.ceil(size / EVENTBRIDGE_CHUNK)
                archived += size if bus_archive else 0
        elif name == ("ssm", "GetParameter"):
            ssm += 1
        elif name == ("dynamodb", "PutItem"):
            # A refused conditional put is billed too (on the item it was compared with: all here are < 1 KB).
            wru += write_units(item_size(p["Item"]))
            if call.failed is None:
                put[json.dumps(_key(p["Item"]), sort_keys=True)] = p["Item"]
        elif name == ("dynamodb", "UpdateItem"):
            before = put.get(json.dumps(p["Key"], sort_keys=True))
            after = updated_item(p, before)
            wru += write_units(max(item_size(after), item_size(before or p["Key"])))
        elif name == ("dynamodb", "DeleteItem"):
            wru += write_units(item_size(put.get(json.dumps(p["Key"], sort_keys=True), p["Key"])))
        elif name == ("dynamodb", "TransactWriteItems"):
            for action in p["TransactItems"]:
                [(_, spec)] = action.items()
                wru += write_units(item_size(spec.get("Item", spec.get("Key", {}))), transactional=True)
        elif name == ("dynamodb", "GetItem"):
            found = (call.response or {}).get("Item", {})
            rru += read_units(item_size(found), consistent=bool(p.get("ConsistentRead")))
        elif name == ("dynamodb", "BatchGetItem"):
            for table, request in p["RequestItems"].items():
                found = (call.response or {}).get("Responses", {}).get(table, [])
                consistent = bool(request.get("ConsistentRead"))
                # Each key is read as a GetItem: an item is rounded up to 4 KB, a key not found is one unit.
                rru += sum(read_units(item_size(item), consistent=consistent) for item in found)
                rru += (len(request["Keys"]) - len(found)) * read_units(0, consistent=consistent)
    return Units(
        api_requests=max(1, math.ceil(body_bytes / API_UNIT)),
        own_ms=own_ms,
        latency_ms=latency,
        s3_puts=s3_puts,
        wru=wru,
        rru=rru,
        events=events,
        bus_archive_bytes=archived,
        own_log_bytes=own_log[0],
        own_log_lines=own_log[1],
        other_log_bytes=other_log_bytes,
        ssm_calls=ssm,
        calls=dict(Counter(f"{call.service} {call.operation}" for call in calls)),
    )


def _key(item: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": item["id"]}  # the receiver's table (and the template's) is keyed on id alone


SERVICES = ("API Gateway", "Lambda", "S3", "DynamoDB", "EventBridge", "EventBridge archive", "CloudWatch Logs")


def cost_per_million(units: Units, memory_mb: int) -> dict[str, float]:
    """Dollars per million deliveries like ``units``, by service (X-Ray apart: see :func:`xray_per_million`)."""
    per_delivery = {
        "API Gateway": units.api_requests * PRICES["api_request"],
        "Lambda": PRICES["lambda_request"] + units.billed_ms / 1000 * memory_mb / 1024 * PRICES["lambda_gb_second"],
        "S3": units.s3_puts * PRICES["s3_put"],
        "DynamoDB": units.wru * PRICES["dynamodb_wru"] + units.rru * PRICES["dynamodb_rru"],
        "EventBridge": units.events * PRICES["eventbridge_event"],
        "EventBridge archive": units.bus_archive_bytes / 2**30 * PRICES["eventbridge_archive_gb"],
        "CloudWatch Logs": units.log_bytes / 2**30 * PRICES["logs_gb"],
    }
    return {service: cost * 1e6 for service, cost in per_delivery.items()}


def xray_per_million() -> dict[str, float]:
    """Traces recorded per million deliveries: a quiet receiver (the 1-a-second reservoir samples
    nearly every request) and a busy one (5%)."""
    return {"quiet": 1e6 * PRICES["xray_trace"], "busy": 1e6 * XRAY_BUSY_SHARE * PRICES["xray_trace"]}


def platform_log_bytes(*, tracing: bool) -> int:
    text = "".join(PLATFORM_LOG_EVENTS) + (PLATFORM_XRAY_LINE if tracing else "")
    return len(text.encode()) + len(PLATFORM_LOG_EVENTS) * LOG_EVENT_OVERHEAD


def access_log_bytes(fmt: str, event: Mapping[str, Any], answer: Mapping[str, Any], latency_ms: int) -> int:
    """The API's access log line for this request, as the template's format writes it."""
    http = event["requestContext"]["http"]
    values = {
        "requestId": event["requestContext"]["requestId"],
        "identity.sourceIp": http["sourceIp"],
        "requestTime": event["requestContext"]["time"],
        "httpMethod": http["method"],
        "routeKey": event["routeKey"],
        "status": str(answer["statusCode"]),
        "protocol": http["protocol"],
        "responseLength": str(len(answer.get("body", "").encode())),
        "responseLatency": str(latency_ms + 5),
        "integrationLatency": str(latency_ms),
        "integration.status": "200",  # Lambda's invoke status, whatever the function answered
        "integrationErrorMessage": "-",
        "integration.requestId": str(uuid.uuid4()),
        "identity.userAgent": http["userAgent"],
    }
    # A variable not listed here counts as a 36-character value (an id).
    line = re.sub(r"\$context\.([A-Za-z.]+)", lambda m: values.get(m.group(1), "-" * 36), fmt)
    return len(line.encode()) + 1 + LOG_EVENT_OVERHEAD


# Deliveries -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    name: str
    size: int | None = None  # JSON payload bytes; None: the sample push as is
    form: bool = False
    duplicate: bool = False  # sent twice: the second is measured
    forged: bool = False
    status: int = 202


KINDS = (
    Kind("small (sample push)"),
    Kind("200 KiB JSON", size=200 * KIB),
    Kind("300 KiB JSON", size=300 * KIB),
    Kind("form-encoded (sample push)", form=True),
    Kind("duplicate (2nd copy of small)", duplicate=True),
    Kind("forged (wrong secret)", forged=True, status=401),
)


def payload_for(kind: Kind, cache: dict[int | None, dict[str, Any]]) -> dict[str, Any]:
    if kind.size not in cache:
        from bench.run import padded_push
        from devkit.github import sample_payload

        cache[kind.size] = sample_payload("push") if kind.size is None else padded_push(kind.size)
    return cache[kind.size]


def requests_for(kind: Kind, run: int, cache: dict[int | None, dict[str, Any]]) -> list[dict[str, Any]]:
    """The events of one measurement: an untimed first copy, then the timed one (or just the timed one).

    Each run's body differs (its ``after`` commit, same length): with replay protection on, the same body
    under a new delivery id is refused as a replay.
    """
    from devkit.apigw import http_api_event
    from devkit.github import encode_body, github_headers

    base = payload_for(kind, cache)
    payload = {**base, "after": hashlib.sha1(f"{kind.name} {run} {uuid.uuid4()}".encode()).hexdigest()}  # noqa: S324
    body = encode_body(payload, form=kind.form)
    assert len(body) == len(encode_body(base, form=kind.form)), "a run's body must keep its size"
    headers = github_headers("push", body, secret=WRONG_SECRET if kind.forged else SECRET, form=kind.form)
    events = [http_api_event(body, headers)]
    if kind.duplicate:
        events.append(http_api_event(body, headers))  # GitHub's redelivery: same id, same bytes
    return events


@dataclass
class Measured:
    """One kind's measurement: its calls (the last run's), body size, medians of own time and log bytes."""

    kind: str
    body_bytes: int
    status: int
    own_ms: float
    log_bytes: int
    log_lines: int
    calls: list[Call]
    event: dict[str, Any]
    answer: dict[str, Any]


@contextlib.contextmanager
def environment(values: Mapping[str, str], *, clear: Sequence[str] = ()) -> Iterator[None]:
    """``os.environ`` with ``values`` set and ``clear``'s prefixes removed, restored afterwards."""
    saved = dict(os.environ)
    for name in [name for name in os.environ if name.startswith(tuple(clear))]:
        del os.environ[name]
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "cost",
    "AWS_SECRET_ACCESS_KEY": "cost",
    "AWS_REGION": REGION,
    "AWS_DEFAULT_REGION": REGION,
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}
CLEAN = ("AWS_", "WEBHOOK_", "EVENT_", "ARCHIVE_", "PAYLOAD_", "IDEMPOTENCY_", "POWERTOOLS_", "REDELIVERY_", "GITHUB_")


def measure(
    handler: Callable[[dict[str, Any], Any], dict[str, Any]],
    recorder: Recorder,
    out: io.StringIO,
    kinds: Sequence[Kind],
    runs: int,
) -> list[Measured]:
    """Invoke ``handler`` ``runs`` times per kind after one untimed delivery (the secret's read)."""
    from devkit.apigw import LambdaContext

    cache: dict[int | None, dict[str, Any]] = {}
    [warm_up] = requests_for(KINDS[0], -1, cache)
    expect(handler(warm_up, LambdaContext()), 202)
    recorder.take()
    results = []
    for kind in kinds:
        samples, logs, shapes = [], [], set()
        calls: list[Call] = []
        for run in range(runs):
            *first, event = requests_for(kind, run, cache)
            for untimed in first:
                expect(handler(untimed, LambdaContext()), 202)
            recorder.take()
            start, written = time.perf_counter(), len(out.getvalue())
            answer = handler(event, LambdaContext())
            wall = time.perf_counter() - start
            expect(answer, kind.status)
            if kind.duplicate:
                assert json.loads(answer["body"])["status"] == "duplicate", answer["body"]
            calls = recorder.take()
            text = out.getvalue()[written:]
            samples.append((wall - sum(call.seconds for call in calls)) * 1000)
            logs.append((len(text.encode()), text.count("\n")))
            shapes.add(tuple((call.service, call.operation, call.failed) for call in calls))
        if len(shapes) != 1:
            raise RuntimeError(f"{kind.name}: the runs made different calls: {shapes}")
        log_bytes = round(statistics.median(size for size, _ in logs))
        results.append(
            Measured(
                kind=kind.name,
                body_bytes=len(_body(event)),
                status=answer["statusCode"],
                own_ms=statistics.median(samples),
                log_bytes=log_bytes,
                log_lines=logs[-1][1],
                calls=calls,
                event=event,
                answer=answer,
            )
        )
    return results


def _body(event: Mapping[str, Any]) -> bytes:
    return str(event["body"]).encode()


def expect(answer: Mapping[str, Any], status: int) -> None:
    if answer.get("statusCode") != status:
        raise RuntimeError(f"expected {status}, got {answer.get('statusCode')}: {str(answer.get('body'))[:300]}")


@contextlib.contextmanager
def captured_stdout(logger_handler: Any) -> Iterator[io.StringIO]:
    """What is written to stdout, the Powertools logger's lines included (its handler holds the stream
    it was built with)."""
    out = io.StringIO()
    previous = logger_handler.setStream(out)
    try:
        with contextlib.redirect_stdout(out):
            yield out
    finally:
        logger_handler.setStream(previous)


def with_units(measured: Measured, *, access_log: str | None, tracing: bool, bus_archive: bool = False) -> Units:
    other = platform_log_bytes(tracing=tracing)
    latency = sum(LATENCY_MS.get((call.service, call.operation), 0) for call in measured.calls)
    if access_log is not None:
        other += access_log_bytes(access_log, measured.event, measured.answer, math.ceil(measured.own_ms + latency))
    return units_of(
        measured.calls,
        body_bytes=measured.body_bytes,
        own_ms=measured.own_ms,
        own_log=(measured.log_bytes + measured.log_lines * LOG_EVENT_OVERHEAD, measured.log_lines),
        other_log_bytes=other,
        bus_archive=bus_archive,
    )


def measure_receiver(
    kinds: Sequence[Kind] = KINDS, runs: int = RUNS, template: Deployed | None = None
) -> list[tuple[Measured, Units]]:
    """The receiver as the template deploys it, in this process against moto."""
    from moto import mock_aws

    from devkit.aws_resources import Names, connect, provision
    from handler import app, wiring

    config = template or deployed()
    env = {**config.receiver_env, **AWS_ENV}
    names = Names(
        secret_parameter=env["WEBHOOK_SECRET_PARAMETER"],
        bus=env["EVENT_BUS_NAME"],
        bucket=env["ARCHIVE_BUCKET"],
        table=env["IDEMPOTENCY_TABLE"],
    )
    with environment(env, clear=CLEAN), mock_aws():
        provision(connect(), names, secret=SECRET)
        # Before the receiver's first client (a new container's): its clients inherit the session's hooks.
        with Recorder().installed() as recorder:
            wiring.forget_container_state()
            try:
                with captured_stdout(wiring.telemetry().logger.registered_handler) as out:
                    measured = measure(app.handler, recorder, out, kinds, runs)
            finally:
                wiring.forget_container_state()
    if not any(call.service == "eventbridge" for m in measured for call in m.calls):
        raise RuntimeError("no PutEvents was recorded: the hooks did not reach the receiver's clients")
    return [
        (m, with_units(m, access_log=config.access_log_format, tracing=config.tracing, bus_archive=config.bus_archive))
        for m in measured
    ]


# The minimal design, by its configuration: only the bus (its minimal form), or the receiver's resources.
REFERENCE_CONFIGS = {
    "bus": ("WEBHOOK_SECRET_PARAMETER", "EVENT_BUS_NAME"),
    "full": ("WEBHOOK_SECRET_PARAMETER", "EVENT_BUS_NAME", "ARCHIVE_BUCKET", "IDEMPOTENCY_TABLE"),
}


def measure_reference(config: str = "bus", runs: int = RUNS, *, tracing: bool = False) -> tuple[Measured, Units]:
    """The minimal design (bench/reference.py) on the small delivery, in a fresh process: it reads its
    configuration, reads the secret and makes its clients at import. ``tracing``: deployed with X-Ray on."""
    done = subprocess.run(  # noqa: S603 (our own interpreter and module)
        [sys.executable, "-m", "bench.cost", "--reference-child", config, "--runs", str(runs)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode:
        raise RuntimeError(f"the reference's child failed:\n{done.stderr[-3000:]}")
    raw = json.loads(done.stdout.splitlines()[-1])
    raw["calls"] = [Call(**call) for call in raw["calls"]]
    measured = Measured(**raw)
    return measured, with_units(measured, access_log=None, tracing=tracing)  # the minimal design logs nothing


def reference_child(config: str, runs: int) -> None:
    """In the child: moto and the template's resources that ``config`` names, then bench.reference
    imported and measured; one JSON line on stdout."""
    from moto import mock_aws

    from devkit.aws_resources import Names, connect, provision

    receiver = deployed().receiver_env
    env = {name: receiver[name] for name in REFERENCE_CONFIGS[config]} | AWS_ENV
    real_stdout = sys.stdout
    with environment(env, clear=CLEAN), mock_aws():
        names = Names(
            secret_parameter=env["WEBHOOK_SECRET_PARAMETER"],
            bus=env["EVENT_BUS_NAME"],
            bucket=env.get("ARCHIVE_BUCKET"),
            table=env.get("IDEMPOTENCY_TABLE"),
        )
        provision(connect(), names, secret=SECRET)
        # Before the import, which makes the reference's clients.
        with Recorder().installed() as recorder, contextlib.redirect_stdout(io.StringIO()) as out:
            from bench import reference

            recorder.take()  # the import's GetParameter: the cold start
            [measured] = measure(reference.handler, recorder, out, [KINDS[0]], runs)
    result = asdict(measured)
    for call in result["calls"]:  # what units_of reads, as JSON
        call["params"] = {key: value for key, value in call["params"].items() if key != "Body"}
        call["response"] = {
            key: value for key, value in (call["response"] or {}).items() if key in ("Item", "Responses")
        }
    print(json.dumps(result), file=real_stdout)


# The redelivery function ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RedeliveryRun:
    hooks: int
    case: str  # "idle": nothing new on any hook; "active": new (successful) deliveries on each
    units: Units
    github_requests: int

    @property
    def billed_ms(self) -> int:
        return math.ceil(self.units.own_ms + self.units.latency_ms + self.github_requests * GITHUB_REQUEST_MS)


def measure_redelivery(hooks: int, template: Deployed | None = None, runs: int = 3) -> list[RedeliveryRun]:
    """Runs of the redelivery function as deployed (token in SSM, state in DynamoDB) against the GitHub
    stand-in, in a new container: a first run lists each hook, then ``runs`` idle runs (nothing new) and
    ``runs`` active ones (new successful deliveries on every hook, so each listing moves on and the
    state is saved). Own time is the median of each case's runs."""
    from moto import mock_aws

    from devkit.apigw import LambdaContext
    from devkit.aws_resources import Names, connect, provision
    from handler import redelivery
    from handler.aws import clients
    from handler.aws.telemetry import PowertoolsTelemetry
    from handler.core.settings import TelemetrySettings
    from tests.redelivery.github_standin import GitHubStandIn

    config = template or deployed()
    token, token_parameter = "ghp_cost0token0do0not0use000000000000000000", "/github-webhook/cost/github-token"
    specs = [f"repos/octo-org/repo-{n}/hooks/{n + 1}" for n in range(hooks)]
    results = []
    with GitHubStandIn(token=token, app_id="1", app_public_key=None) as github:
        env = {
            **config.redelivery_env,
            **AWS_ENV,
            "REDELIVERY_HOOKS": ",".join(specs),
            "GITHUB_API_URL": github.url,
            "GITHUB_TOKEN_PARAMETER": token_parameter,
        }
        with environment(env, clear=CLEAN), mock_aws(), Recorder().installed() as recorder:
            provision(connect(), Names(table=env["REDELIVERY_STATE_TABLE"]))
            connect()("ssm").put_parameter(Name=token_parameter, Value=token, Type="SecureString")
            clients.client.cache_clear()  # a new container: its clients come from the session just set up
            redelivery._BLOCKED.clear()
            for spec in specs:
                for _ in range(5):
                    github.deliver(spec, 200, age=3600)
            logger = PowertoolsTelemetry(TelemetrySettings.from_env()).logger.registered_handler
            try:
                with captured_stdout(logger) as out:
                    for case, repeat in (("first", 1), ("idle", runs), ("active", runs)):
                        samples, shapes = [], set()
                        for _ in range(repeat):
                            if case == "active":
                                for spec in specs:
                                    for _ in range(10):
                                        github.deliver(spec, 200, age=30)
                            recorder.take()
                            github.reset_counts()
                            written, start = len(out.getvalue()), time.perf_counter()
                            context = LambdaContext("github-webhook-redelivery", timeout_ms=120_000)
                            redelivery.handler({"source": "aws.events", "detail-type": "Scheduled Event"}, context)
                            wall = time.perf_counter() - start
                            calls = recorder.take()
                            text = out.getvalue()[written:]
                            samples.append((wall - sum(call.seconds for call in calls)) * 1000)
                            shapes.add(tuple((call.service, call.operation, call.failed) for call in calls))
                        if case == "first":
                            continue
                        if len(shapes) != 1:
                            raise RuntimeError(f"redelivery {case} runs made different calls: {shapes}")
                        lines = text.count("\n")
                        units = units_of(
                            calls,
                            body_bytes=0,
                            own_ms=statistics.median(samples),
                            own_log=(len(text.encode()) + lines * LOG_EVENT_OVERHEAD, lines),
                            other_log_bytes=platform_log_bytes(tracing=config.tracing),
                        )
                        results.append(RedeliveryRun(hooks, case, units, sum(github.requests.values())))
            finally:
                clients.client.cache_clear()
    return results


def monthly(run: RedeliveryRun, memory_mb: int, runs_per_month: float) -> dict[str, float]:
    u = run.units
    per_run = {
        "Lambda": PRICES["lambda_request"] + run.billed_ms / 1000 * memory_mb / 1024 * PRICES["lambda_gb_second"],
        "DynamoDB": u.wru * PRICES["dynamodb_wru"] + u.rru * PRICES["dynamodb_rru"],
        "CloudWatch Logs": u.log_bytes / 2**30 * PRICES["logs_gb"],
        "X-Ray": PRICES["xray_trace"],  # one run every few minutes: the reservoir samples each
    }
    return {service: cost * runs_per_month for service, cost in per_run.items()}


# The report -------------------------------------------------------------------------------------------


def form_of_entry(measured: Measured) -> str:
    """How the payload went on the bus, as the PutEvents entry shows: inline, or by a pointer to S3."""
    details = [
        entry["Detail"] for call in measured.calls if call.operation == "PutEvents" for entry in call.params["Entries"]
    ]
    if not details or measured.body_bytes < EVENTBRIDGE_CHUNK:
        return ""
    return " (claim check)" if all('"payload_location"' in detail for detail in details) else " (inline)"


def money(value: float) -> str:
    return f"${value:,.2f}"


def render(
    receiver: list[tuple[Measured, Units]],
    references: dict[str, tuple[Measured, Units]],
    redeliveries: list[RedeliveryRun],
    config: Deployed,
    seconds: float,
    parameters: Mapping[str, str] | None = None,
) -> str:
    memory = config.receiver_memory_mb
    rows = [(m.kind + form_of_entry(m), m, u) for m, u in receiver]
    rows.append((f"**minimal design** (bus only): {references['bus'][0].kind}", *references["bus"]))
    rows.append((f"minimal design + archive + table: {references['full'][0].kind}", *references["full"]))
    out = [
        "# Cost per delivery: the receiver as deployed, against the minimal design",
        "",
        f"- Prices ({PRICES_READ}, no free tier): API Gateway HTTP API ${PRICES['api_request'] * 1e6:.2f}/M"
        f" requests (512 KB units); Lambda arm64 ${PRICES['lambda_request'] * 1e6:.2f}/M requests +"
        f" ${PRICES['lambda_gb_second']}/GB-s; S3 ${PRICES['s3_put'] * 1000:.3f}/1,000 PUT; DynamoDB on demand"
        f" ${PRICES['dynamodb_wru'] * 1e6:.3f}/M WRU (1 KB), ${PRICES['dynamodb_rru'] * 1e6:.3f}/M RRU (4 KB);"
        f" EventBridge ${PRICES['eventbridge_event'] * 1e6:.2f}/M events (64 KB chunks); CloudWatch Logs"
        f" ${PRICES['logs_gb']:.2f}/GB ingested (+{LOG_EVENT_OVERHEAD} B a log event); X-Ray"
        f" ${PRICES['xray_trace'] * 1e6:.2f}/M traces. SSM GetParameter: free at standard throughput.",
        "- **Assumed** latency per AWS call (not measured; added to the handler's own time, the sum rounded up to"
        " 1 ms): " + ", ".join(f"{s} {o} {ms} ms" for (s, o), ms in LATENCY_MS.items()) + ".",
        "- Measured: handler.app.handler on API Gateway v2 events, with template.yaml's environment"
        + (f" (parameters set: {', '.join(f'{k}={v}' for k, v in parameters.items())})" if parameters else "")
        + f" and {memory} MB (its MemorySize), against moto in process; every AWS call counted with botocore"
        f" hooks. Own time: the median of {RUNS} warm invocations, less the time inside AWS calls, on this"
        " machine's full core. Warm: the first delivery's SSM read (the cold start) is left out.",
        "- Logs: the receiver's own lines, plus Lambda's START/END/REPORT"
        f" ({platform_log_bytes(tracing=config.tracing)} B) and the API's access log line (the template's format)."
        " The minimal design writes no line and has no access log: Lambda's lines only.",
        "",
        "## What each delivery makes",
        "",
        "| delivery | body (B) | answer | AWS calls | S3 PUT | DynamoDB WRU / RRU | EventBridge events"
        " | own log lines / B | all log B | own ms | billed ms |",
        "|---|--:|--:|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for name, m, u in rows:
        calls = ", ".join(f"{n}{TIMES} {c}" for c, n in u.calls.items()) or "none"
        out.append(
            f"| {name} | {m.body_bytes:,} | {m.status} | {calls} | {u.s3_puts} | {u.wru:g} / {u.rru:g} | {u.events}"
            f" | {u.own_log_lines} / {u.own_log_bytes:,} | {u.log_bytes:,} | {u.own_ms:.2f} | {u.billed_ms} |"
        )
    out += [
        "",
        f"## Dollars per million deliveries ({memory} MB arm64)",
        "",
        "| delivery | " + " | ".join(SERVICES) + " | total |",
        "|---|" + "--:|" * (len(SERVICES) + 1),
    ]
    costs = [cost_per_million(u, memory) for _, _, u in rows]
    for (name, _, _), cost in zip(rows, costs, strict=True):
        out.append(
            f"| {name} | " + " | ".join(money(cost[s]) for s in SERVICES) + f" | **{money(sum(cost.values()))}** |"
        )
    small, minimal, full = costs[0], costs[len(receiver)], costs[len(receiver) + 1]
    more = ", ".join(f"{s} {money(small[s] - minimal[s])}" for s in SERVICES if round(small[s] - minimal[s], 2))
    xray = xray_per_million()
    u = receiver[0][1]
    share = 1769 / memory  # Lambda gives one vCPU at 1,769 MB, a proportional share below
    slower = math.ceil(u.own_ms * share + u.latency_ms) - u.billed_ms
    months = config.archive_days / (HOURS_PER_MONTH / 24)
    stored = [
        f"{money(m.body_bytes * u.s3_puts * 1e6 / 2**30 * PRICES['s3_gb_month'] * months)} for the {name}"
        for name, m, u in rows[: len(receiver)]
        if u.s3_puts
    ]
    out += [
        "",
        f"- The receiver (small delivery) costs **{sum(small.values()) / sum(minimal.values()):.1f}{TIMES}**"
        f" the minimal design: {money(sum(small.values()))} against {money(sum(minimal.values()))} per million."
        f" The difference: {more}. Against the minimal design with an S3 archive of every delivery and the table:"
        f" {sum(small.values()) / sum(full.values()):.2f}{TIMES}.",
        f"- X-Ray, not in the totals: {money(xray['quiet'])} per million on a quiet receiver (the 1-a-second"
        f" reservoir samples nearly every delivery), {money(xray['busy'])} on a busy one (5%)"
        + ("." if config.tracing else ", were tracing Active (it is not, as template.yaml is set here)."),
        f"- S3 storage, not in the totals: a million deliveries kept {config.archive_days} days"
        f" (ArchiveExpirationDays, ${PRICES['s3_gb_month']}/GB-month) cost "
        + (", ".join(stored) if stored else "nothing: none is archived")
        + (". The bus archive's storage is not priced here." if config.bus_archive else "."),
        f"- Own time is this machine's. At {memory} MB Lambda gives {memory / 1769:.2f} of a vCPU: were the small"
        f" delivery's own time {share:.1f}{TIMES} longer, it would bill {slower} ms more"
        f" ({money(slower / 1000 * memory / 1024 * PRICES['lambda_gb_second'] * 1e6)} per million).",
        "- A forged delivery forces a secret re-read (SSM GetParameter) at most once per"
        f" WEBHOOK_SECRET_REFRESH_INTERVAL ({config.receiver_env.get('WEBHOOK_SECRET_REFRESH_INTERVAL')} s):"
        f" {sum(u.ssm_calls for _, _, u in rows)} here, all within one interval of the first read.",
    ]
    runs = config.runs_per_month
    out += [
        "",
        f"## The redelivery function, per month ({config.schedule}: {runs:,.0f} runs in {HOURS_PER_MONTH} h;"
        f" {config.redelivery_memory_mb} MB)",
        "",
        "Measured runs against the GitHub stand-in (tests/redelivery), its requests at an **assumed**"
        f" {GITHUB_REQUEST_MS} ms each. *idle*: nothing new on any hook since the last run; *active*: new"
        " successful deliveries on each hook (its listing moves on, so its state is saved). Transactional"
        " writes are 2 WRU per KB; each of a hook's 17 keys read is at least 1 RRU, found or not. X-Ray not in"
        " the total.",
        "",
        "| hooks | run | GitHub requests | AWS calls | DynamoDB RRU / WRU | log B | billed ms"
        " | Lambda | DynamoDB | Logs | total / month | X-Ray" + ("" if config.tracing else " if Active") + " |",
        "|--:|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for run in redeliveries:
        cost = monthly(run, config.redelivery_memory_mb, runs)
        calls = ", ".join(f"{n}{TIMES} {c}" for c, n in run.units.calls.items()) or "none"
        total = sum(value for service, value in cost.items() if service != "X-Ray")
        out.append(
            f"| {run.hooks} | {run.case} | {run.github_requests} | {calls} | {run.units.rru:g} / {run.units.wru:g}"
            f" | {run.units.log_bytes:,} | {run.billed_ms:,} | {money(cost['Lambda'])} | {money(cost['DynamoDB'])}"
            f" | {money(cost['CloudWatch Logs'])} | **{money(total)}** | {money(cost['X-Ray'])} |"
        )
    out += ["", f"Took {seconds:.0f} s."]
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cost", description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=RUNS, help="timed invocations per kind of delivery")
    parser.add_argument(
        "--parameter",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a template.yaml parameter instead of its default (ArchiveMode=every), as sam deploy would set it",
    )
    parser.add_argument("--reference-child", choices=REFERENCE_CONFIGS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.reference_child is not None:
        reference_child(args.reference_child, args.runs)
        return
    began = time.monotonic()
    parameters = dict(item.split("=", 1) for item in args.parameter)
    config = deployed(parameters=parameters)
    receiver = measure_receiver(runs=args.runs, template=config)
    references = {name: measure_reference(name, args.runs, tracing=config.tracing) for name in REFERENCE_CONFIGS}
    redeliveries = [run for hooks in (1, 20) for run in measure_redelivery(hooks, config)]
    report = render(receiver, references, redeliveries, config, time.monotonic() - began, parameters)
    print(report.removesuffix("\n") + "\n" + cheapest(args.runs, references["bus"][1]))


# The cheapest stack with deduplication where nothing accepted is lost (every delivery on the bus): no S3
# archive but for claim checks, no replay store, no replay protection, deduplication in one write.
CHEAPEST = {"ArchiveMode": "off", "BusReplayArchive": "off", "ReplayProtection": "false", "DedupMode": "after"}


def cheapest(runs: int, minimal: Units) -> str:
    """The small delivery's cost in the :data:`CHEAPEST` configuration, against the minimal design's."""
    config = deployed(parameters=CHEAPEST)
    [(_, units)] = measure_receiver(KINDS[:1], runs, template=config)
    total = sum(cost_per_million(units, config.receiver_memory_mb).values())
    floor = sum(cost_per_million(minimal, config.receiver_memory_mb).values())
    settings = " ".join(f"{name}={value}" for name, value in CHEAPEST.items())
    return (
        f"\n## The cheapest configuration with deduplication\n\n`{settings}`: nothing accepted is lost (every "
        f"delivery is on the bus), no replay store. The small delivery costs **{money(total)}** per million, "
        f"**{total / floor:.2f}{TIMES}** the minimal design ({money(floor)}).\n"
    )


if __name__ == "__main__":
    main()
