# One target per habit. `make test` is what CI runs; `make demo` is the main job.
SHELL := /bin/bash
PYENV_ROOT ?= $(shell pyenv root 2>/dev/null || echo $$HOME/.pyenv)
# Lambda runtime python3.13: sam build needs a matching python3.13 on PATH.
PYTHON_BOOTSTRAP ?= $(firstword $(wildcard $(PYENV_ROOT)/versions/3.13*/bin/python3.13) $(shell command -v python3.13))
VENV := .venv
PY := $(VENV)/bin/python
export PATH := $(abspath $(VENV))/bin:$(dir $(PYTHON_BOOTSTRAP)):$(PATH)

.PHONY: setup test unit integration e2e lint validate build deploy demo bench clean

$(VENV)/.installed: requirements-dev.txt layers/shared/requirements.txt
	@test -n "$(PYTHON_BOOTSTRAP)" || { echo "python3.13 not found: install it (pyenv install 3.13) or set PYTHON_BOOTSTRAP"; exit 2; }
	test -x $(PY) || $(PYTHON_BOOTSTRAP) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

setup: $(VENV)/.installed

test: setup
	$(PY) -m pytest

unit: setup
	$(PY) -m pytest tests/unit

integration: setup
	$(PY) -m pytest tests/integration

e2e: setup
	$(PY) -m pytest tests/e2e
