"""Benchmark the receiver against a minimal handler of the same design, side by side, in one run.

``make bench`` (or ``.venv/bin/python -m bench.run``). AWS is moto's server on loopback, so both
handlers pay real client creation and real HTTP. Every measurement runs in fresh child processes
(:mod:`bench.child`), alternating receiver and reference so that drift hits both. Figures are
medians over ``REPS`` processes; the table is printed and written to bench/RESULTS.md, above the
file's hand-written ``## History`` section, which is kept.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.child import WARMUP
from devkit.aws_resources import Names, connect, provision

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "RESULTS.md"

REPS = 5  # child processes per handler and configuration; each figure is the median over them
WARM = [  # (case, timed invocations per process), 5 MiB last: its peak memory is read afterwards
    ("json_1k", 100),
    ("json_1m", 20),
    ("form_1m", 10),
    ("b64_1m", 20),
    ("json_5m", 10),
]
SSM_RUNS = 1000  # warm invocations, then bad signatures, counted in the first process of each
FLOOR_RUNS = 20
KIB, MIB = 1024, 1024 * 1024

REGION = "us-east-1"
SECRET = "bench-webhook-secret"  # noqa: S105 (only ever stored in the local emulator)
# The receiver's resources, as `make serve` creates them (no queue: nothing reads the bus here).
RESOURCES = Names(
    secret_parameter="/github-webhook/bench/secret",  # noqa: S106 (a name, not a secret)
    bus="bench-github",
    bucket="bench-github-archive",
    table="bench-github-deliveries",
)
CONFIGS = {
    "core": Names(secret_parameter=RESOURCES.secret_parameter).environment(),
    "full": RESOURCES.environment(),
}
TARGETS = {"receiver": "handler.app", "reference": "bench.reference"}


def main() -> None:
    began = time.monotonic()
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        aws = {
            "AWS_ENDPOINT_URL": f"http://{host}:{port}",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        resources = provision(connect(aws["AWS_ENDPOINT_URL"], region=REGION), RESOURCES, secret=SECRET)
        with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
            events = Path(scratch)
            sizes = write_events(events)
            results = run_all(events, aws, resources.empty_bucket)
    finally:
        server.stop()
    report = render(results, sizes, time.monotonic() - began)
    print(report)
    RESULTS.write_text(report + kept_history())
    print(f"written to {RESULTS.relative_to(ROOT)}")


def kept_history() -> str:
    """The hand-written ``## History`` section at the end of RESULTS.md: every run keeps it."""
    try:
        text = RESULTS.read_text()
    except FileNotFoundError:
        return ""
    start = text.find("\n## History")
    return text[start:] if start >= 0 else ""


