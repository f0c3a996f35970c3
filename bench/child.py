"""One measurement in a fresh process, so imports, client creation and the SSM read are real.

``python -m bench.child SPEC.json``: the spec (written by :mod:`bench.run`) names the handler
module, the event files and how many invocations to time; the figures go to the spec's ``out``.
Nothing but the standard library, devkit.apigw and handler.core.headers (constants, standard
library only) is imported before the cold-start clock starts, and stdout (the receiver's logs and
metrics) is discarded by the parent for both handlers alike.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
import json
import resource
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from devkit.apigw import LambdaContext
from handler.core.headers import DELIVERY

WARMUP = 2  # untimed invocations per size: a first call may still fill caches


def main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    events = Path(spec["events"])
    if spec["mode"] == "floor":
        result = floor(events, spec["secret"].encode(), spec["floor_runs"])
    else:
        result = measure(spec, events)
    Path(spec["out"]).write_text(json.dumps(result))


def measure(spec: dict[str, Any], events: Path) -> dict[str, Any]:
    calls = [0]
    push = load(events, "push")
    context = LambdaContext()

    # Cold start: importing the handler, the SSM read, clients, the first signed push, up to its 202.
    started = time.perf_counter()
    import boto3  # both handlers need it; imported here so it is inside the clock

    # Clients copy the session's event hooks when created, so this sees every GetParameter.
    boto3.setup_default_session()
    boto3.DEFAULT_SESSION.events.register(
        "before-parameter-build.ssm.GetParameter", lambda **_: calls.__setitem__(0, calls[0] + 1)
    )
    first_read = time.monotonic()  # about when the secret is first read (at import, or on the first request)
    handler = importlib.import_module(spec["target"]).handler
    expect(handler(fresh(push), context), 202)
    result: dict[str, Any] = {
        "cold_ms": (time.perf_counter() - started) * 1000,
        "rss_cold_kib": maxrss(),
        "ssm_cold": calls[0],
        "warm_ms": {},
    }
    del push

    for name, count in spec["warm"]:
        event = load(events, name)
        for _ in range(WARMUP):
            expect(handler(fresh(event), LambdaContext()), 202)
        samples = []
        for _ in range(count):
            request, context = fresh(event), LambdaContext()
            start = time.perf_counter()
            response = handler(request, context)
            samples.append((time.perf_counter() - start) * 1000)
            expect(response, 202)
        result["warm_ms"][name] = statistics.median(samples)
        del event, request
    result["rss_end_kib"] = maxrss()

    if spec["ssm_runs"]:
        result["ssm_warm"] = count_calls(calls, handler, load(events, "json_1k"), spec["ssm_runs"], 202)
        flood_started = time.monotonic()
        result["ssm_flood"] = count_calls(calls, handler, load(events, "bad_signature"), spec["ssm_runs"], 401)
        result["flood_s"] = time.monotonic() - flood_started
        result["flood_after_s"] = flood_started - first_read
    return result


def floor(events: Path, secret: bytes, runs: int) -> dict[str, Any]:
    """The least any handler must do with a body: one HMAC-SHA256 and one json.loads of it."""
    body = load(events, "json_5m")["body"].encode()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        hmac.new(secret, body, hashlib.sha256).hexdigest()
        json.loads(body)
        samples.append((time.perf_counter() - start) * 1000)
    return {"floor_ms": statistics.median(samples), "bytes": len(body)}


def count_calls(calls: list[int], handler: Any, event: dict[str, Any], runs: int, status: int) -> int:
    before = calls[0]
    for _ in range(runs):
        expect(handler(fresh(event), LambdaContext()), status)
    return calls[0] - before


def load(events: Path, name: str) -> dict[str, Any]:
    return json.loads((events / f"{name}.json").read_text())


def fresh(event: dict[str, Any]) -> dict[str, Any]:
    """The same request under a new X-GitHub-Delivery (the signature covers the body only)."""
    return {**event, "headers": {**event["headers"], DELIVERY: str(uuid.uuid4())}}


def expect(response: dict[str, Any], status: int) -> None:
    if response.get("statusCode") != status:
        raise SystemExit(f"expected {status}, got {response.get('statusCode')}: {response.get('body', '')[:300]}")


def maxrss() -> int:
    """Peak resident set size of this process, in KiB.

    VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across fork and exec, so
    every child would report at least the parent's size (moto's server and all).
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


if __name__ == "__main__":
    main(sys.argv[1])
