# Two commands (see README): `make serve` runs the receiver locally, `make test` runs every check.
# Both set up .venv from the pinned requirements first; nothing needs installing by hand.

# The tests run on the Lambda runtime's Python (template.yaml: python3.13) when one can be found:
# python3.13 on PATH, else pyenv's newest 3.13.x (found even when pyenv has not activated it). Without
# one, python3; then `make test` ends with a notice saying the suite did not run on 3.13. Any Python:
# `make test PYTHON=/path/to/python`.
RUNTIME_PYTHON := 3.13
# The oldest Python the README promises for local use: `make test` runs SMOKE_TESTS on it too.
OLDEST_PYTHON := 3.11

# $(call find_python,X.Y): "<path> <version>" of the first Python X.Y that runs, or nothing.
find_python = $(shell for py in python$(1) $$(ls -d "$$(pyenv root 2>/dev/null || echo "$${PYENV_ROOT:-$$HOME/.pyenv}")"/versions/$(1).*/bin/python$(1) 2>/dev/null | sort -rV); do \
	"$$py" -c 'import platform, sys; v = platform.python_version(); assert v.startswith("$(1)."); print(sys.executable, v)' 2>/dev/null && break; done)
# $(call python_version,PYTHON): its version, e.g. 3.13.0, or nothing if it does not run.
python_version = $(shell $(1) -c 'import platform; print(platform.python_version())' 2>/dev/null)

PYTHON_ORIGIN := $(origin PYTHON)
ifeq ($(PYTHON_ORIGIN),undefined)
  RUNTIME_FOUND := $(call find_python,$(RUNTIME_PYTHON))
  PYTHON := $(or $(word 1,$(RUNTIME_FOUND)),python3)
  PYTHON_VERSION := $(or $(word 2,$(RUNTIME_FOUND)),$(call python_version,$(PYTHON)))
else
  PYTHON_VERSION := $(call python_version,$(PYTHON))
endif
VENV ?= .venv
PY := $(VENV)/bin/python
# The venv's pip is first brought to this one: the pip a Python bundles (24.2 with 3.13.0) says nothing
# for the tens of seconds it installs; pip 25.1 and later show a progress bar there (on a terminal).
PIP_VERSION := 25.3
# A stamp holds the version of the Python its venv was built with; on another, the venv is rebuilt.
STAMP := $(VENV)/.installed
stale = $(if $(filter-out $(shell cat $(1) 2>/dev/null),$(2)),$(1))
HOST ?= 127.0.0.1
PORT ?= 8000

# Runtime, pytest and the test fixtures' imports (moto, httpx2) at requirements-dev.txt's pins; only
# when the suite above does not already run on OLDEST_PYTHON.
SMOKE_VENV ?= .venv-py$(OLDEST_PYTHON)
SMOKE_PACKAGES := pytest httpx2 'moto[ssm,events,s3,dynamodb]'
SMOKE_TESTS := tests/core tests/test_signature.py tests/test_delivery.py tests/test_config.py tests/test_lambda_handler.py \
	tests/test_webhook.py tests/security/test_corpus.py::test_nesting_the_parser_accepts_is_forwarded_and_deeper_nesting_is_400_never_500
ifneq ($(filter test,$(MAKECMDGOALS)),)
ifneq ($(basename $(PYTHON_VERSION)),$(OLDEST_PYTHON))
  SMOKE_FOUND := $(call find_python,$(OLDEST_PYTHON))
  SMOKE_STAMP := $(if $(SMOKE_FOUND),$(SMOKE_VENV)/.installed)
endif
endif

# The infrastructure tools' own venv; its Python does not matter to the receiver.
IAC_PYTHON ?= python3
IAC_VENV ?= .venv-iac
IAC := $(IAC_VENV)/bin
IAC_STAMP := $(IAC_VENV)/.installed
# The SAM CLI and checkov must not try to phone home: CI has no internet.
export SAM_CLI_TELEMETRY := 0
export BC_SKIP_MAPPING := TRUE

.PHONY: serve test lint iac audit bench drill cost build deploy events clean build-WebhookFunction build-RedeliveryFunction
.PHONY: $(call stale,$(STAMP),$(PYTHON_VERSION)) $(if $(SMOKE_STAMP),$(call stale,$(SMOKE_STAMP),$(word 2,$(SMOKE_FOUND))))

