# Thin wrapper: CI runs exactly these targets (.ci/run calls `make test`).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TORCH := torch==2.13.0
RUNTIME := $(VENV)/.runtime
DEV := $(VENV)/.dev
# Quiet installs: errors only, and no build-backend chatter from editable installs.
PIP := PYTHONWARNINGS=ignore $(VENV)/bin/pip --disable-pip-version-check -qq
PYTEST := HF_HUB_OFFLINE=1 $(PY) -m pytest

.PHONY: install install-dev run test test-unit test-integration test-e2e test-faults fuzz system-packages lint format bench eval asyncapi clean

# A CPU build of torch first (on these machines a local wheel): plain `torch`
# would pull several GB of CUDA packages.
$(RUNTIME): requirements.txt $(wildcard libs/*/pyproject.toml services/*/pyproject.toml)
	@test -x $(PY) || { echo "==> creating $(VENV)"; $(PYTHON) -m venv $(VENV); }
	@echo "==> installing torch (CPU build)"
	@$(PIP) install $(TORCH) $(if $(wildcard /opt/wheels),--find-links /opt/wheels)
	@echo "==> installing SupportDesk and what it runs on"
	@$(PIP) install -r requirements.txt
	@touch $(RUNTIME)

# Test and lint tools, and the llama.cpp server the LLM tests run.
$(DEV): $(RUNTIME) requirements-dev.txt
	@echo "==> installing test and lint tools"
	@$(PIP) install -r requirements-dev.txt
	@touch $(DEV)

install: $(RUNTIME)
install-dev: $(DEV)

run: $(RUNTIME)
	@HF_HUB_OFFLINE=1 $(PY) tools/devstack.py

# redis-server and Debian's Chromium, if missing (the tests start their own Redis).
system-packages:
	@tools/install-system-packages.sh

test: $(DEV) system-packages
	$(PYTEST)

test-unit: $(DEV) system-packages
	$(PYTEST) tests/unit

test-integration: $(DEV) system-packages
	$(PYTEST) tests/integration

test-e2e: $(DEV) system-packages
	$(PYTEST) tests/e2e

# The full fuzzing pass (make test runs it with FUZZ_EXAMPLES=25): examples per
# REST operation, and four times as many per kind of WebSocket frame.
FUZZ_EXAMPLES ?= 500
fuzz: $(DEV) system-packages
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PYTEST) tests/e2e/test_fuzzing.py

# The fault suite in full (make test runs it short): 16 users per fault,
# longer around each; writes docs/reliability.md.
test-faults: $(DEV) system-packages
	FAULTS=full FAULTS_REPORT=docs/reliability.md $(PYTEST) -s tests/e2e/test_faults.py

bench: $(RUNTIME)
	HF_HUB_OFFLINE=1 $(PY) tools/bench.py

# The knowledge eval (eval/): retrieval and answer quality per retrieval
# configuration, written to docs/quality.md.
eval: $(DEV)
	HF_HUB_OFFLINE=1 $(PY) tools/knowledge_eval.py --write docs/quality.md

lint: $(DEV)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy libs services tools

format: $(DEV)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

asyncapi: $(DEV)
	$(PY) -m supportdesk_contracts.asyncapi > docs/asyncapi.json

clean:
	rm -rf $(VENV) .run .pytest_cache .mypy_cache .ruff_cache
