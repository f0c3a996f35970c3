"""`sam build` (no Docker) gives an artifact with only the handler package and its runtime wheels."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra.checks import ROOT

AARCH64 = 183  # ELF e_machine


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    build_dir = tmp_path_factory.mktemp("sam-build")
    sam = Path(sys.executable).parent / "sam"
    env = os.environ | {"SAM_CLI_TELEMETRY": "0"}
    subprocess.run(  # noqa: S603 (our own pinned sam, fixed arguments)
        [str(sam), "build", "--build-dir", str(build_dir)], cwd=ROOT, env=env, check=True, capture_output=True
    )
    return build_dir / "WebhookFunction"


def test_artifact_holds_the_handler_package_exactly(artifact: Path) -> None:
    shipped = sorted(p.relative_to(artifact / "handler").as_posix() for p in (artifact / "handler").rglob("*"))
    source = ROOT / "handler"
    files = sorted(p.relative_to(source).as_posix() for p in source.rglob("*.py") if "__pycache__" not in p.parts)
    packages = sorted(
        p.relative_to(source).as_posix() for p in source.iterdir() if p.is_dir() and p.name != "__pycache__"
    )
    assert shipped == sorted(files + packages)


@pytest.mark.parametrize(
    "name", ["tests", "events", "devkit", "infra", "README.md", "template.yaml", "Makefile", ".venv", "env.local.json"]
)
def test_artifact_has_no_tests_events_tooling_or_docs(artifact: Path, name: str) -> None:
    assert not (artifact / name).exists()


def test_artifact_has_no_test_or_event_file_anywhere(artifact: Path) -> None:
    ours = [p for p in artifact.rglob("*") if p.name.startswith("test_") and "handler" in p.parts]
    samples = [p for p in artifact.rglob("*.json") if p.parent.name in ("events", "payloads")]
    assert ours == []
    assert samples == []


def test_artifact_has_the_runtime_dependencies_for_arm64_and_python_313(artifact: Path) -> None:
    for package in ("fastapi", "mangum", "aws_lambda_powertools", "pydantic_core", "aws_xray_sdk"):
        assert (artifact / package).is_dir(), package
    [native] = list((artifact / "pydantic_core").glob("_pydantic_core.*.so"))
    assert "cpython-313-aarch64" in native.name
    header = native.read_bytes()[:20]
    assert int.from_bytes(header[18:20], "little") == AARCH64


def test_built_template_points_at_the_artifact(artifact: Path) -> None:
    built = (artifact.parent / "template.yaml").read_text(encoding="utf-8")
    assert "CodeUri: WebhookFunction" in built
