"""`webhook invoke`: run the Lambda handler in process on an event file, like `sam local invoke`."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from devkit.errors import USAGE, CliError
from devkit.github import DEV_SECRET

# What env.local.json gives `sam local invoke`: the development secret and no AWS hand-off.
LOCAL_ENV = {
    "WEBHOOK_SECRET": DEV_SECRET,
    "WEBHOOK_SECRET_PARAMETER": "",
    "EVENT_BUS_NAME": "",
    "ARCHIVE_BUCKET": "",
    "IDEMPOTENCY_TABLE": "",
}


def load_event(path: str, *, what: str = "event file") -> dict[str, Any]:
    try:
        event = json.loads(Path(path).read_bytes())
    except FileNotFoundError:
        raise CliError(f"no such {what}: {path}", USAGE) from None
    except (OSError, ValueError) as exc:
        raise CliError(f"{path} is not a readable JSON file ({type(exc).__name__})", USAGE) from None
    if not isinstance(event, dict):
        raise CliError(f"{path} does not hold a JSON object", USAGE)
    return event


def env_from_file(path: str, function: str = "WebhookFunction") -> dict[str, str]:
    """The variables for ``function`` in a `sam local invoke --env-vars` file."""
    document = load_event(path, what="env-vars file")
    section = document.get(function, document.get("Parameters", {}))
    if not isinstance(section, dict):
        raise CliError(f"{path} has no {function} section", USAGE)
    return {str(key): str(value) for key, value in section.items()}


def invoke(event: dict[str, Any], *, env: dict[str, str]) -> dict[str, Any]:
    """The handler's response to ``event`` with ``env`` applied, as a fresh container would give it.

    The response alone goes to stdout, as with sam: logs and EMF metrics go to stderr.
    """
    from devkit.apigw import LambdaContext
    from handler import app, wiring

    saved = dict(os.environ)
    if env.get("AWS_REGION") and not env.get("AWS_DEFAULT_REGION"):
        # Lambda sets both; botocore reads only AWS_DEFAULT_REGION (a file written for Lambda sets AWS_REGION).
        env = {**env, "AWS_DEFAULT_REGION": env["AWS_REGION"]}
    os.environ.update(env)
    wiring.forget_container_state()  # a new container: settings, telemetry and clients from ``env``
    handler = wiring.telemetry().logger.registered_handler
    previous = handler.setStream(sys.stderr)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            return app.handler(event, LambdaContext())
    finally:
        handler.setStream(previous)
        os.environ.clear()
        os.environ.update(saved)
        wiring.forget_container_state()
