"""`sam build` (no Docker) gives each function an artifact with only the handler package and its own
runtime wheels: the receiver's (requirements.txt) and the redelivery function's
(requirements-redelivery.txt, constrained by requirements.txt)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra.checks import FUNCTION, REDELIVERY_FUNCTION, ROOT

AARCH64 = 183  # ELF e_machine


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    build_dir = tmp_path_factory.mktemp("sam-build")
    sam = Path(sys.executable).parent / "sam"
    env = os.environ | {"SAM_CLI_TELEMETRY": "0"}
    subprocess.run(  # noqa: S603 (our own pinned sam, fixed arguments)
        [str(sam), "build", "--build-dir", str(build_dir)], cwd=ROOT, env=env, check=True, capture_output=True
    )
    return build_dir


@pytest.fixture(scope="module")
def artifact(build_dir: Path) -> Path:
    return build_dir / FUNCTION


@pytest.fixture(scope="module")
def redelivery_artifact(build_dir: Path) -> Path:
    return build_dir / REDELIVERY_FUNCTION


@pytest.fixture(params=[FUNCTION, REDELIVERY_FUNCTION])
def each_artifact(request: pytest.FixtureRequest, build_dir: Path) -> Path:
    return build_dir / request.param


def is_aarch64_elf(path: Path) -> bool:
    header = path.read_bytes()[:20]
    return header[:4] == b"\x7fELF" and int.from_bytes(header[18:20], "little") == AARCH64


def test_artifact_holds_the_handler_package_exactly(each_artifact: Path) -> None:
    shipped = sorted(
        p.relative_to(each_artifact / "handler").as_posix() for p in (each_artifact / "handler").rglob("*")
    )
    source = ROOT / "handler"
    files = sorted(p.relative_to(source).as_posix() for p in source.rglob("*.py") if "__pycache__" not in p.parts)
    packages = sorted(
        p.relative_to(source).as_posix() for p in source.rglob("*") if p.is_dir() and "__pycache__" not in p.parts
    )
    assert shipped == sorted(files + packages)


@pytest.mark.parametrize(
    "name", ["tests", "events", "devkit", "infra", "README.md", "template.yaml", "Makefile", ".venv", "env.local.json"]
)
def test_artifact_has_no_tests_events_tooling_or_docs(each_artifact: Path, name: str) -> None:
    assert not (each_artifact / name).exists()


def test_artifact_has_no_test_or_event_file_anywhere(each_artifact: Path) -> None:
    ours = [p for p in each_artifact.rglob("*") if p.name.startswith("test_") and "handler" in p.parts]
    samples = [p for p in each_artifact.rglob("*.json") if p.parent.name in ("events", "payloads")]
    assert ours == []
    assert samples == []


def test_artifact_has_no_bytecode_caches(each_artifact: Path) -> None:
    assert list(each_artifact.rglob("__pycache__")) == []


def test_artifact_has_the_runtime_dependencies_for_arm64_and_python_313(artifact: Path) -> None:
    for package in ("fastapi", "mangum", "aws_lambda_powertools", "pydantic_core", "aws_xray_sdk"):
        assert (artifact / package).is_dir(), package
    [native] = list((artifact / "pydantic_core").glob("_pydantic_core.*.so"))
    assert "cpython-313-aarch64" in native.name
    assert is_aarch64_elf(native)


def test_receiver_artifact_has_none_of_the_redelivery_dependencies(artifact: Path) -> None:
    for package in ("gidgethub", "jwt", "uritemplate"):
        assert not (artifact / package).exists(), package


def test_redelivery_artifact_has_its_dependencies_for_arm64_and_python_313(redelivery_artifact: Path) -> None:
    for package in ("gidgethub", "jwt", "cryptography", "aws_lambda_powertools", "boto3", "botocore"):
        assert (redelivery_artifact / package).is_dir(), package
    # cryptography's extension is built for the stable ABI (abi3, CPython 3.11 and later).
    [rust] = list((redelivery_artifact / "cryptography").rglob("_rust*.so"))
    assert rust.name == "_rust.abi3.so"
    assert is_aarch64_elf(rust)
    [wheel] = list(redelivery_artifact.glob("cryptography-*.dist-info"))
    tags = [line.split(": ", 1)[1] for line in (wheel / "WHEEL").read_text().splitlines() if line.startswith("Tag: ")]
    assert tags
    assert all(tag.endswith("aarch64") and "-abi3-" in tag for tag in tags)
    [cffi] = list(redelivery_artifact.glob("_cffi_backend.*.so"))
    assert "cpython-313-aarch64" in cffi.name
    assert is_aarch64_elf(cffi)


def test_redelivery_artifact_has_no_web_stack_and_no_console_scripts(redelivery_artifact: Path) -> None:
    for package in ("fastapi", "mangum", "starlette", "pydantic", "pydantic_core", "anyio"):
        assert not (redelivery_artifact / package).exists(), package
    assert not (redelivery_artifact / "bin").exists()


def test_both_artifacts_share_the_pins_of_requirements_txt(artifact: Path, redelivery_artifact: Path) -> None:
    def versions(directory: Path) -> dict[str, str]:
        pairs = (p.name.removesuffix(".dist-info").rsplit("-", 1) for p in directory.glob("*.dist-info"))
        return {name.lower().replace("-", "_"): version for name, version in pairs}

    receiver, redelivery = versions(artifact), versions(redelivery_artifact)
    shared = set(receiver) & set(redelivery)
    assert {"boto3", "botocore", "aws_lambda_powertools"} <= shared
    assert {name: redelivery[name] for name in shared} == {name: receiver[name] for name in shared}


def _imports(path: Path) -> set[str]:
    """Modules a file imports, wherever the import is (lazy ones in functions too), except under
    ``if TYPE_CHECKING:``. ``from a import b`` gives ``a`` and ``a.b`` (b may be a module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for child in block.body
        for node in ast.walk(child)
    }
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _source_of(module: str) -> Path | None:
    """The file of one of our modules (``handler.x.y``), or None when the name is not a module."""
    base = ROOT.joinpath(*module.split("."))
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return base.with_suffix(".py") if base.with_suffix(".py").is_file() else None


