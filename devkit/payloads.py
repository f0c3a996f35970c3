"""Where `send` and `event` get a payload: a sample name (events/payloads/) or a JSON file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from devkit.errors import CliError
from devkit.github import PAYLOADS


def samples() -> list[str]:
    return sorted(path.stem for path in PAYLOADS.glob("*.json"))


def load(source: str, event: str | None) -> tuple[str, dict[str, Any]]:
    """``(event, payload)`` for a sample name (``push``) or a path to a JSON file."""
    path = Path(source)
    if not path.exists() and (PAYLOADS / f"{source}.json").exists():
        path = PAYLOADS / f"{source}.json"
        event = event or source
    elif not path.exists():
        raise CliError(f"no such file or sample: {source} (samples: {', '.join(samples())})")
    try:
        payload = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise CliError(f"{path} is not a readable JSON file ({type(exc).__name__})") from None
    if not isinstance(payload, dict):
        raise CliError(f"{path} does not hold a JSON object")
    if event is None:
        if path.stem in samples():
            event = path.stem
        else:
            raise CliError(f"give the event name with --event (the X-GitHub-Event header) for {path}")
    return event, payload
