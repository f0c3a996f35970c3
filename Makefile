# Two commands (see README): `make serve` runs the receiver locally, `make test` runs every check.
# Both set up .venv from the pinned requirements first; nothing needs installing by hand.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
# The development secret: the events/ samples are signed with it. Never use it for a real hook.
DEV_SECRET := dev-webhook-secret-do-not-use-in-production

.PHONY: serve test lint events clean

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

serve: $(STAMP)
	WEBHOOK_SECRET="$${WEBHOOK_SECRET:-$(DEV_SECRET)}" $(PY) -m uvicorn handler.app:app --host $(HOST) --port $(PORT)

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

test: lint
	$(PY) -m pytest

events: $(STAMP)
	$(PY) -m devkit.events

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis .aws-sam
