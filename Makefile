# Thin wrapper: CI runs exactly these targets (.ci/run calls `make test`).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
TORCH := torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: install run test test-unit test-integration test-e2e lint format bench asyncapi clean

# A CPU build of torch first (on these machines a local wheel): plain `torch`
# would pull several GB of CUDA packages.
$(STAMP): requirements-dev.txt $(wildcard libs/*/pyproject.toml services/*/pyproject.toml)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet $(TORCH) $(if $(wildcard /opt/wheels),--find-links /opt/wheels)
	$(PIP) install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

run: install
	HF_HUB_OFFLINE=1 $(PY) tools/devstack.py

test: install
	tools/install-system-packages.sh
	HF_HUB_OFFLINE=1 $(PY) -m pytest

test-unit: install
	HF_HUB_OFFLINE=1 $(PY) -m pytest tests/unit

bench: install
	HF_HUB_OFFLINE=1 $(PY) tools/bench.py

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy libs services tools

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

asyncapi: install
	$(PY) -m supportdesk_contracts.asyncapi > docs/asyncapi.json

clean:
	rm -rf $(VENV) .run .pytest_cache .mypy_cache .ruff_cache
