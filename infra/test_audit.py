"""`make audit` fails when PyPI's vulnerability data cannot be reached; `make test` records that it did
not run, so that its last lines can say so (infra/audit.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra import audit


def test_audit_fails_when_the_vulnerability_data_is_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit, "reachable", lambda: False)
    monkeypatch.setattr("sys.argv", ["audit.py"])
    assert audit.main() == 1


def test_make_test_records_the_audit_it_could_not_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    record = tmp_path / "not-run.txt"
    monkeypatch.setattr(audit, "reachable", lambda: False)
    monkeypatch.setattr("sys.argv", ["audit.py", "--if-reachable", "--record", str(record)])
    assert audit.main() == 0
    assert record.read_text().startswith("pip-audit: NOT RUN")
