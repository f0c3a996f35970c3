"""`webhook serve`: the receiver on http://127.0.0.1:8000/webhook, the same app as on Lambda."""

from __future__ import annotations

import errno
import os
import socket
import sys
from functools import partial
from pathlib import Path
from typing import Any

from devkit.errors import USAGE, CliError
from devkit.github import DEV_SECRET


def describe(event: dict[str, Any]) -> str:
    detail = event["detail"]
    location = detail.get("payload_location", {})
    where = "payload inline" if "payload" in detail else f"payload at s3://{location['bucket']}/{location['key']}"
    archived = detail.get("archive_location", {}).get("key", "not archived")
    action = f".{detail['action']}" if detail.get("action") else ""
    return f"bus <- {event['detail-type']}{action} {detail['delivery_id']} ({where}; archive {archived})"


def _bind(host: str, port: int) -> None:
    """Bind (and release) the socket uvicorn will bind: same family, same SO_REUSEADDR."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))


def check_port(host: str, port: int) -> None:
    """Refuse, before anything starts, a port the receiver could not listen on (one line, exit 2)."""
    if not 0 < port < 65536:
        raise CliError(f"--port must be between 1 and 65535, not {port}", USAGE)
    try:
        _bind(host, port)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            why = exc.strerror or str(exc)
            raise CliError(f"cannot listen on {host}:{port} ({why})", USAGE) from None
        other = _free_port_after(host, port)
        raise CliError(
            f"port {port} on {host} is in use by {holder(port)}: stop it, or use another port: "
            f"make serve PORT={other}  or  ./webhook serve --port {other}",
            USAGE,
        ) from None


def _free_port_after(host: str, port: int) -> int:
    for candidate in range(port + 1, min(port + 20, 65535) + 1):
        try:
            _bind(host, candidate)
        except OSError:
            continue
        return candidate
    return port + 1 if port < 65535 else 8001


def holder(port: int, proc: Path = Path("/proc")) -> str:
    """Who listens on TCP ``port``: "python3 -m http.server (pid 4242)", or "another process"."""
    pids = listening_pids(port, proc)
    if not pids:
        return "another process"
    names = [f"{_command(proc / str(pid))} (pid {pid})" for pid in pids[:3]]
    return ", ".join(names) + (f" and {len(pids) - 3} more" if len(pids) > 3 else "")


def listening_pids(port: int, proc: Path = Path("/proc")) -> list[int]:
    """The processes holding a listening socket on ``port`` (Linux: /proc/net/tcp{,6}, then /proc/*/fd)."""
    sockets = set()
    for table in ("tcp", "tcp6"):
        try:
            rows = (proc / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            # sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
            fields = row.split()
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                sockets.add(f"socket:[{fields[9]}]")
    sockets.discard("socket:[0]")
    if not sockets:
        return []
    pids = []
    for entry in os.scandir(proc):
        if not entry.name.isdigit():
            continue
        try:
            descriptors = os.scandir(os.path.join(entry.path, "fd"))
        except OSError:  # gone, or another user's
            continue
        with descriptors:
            for descriptor in descriptors:
                try:
                    if os.readlink(descriptor.path) in sockets:
                        pids.append(int(entry.name))
                        break
                except OSError:
                    continue
    return sorted(pids)


def _command(process: Path, limit: int = 60) -> str:
    try:
        command = process.joinpath("cmdline").read_bytes().rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        command = ""
    if not command:
        try:
            command = process.joinpath("comm").read_text().strip()
        except OSError:
            return "a process"
    return command if len(command) <= limit else command[: limit - 1] + "…"


def serve(host: str, port: int, *, secret: str | None, emulator: bool, json_logs: bool = False) -> None:
    # Before anything starts (the emulator takes seconds): a busy port is one line, not a traceback later.
    check_port(host, port)
    import uvicorn

    if secret:
        origin = "the one given with --secret"
    elif os.environ.get("WEBHOOK_SECRET"):
        secret, origin = os.environ["WEBHOOK_SECRET"], "WEBHOOK_SECRET, from your environment"
    else:
        secret, origin = DEV_SECRET, f"the development secret {DEV_SECRET!r}"
    aws = None
    if emulator:
        from devkit.emulator import Emulator

        aws = Emulator()
        environment = aws.start(secret)
        os.environ.pop("WEBHOOK_SECRET", None)
        os.environ.update(environment)
        if json_logs:
            # The human console says "on the bus" on the delivery's own line instead: the receiver
            # accepts only after PutEvents succeeded, and this watcher prints out of order with it.
            aws.watch(lambda event: print(describe(event), file=sys.stderr, flush=True))
        print(aws.banner(), file=sys.stderr)
    else:
        os.environ["WEBHOOK_SECRET"] = secret
    # Where the secret came from (its value only when it is the public one): a 401 is then easy to explain.
    print(f"secret: {origin}", file=sys.stderr)
    from devkit import console
    from handler.route import app
    from handler.wiring import telemetry

    # The receiver's logger, named by the environment just set (it is built once, here).
    logger = telemetry().logger
    print(f"receiver on http://{host}:{port}/webhook (Ctrl-C stops it)", file=sys.stderr, flush=True)
    # proxy_headers off: uvicorn would otherwise take the client address from X-Forwarded-For sent
    # from 127.0.0.1, so any local process or tunnel agent could pass ALLOWED_SOURCE_CIDRS.
    run = partial(uvicorn.run, host=host, port=port, log_level="warning", proxy_headers=False)
    try:
        if json_logs:
            run(app)
        else:
            with console.installed(logger, stream=sys.stderr):
                run(console.EveryRequest(app, logger))
    finally:
        if aws is not None:
            aws.stop()
