"""`webhook serve`: the receiver on http://127.0.0.1:8000/webhook, the same app as on Lambda."""

from __future__ import annotations

import os
import sys
from typing import Any

from devkit.github import DEV_SECRET


def describe(event: dict[str, Any]) -> str:
    detail = event["detail"]
    location = detail.get("payload_location", {})
    where = "payload inline" if "payload" in detail else f"payload at s3://{location['bucket']}/{location['key']}"
    archived = detail.get("archive_location", {}).get("key", "not archived")
    action = f".{detail['action']}" if detail.get("action") else ""
    return f"bus <- {event['detail-type']}{action} {detail['delivery_id']} ({where}; archive {archived})"


def serve(host: str, port: int, *, secret: str | None, emulator: bool) -> None:
    import uvicorn

    secret = secret or os.environ.get("WEBHOOK_SECRET") or DEV_SECRET
    aws = None
    if emulator:
        from devkit.emulator import Emulator

        aws = Emulator()
        environment = aws.start(secret)
        os.environ.pop("WEBHOOK_SECRET", None)
        os.environ.update(environment)
        aws.watch(lambda event: print(describe(event), file=sys.stderr, flush=True))
        print(
            f"AWS emulator (moto) on {aws.endpoint}: SSM secret, bus, archive bucket and table created", file=sys.stderr
        )
    else:
        os.environ["WEBHOOK_SECRET"] = secret
    if secret == DEV_SECRET:
        print(f"secret: the development secret {DEV_SECRET!r}", file=sys.stderr)
    print(f"receiver on http://{host}:{port}/webhook (Ctrl-C stops it)", file=sys.stderr, flush=True)
    from handler.app import app

    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        if aws is not None:
            aws.stop()
