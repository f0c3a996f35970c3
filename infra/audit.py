"""Supply chain: pip-audit over the pinned requirements, failing on any known vulnerability.

pip-audit asks PyPI's JSON API about each pinned version. Where that API cannot be reached (a
network that serves only the package index), the audit cannot be done: this says so loudly and
does not pretend it passed. Known findings that are accepted go in ``infra/audit-ignore.txt``
(one ``VULN-ID  reason`` per line).
"""

from __future__ import annotations

import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROBE = "https://pypi.org/pypi/pip/24.0/json"
REQUIREMENTS = ["requirements.txt", "requirements-dev.txt"]


def reachable() -> bool:
    try:
        with urllib.request.urlopen(PROBE, timeout=10) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def ignored() -> list[str]:
    path = ROOT / "infra" / "audit-ignore.txt"
    lines = path.read_text().splitlines() if path.exists() else []
    return [line.split()[0] for line in lines if line.strip() and not line.startswith("#")]


def main() -> int:
    if not reachable():
        notice = (
            "pip-audit: NOT RUN - PyPI's vulnerability data (the JSON API) is unreachable from this machine; "
            "run `make audit` where it is."
        )
        print(notice, file=sys.stderr)
        if "--record" in sys.argv:  # `make test` repeats what could not run in its last lines
            with Path(sys.argv[sys.argv.index("--record") + 1]).open("a", encoding="utf-8") as record:
                record.write(notice + "\n")
        return 0 if "--if-reachable" in sys.argv else 1
    audit = Path(sys.executable).parent / "pip-audit"
    status = 0
    for requirements in REQUIREMENTS:
        command = [str(audit), "--strict", "--no-deps", "--disable-pip", "--progress-spinner", "off"]
        command += ["--requirement", str(ROOT / requirements)]
        for vuln in ignored():
            command += ["--ignore-vuln", vuln]
        print(f"pip-audit {requirements}", flush=True)
        status |= subprocess.run(command, check=False).returncode  # noqa: S603 (our pinned pip-audit)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