def padded_push(size: int) -> dict[str, Any]:
    """The sample push payload grown with commits (or trimmed) to exactly ``size`` bytes of JSON."""
    from devkit.github import GITHUB_SEPARATORS, encode_body, sample_payload

    payload = sample_payload("push")
    commit = payload["commits"][0]
    if size < len(encode_body(payload)):
        repository, sender = payload["repository"], payload["sender"]
        payload = {key: payload[key] for key in ("ref", "before", "after", "created", "deleted", "forced", "pusher")}
        payload["repository"] = {key: repository[key] for key in ("id", "name", "full_name", "private")}
        payload["sender"] = {key: sender[key] for key in ("login", "id", "type")}
        payload["commits"] = []
        commit = {key: commit[key] for key in ("id", "message", "timestamp", "author")}
    # Grown by arithmetic, not by re-encoding: encode_body writes compact JSON, as GitHub does.
    length = len(encode_body(payload))
    while True:
        number = len(payload["commits"])
        grown = {**commit, "id": hashlib.sha1(str(number).encode()).hexdigest(), "message": f"Commit {number}"}  # noqa: S324
        step = len(json.dumps(grown, ensure_ascii=False, separators=GITHUB_SEPARATORS)) + (1 if number else 0)
        if number and length + step > size:
            break
        payload["commits"].append(grown)
        length += step
    filler = " Lorem ipsum dolor sit amet." * (size // 28 + 1)  # ASCII: one byte per character in JSON
    payload["commits"][-1]["message"] += filler[: size - length]
    assert len(encode_body(payload)) == size, "the padding must land on the exact size"
    return payload


def write_events(folder: Path) -> dict[str, int]:
    """Signed API Gateway v2 events for each case, as JSON files; returns each body's size."""
    from devkit.apigw import http_api_event
    from devkit.github import encode_body, github_headers, sample_payload

    def event(payload: dict[str, Any], *, form: bool = False, base64: bool = False, secret: str = SECRET) -> Any:
        body = encode_body(payload, form=form)
        return http_api_event(body, github_headers("push", body, secret=secret, form=form), base64_encoded=base64)

    one_kib, one_mib, five_mib = padded_push(KIB), padded_push(MIB), padded_push(5 * MIB)
    cases = {
        "push": event(sample_payload("push")),
        "json_1k": event(one_kib),
        "bad_signature": event(one_kib, secret="not-the-secret"),  # noqa: S106 (a wrong secret on purpose)
        "json_1m": event(one_mib),
        "form_1m": event(one_mib, form=True),
        "b64_1m": event(one_mib, base64=True),
        "json_5m": event(five_mib),
    }
    sizes = {}
    for name, request in cases.items():
        (folder / f"{name}.json").write_text(json.dumps(request))
        sizes[name] = int(request["headers"]["content-length"])
    return sizes


def child(spec: dict[str, Any], env: dict[str, str], folder: Path) -> dict[str, Any]:
    """Run bench.child in a fresh interpreter; its stdout (logs, EMF) goes to /dev/null for both handlers."""
    out = Path(tempfile.mkstemp(dir=folder, suffix=".out")[1])
    spec_file = out.with_suffix(".spec")
    spec_file.write_text(json.dumps({**spec, "out": str(out)}))
    done = subprocess.run(  # noqa: S603 (our own interpreter and module)
        [sys.executable, "-m", "bench.child", str(spec_file)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode:
        raise SystemExit(f"bench.child failed ({spec.get('target', spec['mode'])}):\n{done.stderr[-3000:]}")
    return json.loads(out.read_text())


def run_all(events: Path, aws: dict[str, str], empty_bucket: Callable[[], None]) -> dict[str, Any]:
    clean = ("AWS_", "WEBHOOK_", "EVENT_", "ARCHIVE_", "PAYLOAD_", "IDEMPOTENCY_", "POWERTOOLS_")
    base_env = {key: value for key, value in os.environ.items() if not key.startswith(clean)} | aws
    base_spec = {"mode": "handler", "events": str(events), "secret": SECRET}
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {config: {t: [] for t in TARGETS} for config in CONFIGS}

    # One untimed pass first, so that neither side pays for writing .pyc files or a cold page cache.
    for extra in CONFIGS.values():
        for module in TARGETS.values():
            child({**base_spec, "target": module, "warm": [], "ssm_runs": 0}, base_env | extra, events)

    floors = []
    for rep in range(REPS):
        print(f"run {rep + 1}/{REPS}", file=sys.stderr, flush=True)
        order = list(TARGETS.items()) if rep % 2 == 0 else list(reversed(TARGETS.items()))
        for config, extra in CONFIGS.items():
            for name, module in order:
                spec = {**base_spec, "target": module, "warm": WARM, "ssm_runs": SSM_RUNS if rep == 0 else 0}
                runs[config][name].append(child(spec, base_env | extra, events))
                empty_bucket()  # each process finds the emulator in the same state
        floors.append(child({**base_spec, "mode": "floor", "floor_runs": FLOOR_RUNS}, base_env, events))
    return {"runs": runs, "floor_ms": statistics.median(f["floor_ms"] for f in floors)}


def summary(runs: list[dict[str, Any]], five_mib: float) -> dict[str, float]:
    """One handler's figures in one configuration: medians over its processes."""

    def median(key: Callable[[dict[str, Any]], float]) -> float:
        return statistics.median(key(run) for run in runs)

    figures = {
        "cold": median(lambda r: r["cold_ms"]),
        **{case: median(lambda r, case=case: r["warm_ms"][case]) for case, _ in WARM},
        "rss_cold": median(lambda r: r["rss_cold_kib"]) / KIB,
        "rss_end": median(lambda r: r["rss_end_kib"]) / KIB,
        "ssm_cold": max(r["ssm_cold"] for r in runs),
        "ssm_warm": runs[0]["ssm_warm"],
        "ssm_flood": runs[0]["ssm_flood"],
    }
    figures["per_mib"] = figures["json_5m"] / five_mib
    return figures


# (label, figure, number format, whether a receiver/reference ratio means anything, target: one string for
# both configurations, or {configuration: target})
ROWS: list[tuple[str, str, str, bool, str | dict[str, str]]] = [
    ("cold start, to the first 202 (ms)", "cold", ".0f", True, "ratio ≤ 1.1"),
    ("warm 1 KiB JSON (ms)", "json_1k", ".2f", True, {"core": "ratio ≤ 1.5", "full": "ratio ≤ 1.3"}),
    ("warm 1 MiB JSON (ms)", "json_1m", ".1f", True, ""),
    ("warm 1 MiB form-encoded (ms)", "form_1m", ".1f", True, ""),
    ("warm 1 MiB JSON, base64 (ms)", "b64_1m", ".1f", True, ""),
    ("warm 5 MiB JSON (ms)", "json_5m", ".1f", True, {"core": "ratio ≤ 1.0"}),
    ("peak RSS after the cold start (MiB)", "rss_cold", ".1f", True, ""),
    ("peak RSS after 5 MiB (MiB)", "rss_end", ".1f", True, "ratio ≤ 1.1"),
    ("SSM GetParameter calls in the cold start", "ssm_cold", "d", False, "1"),
    (f"SSM GetParameter calls per {SSM_RUNS:,} warm invocations", "ssm_warm", "d", False, "0"),
    (f"SSM GetParameter calls per {SSM_RUNS:,} bad signatures", "ssm_flood", "d", False, "≤ 1 per refresh interval"),
    ("5 MiB: ms per MiB", "per_mib", ".2f", True, ""),
    ("5 MiB: ms per MiB / floor's", "over_floor", ".2f", False, ""),
]


def render(results: dict[str, Any], sizes: dict[str, int], seconds: float) -> str:
    five_mib = sizes["json_5m"] / MIB
    floor_per_mib = results["floor_ms"] / five_mib
    flood = results["runs"]["full"]["receiver"][0]
    lines = [
        "# Benchmark: the receiver against the minimal design",
        "",
        f"- {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; Python {platform.python_version()}; "
        f"{cpu_model()}, {os.cpu_count()} cores; `make bench` took {seconds:.0f} s",
        "- AWS: moto's server on loopback (real clients, real HTTP). *core*: the secret from SSM only; "
        "*full*: the secret, bus, archive and table. ratio = receiver / reference (bench/reference.py).",
        f"- Each figure is the median over {REPS} fresh processes per handler and configuration. Warm latency "
        f"is each process's median over {', '.join(f'{c} ({n})' for c, n in WARM)} timed invocations after "
        f"{WARMUP} untimed ones. Peak RSS is VmHWM. SSM calls are counted in one process per side: "
        f"{SSM_RUNS:,} warm invocations, then {SSM_RUNS:,} bad signatures (in *full*, the receiver's flood "
        f"started {flood['flood_after_s']:.0f} s after its first SSM read and lasted {flood['flood_s']:.1f} s; "
        "the refresh interval is 30 s).",
        "- moto opens a TCP connection per call and evaluates DynamoDB expressions in Python: *full* latencies "
        "are dominated by the emulator (the same for both sides), not by what AWS would take.",
        "- Bodies (bytes): " + ", ".join(f"{name} {size:,}" for name, size in sizes.items()) + ". The 1 KiB, 1 MiB "
        "and 5 MiB payloads are the sample push grown with commits; the form body carries the 1 MiB JSON.",
        f"- Floor: HMAC-SHA256 plus one `json.loads` of the same 5 MiB body, {floor_per_mib:.2f} ms per MiB.",
    ]
    for config, by_target in results["runs"].items():
        receiver, reference = (summary(by_target[name], five_mib) for name in TARGETS)
        for figures in (receiver, reference):
            figures["over_floor"] = figures["per_mib"] / floor_per_mib
        over_floor_target = "receiver ≤ 1.2" if config == "core" else ""
        lines += ["", f"## {config}", "", "| figure | receiver | reference | ratio | target |", "|---|--:|--:|--:|---|"]
        for label, key, fmt, has_ratio, target in ROWS:
            ratio = f"{receiver[key] / reference[key]:.2f}" if has_ratio else ""
            if isinstance(target, dict):
                target = target.get(config, "")
            target = over_floor_target if key == "over_floor" else target
            lines.append(f"| {label} | {receiver[key]:{fmt}} | {reference[key]:{fmt}} | {ratio} | {target} |")
    return "\n".join(lines) + "\n"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    main()
