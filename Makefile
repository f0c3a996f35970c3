# Two commands (see README): `make serve` runs the receiver locally, `make test` runs every check.
# Both set up .venv from the pinned requirements first; nothing needs installing by hand.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

IAC_VENV ?= .venv-iac
IAC := $(IAC_VENV)/bin
IAC_STAMP := $(IAC_VENV)/.installed
# The SAM CLI and checkov must not try to phone home: CI has no internet.
export SAM_CLI_TELEMETRY := 0
export BC_SKIP_MAPPING := TRUE

.PHONY: serve test lint iac audit bench events clean build-WebhookFunction

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

$(IAC_STAMP): infra/requirements.txt
	$(PYTHON) -m venv $(IAC_VENV)
	$(IAC)/python -m pip install --quiet --disable-pip-version-check -r infra/requirements.txt
	touch $(IAC_STAMP)

# The receiver on the development secret, with an AWS emulator (moto) for SSM, the bus, archive and table.
serve: $(STAMP)
	$(PY) -m devkit serve --host $(HOST) --port $(PORT)

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

# Infrastructure: SAM's own lint, cfn-lint, checkov, then tests on the transformed template and the build.
iac: $(IAC_STAMP)
	$(IAC)/sam validate --lint
	$(IAC)/cfn-lint template.yaml
	$(IAC)/checkov --file template.yaml --framework cloudformation --quiet --compact --skip-download
	$(IAC)/python -m pytest infra
	$(IAC)/python infra/audit.py --if-reachable

# pip-audit over the pinned requirements; fails if PyPI's vulnerability data cannot be reached.
audit: $(IAC_STAMP)
	$(IAC)/python infra/audit.py

test: lint iac
	$(PY) -m pytest

events: $(STAMP)
	$(PY) -m devkit event --samples

# The receiver against a minimal handler of the same design, on an AWS emulator: prints the table
# and writes bench/RESULTS.md. A few minutes on 2 cores.
bench: $(STAMP)
	$(PY) -m bench.run

clean:
	rm -rf $(VENV) $(IAC_VENV) .pytest_cache .ruff_cache .hypothesis .aws-sam

# Called by `sam build` (template.yaml: BuildMethod makefile) with ARTIFACTS_DIR set. The artifact
# is handler/ plus requirements.txt's wheels for the Lambda platform: arm64, CPython 3.13.
LAMBDA_PLATFORM := manylinux2014_aarch64
LAMBDA_PYTHON := 3.13
build-WebhookFunction:
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --no-compile --target "$(ARTIFACTS_DIR)" \
		--platform $(LAMBDA_PLATFORM) --implementation cp --python-version $(LAMBDA_PYTHON) --only-binary=:all: \
		-r requirements.txt
	tar --exclude=__pycache__ -cf - handler | tar -xf - -C "$(ARTIFACTS_DIR)"