$(STAMP): requirements.txt requirements-dev.txt requirements-redelivery.txt
	@test -n "$(PYTHON_VERSION)" || { echo "make: '$(PYTHON)' does not run: install Python $(RUNTIME_PYTHON) (or $(OLDEST_PYTHON)+), or pass PYTHON=..." >&2; exit 1; }
	@echo "==> Setting up $(VENV) on Python $(PYTHON_VERSION): installing the pinned packages (once; about 1-4 minutes, pip's progress below)" >&2
	$(PYTHON) -m venv --clear $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check pip==$(PIP_VERSION)
	$(PY) -m pip install --disable-pip-version-check --progress-bar on -r requirements-dev.txt
	echo $(PYTHON_VERSION) > $(STAMP)
	@echo "==> $(VENV) is ready" >&2

ifdef SMOKE_STAMP
$(SMOKE_STAMP): requirements.txt requirements-dev.txt
	$(word 1,$(SMOKE_FOUND)) -m venv --clear $(SMOKE_VENV)
	sed -E -e '/^-r /d' -e 's/\[[^]]*\]//' requirements-dev.txt > $(SMOKE_VENV)/constraints.txt
	$(SMOKE_VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
		-r requirements.txt -c $(SMOKE_VENV)/constraints.txt $(SMOKE_PACKAGES)
	echo $(word 2,$(SMOKE_FOUND)) > $@
endif

$(IAC_STAMP): infra/requirements.txt
	@echo "==> Setting up $(IAC_VENV): the SAM CLI, cfn-lint and checkov (once; about 1-3 minutes, pip's progress below)" >&2
	$(IAC_PYTHON) -m venv $(IAC_VENV)
	$(IAC)/python -m pip install --disable-pip-version-check --progress-bar on -r infra/requirements.txt
	touch $(IAC_STAMP)

# The receiver on the development secret, with an AWS emulator (moto) for SSM, the bus, archive and table.
serve: $(STAMP)
	$(PY) -m devkit serve --host $(HOST) --port $(PORT)

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy    # --strict on handler/ (pyproject.toml)

# Infrastructure: SAM's own lint, cfn-lint, checkov, then tests on the transformed template and the build.
iac: $(IAC_STAMP)
	@rm -f $(NOT_RUN)
	$(IAC)/sam validate --lint
	$(IAC)/cfn-lint template.yaml
	$(IAC)/checkov --file template.yaml --framework cloudformation --quiet --compact --skip-download
	$(IAC)/python -m pytest infra
	$(IAC)/python infra/audit.py --if-reachable --record $(NOT_RUN)

# pip-audit over the pinned requirements; fails if PyPI's vulnerability data cannot be reached.
audit: $(IAC_STAMP)
	$(IAC)/python infra/audit.py

# The whole suite on $(PY) (Python $(RUNTIME_PYTHON) when found), then SMOKE_TESTS on $(OLDEST_PYTHON). The last lines
# say so, loudly, when the suite did not run on $(RUNTIME_PYTHON), whether or not it passed.
test: lint iac $(SMOKE_STAMP)
	@if grep -nE 'Runtime: *python' template.yaml | grep -vE 'python$(RUNTIME_PYTHON)\b' >&2; then \
		echo "make: template.yaml's runtime is not python$(RUNTIME_PYTHON): update RUNTIME_PYTHON in the Makefile" >&2; exit 1; fi
	@echo "$(PY) -m pytest -n auto --dist worksteal    (Python $(PYTHON_VERSION), one worker per core)"; \
		$(PY) -m pytest -n auto --dist worksteal || { $(test_notices); exit 1; }
	@$(smoke_run) || { $(test_notices); exit 1; }
	@$(test_notices)

smoke_run = $(if $(SMOKE_STAMP),echo "$(SMOKE_VENV)/bin/python -m pytest $(SMOKE_TESTS)    (Python $(word 2,$(SMOKE_FOUND)))"; \
	$(SMOKE_VENV)/bin/python -m pytest $(SMOKE_TESTS),:)
test_notices = $(if $(filter $(RUNTIME_PYTHON),$(basename $(PYTHON_VERSION))),:,$(runtime_notice)); \
	$(if $(SMOKE_STAMP)$(filter $(OLDEST_PYTHON),$(basename $(PYTHON_VERSION))),:,$(oldest_notice)); \
	$(not_run_notice)
# Checks that could not run on this machine (recorded by `make iac`), repeated where they are seen: last.
NOT_RUN := $(IAC_VENV)/not-run.txt
not_run_notice = if [ -s $(NOT_RUN) ]; then printf '%s\n' '' \
	'!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!' \
	'!!! NOT RUN HERE: these checks could not run on this machine (run them where they can):' >&2; sed 's/^/!!!   /' $(NOT_RUN) >&2; \
	printf '%s\n' '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!' >&2; fi
runtime_notice = printf '%s\n' '' \
	'!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!' \
	'!!! NOT TESTED ON THE LAMBDA RUNTIME: the suite ran on Python $(PYTHON_VERSION) ($(PYTHON)), not $(RUNTIME_PYTHON).' \
	'!!! $(if $(filter undefined,$(PYTHON_ORIGIN)),No working python$(RUNTIME_PYTHON) on PATH and none under pyenv,PYTHON was set to $(PYTHON)). Lambda runs python$(RUNTIME_PYTHON) (template.yaml).' \
	'!!! Install $(RUNTIME_PYTHON), then run make test again (it rebuilds .venv on $(RUNTIME_PYTHON)):' \
	'!!!   pyenv install $(RUNTIME_PYTHON)   or   apt install python$(RUNTIME_PYTHON)-venv (Ubuntu: deadsnakes PPA)   or   https://www.python.org/downloads/' \
	'!!!   or point make at one: make test PYTHON=/path/to/python$(RUNTIME_PYTHON)' \
	'!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!' >&2
oldest_notice = printf '%s\n' '' \
	'Note: no python$(OLDEST_PYTHON) on PATH or under pyenv, so the smoke run on the oldest Python the README' \
	'supports was skipped (pyenv install $(OLDEST_PYTHON) to have it).' >&2

# `sam build` with the pinned SAM CLI (.venv-iac) and its telemetry off (no banner, nothing sent).
build: $(IAC_STAMP)
	$(IAC)/sam build

# Deploy with the pinned SAM CLI and samconfig.toml's answers: no guided prompt to abort on. ENV=prod for
# production (which shows the change set and asks first), REGION=... to choose the region. The preflight
# checks first that the SecureStrings the stack reads exist, and names the command that creates one.
ENV ?= default
deploy: $(STAMP) $(IAC_STAMP)
	@region=$$($(PY) -m devkit.deploy --config-env $(ENV) $(if $(REGION),--region $(REGION))) && \
		echo "==> Deploying samconfig.toml's [$(ENV)] to $$region" >&2 && \
		$(IAC)/sam build && \
		$(IAC)/sam deploy --config-env $(ENV) --region $$region

events: $(STAMP)
	$(PY) -m devkit event --samples

# The receiver against a minimal handler of the same design, on an AWS emulator: prints the table
# and writes bench/RESULTS.md. A few minutes on 2 cores. Then the cold-start storm (N containers at
# once against an SSM allowing 40 GetParameter a second, old and new retry policy side by side; about
# 30 s) and the outage drill.
bench: $(STAMP)
	$(PY) -m bench.run
	$(PY) -m bench.cost
	$(PY) -m bench.storm
	$(PY) -m bench.drill

# The outage drill: the redelivery function recovering a simulated outage against the GitHub stand-in
# (GitHub's rate limits enforced, a virtual clock), in both modes. About 15 s; exits 1 if a delivery went
# on the bus twice, was redelivered past the cap, or was not recovered.
drill: $(STAMP)
	$(PY) -m bench.drill

# What each kind of delivery costs in AWS at list prices, through the real handler configured as
# template.yaml deploys it, against the minimal design; about 10 s. Also part of make bench.
cost: $(STAMP)
	$(PY) -m bench.cost

clean:
	rm -rf $(VENV) $(SMOKE_VENV) $(IAC_VENV) .pytest_cache .ruff_cache .mypy_cache .hypothesis .aws-sam

# Called by `sam build` (template.yaml: BuildMethod makefile) with ARTIFACTS_DIR set. The artifact
# is handler/ plus requirements.txt's wheels for the Lambda platform: arm64, CPython 3.13.
LAMBDA_PLATFORM := manylinux2014_aarch64
LAMBDA_PYTHON := $(RUNTIME_PYTHON)
build-WebhookFunction:
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --no-compile --target "$(ARTIFACTS_DIR)" \
		--platform $(LAMBDA_PLATFORM) --implementation cp --python-version $(LAMBDA_PYTHON) --only-binary=:all: \
		-r requirements.txt
	rm -rf "$(ARTIFACTS_DIR)/bin"  # console scripts whose shebang names this machine's Python: nothing runs them
	tar --exclude=__pycache__ -cf - handler | tar -xf - -C "$(ARTIFACTS_DIR)"

# The redelivery function's artifact: handler/ plus requirements-redelivery.txt's wheels, constrained by
# requirements.txt (a package both functions use has the one pin), without the receiver's web stack.
build-RedeliveryFunction:
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --no-compile --target "$(ARTIFACTS_DIR)" \
		--platform $(LAMBDA_PLATFORM) --implementation cp --python-version $(LAMBDA_PYTHON) --only-binary=:all: \
		-r requirements-redelivery.txt -c requirements.txt
	rm -rf "$(ARTIFACTS_DIR)/bin"
	tar --exclude=__pycache__ -cf - handler | tar -xf - -C "$(ARTIFACTS_DIR)"
