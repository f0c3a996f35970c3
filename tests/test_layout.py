"""The layout keeps its promise: handler/core is sans I/O, importing only the standard library, orjson and itself."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import handler.core

ROOT = Path(__file__).resolve().parent.parent
CORE_MODULES = sorted(module.name for module in pkgutil.iter_modules(handler.core.__path__, "handler.core."))
# Nothing that does I/O for the core or ties it to a framework, not even indirectly.
FORBIDDEN = ("fastapi", "starlette", "pydantic", "mangum", "boto3", "botocore", "aws_lambda_powertools", "urllib3")
FORBIDDEN += ("httpx", "httpx2", "requests", "s3transfer", "aws_xray_sdk", "anyio", "snapshot_restore_py")

PROBE = """
import json, sys
before = set(sys.modules)
import {module}
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def test_every_core_module_is_listed() -> None:
    assert len(CORE_MODULES) >= 14  # a new module is picked up by the test below without listing it


@pytest.mark.parametrize("module", CORE_MODULES)
def test_a_core_module_imports_only_the_standard_library_and_the_core(module: str) -> None:
    """In a fresh interpreter: no framework, AWS SDK, Powertools or HTTP client, and nothing from
    ``handler`` outside ``handler.core``."""
    code = PROBE.format(module=module)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)  # noqa: S603
    loaded = json.loads(out.stdout)
    third_party = [name for name in loaded if name.split(".")[0] in FORBIDDEN]
    outside_core = [name for name in loaded if name.startswith("handler.") and not name.startswith("handler.core")]
    assert third_party == []
    assert outside_core == []
    # orjson: a parser (no I/O), the payload's JSON read strictly and written fast.
    stdlib = set(sys.stdlib_module_names) | {"handler", "_distutils_hack", "orjson"}
    assert [name for name in loaded if name.split(".")[0] not in stdlib and not name.startswith("_")] == []