def test_everything_the_redelivery_handler_imports_is_in_its_artifact(redelivery_artifact: Path) -> None:
    # The wheels are for arm64, so the artifact cannot be imported here: follow handler.redelivery's
    # imports through the handler package instead, and look for each third-party module in the artifact.
    seen: set[str] = set()
    third_party: set[str] = set()
    pending = ["handler.redelivery"]
    while pending:
        module = pending.pop()
        source = _source_of(module)
        if module in seen or source is None:
            continue
        seen.add(module)
        for name in _imports(source):
            top = name.split(".")[0]
            if top == "handler":
                # Importing a.b.c runs a/__init__.py and a/b/__init__.py first.
                parts = name.split(".")
                pending.extend(".".join(parts[:end]) for end in range(1, len(parts) + 1))
            elif top not in sys.stdlib_module_names and top != "__future__":
                third_party.add(top)
    assert "handler.redelivery" in seen
    assert not {"handler.app", "handler.route", "handler.wiring"} & seen  # the receiver's web app is never imported
    assert {"gidgethub", "aws_lambda_powertools", "boto3"} <= third_party
    missing = [
        top
        for top in sorted(third_party)
        if not (redelivery_artifact / top).is_dir() and not (redelivery_artifact / f"{top}.py").is_file()
    ]
    assert missing == []


def test_built_template_points_at_the_artifacts(build_dir: Path) -> None:
    built = (build_dir / "template.yaml").read_text(encoding="utf-8")
    assert f"CodeUri: {FUNCTION}" in built
    assert f"CodeUri: {REDELIVERY_FUNCTION}" in built


def test_no_artifact_ships_console_scripts_or_the_build_machine_s_paths(each_artifact: Path) -> None:
    """pip --target writes bin/ scripts whose shebang names the build machine's Python: nothing on Lambda
    runs them, and they leak the build path."""
    assert not (each_artifact / "bin").exists()
    shebangs = []
    for path in each_artifact.rglob("*"):
        if path.is_file() and path.stat().st_size < 1_000_000:
            head = path.read_bytes()[:200]
            if head.startswith(b"#!") and (str(ROOT).encode() in head or b".venv" in head):
                shebangs.append(path.relative_to(each_artifact).as_posix())
    assert shebangs == []
