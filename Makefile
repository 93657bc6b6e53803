# The two commands a newcomer needs: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
TOOLS := .venv-tools
CHECKOV_VENV := .venv-checkov
CHECKOV := $(CHECKOV_VENV)/bin/checkov
BIN := $(VENV)/bin
SAM := $(TOOLS)/bin/sam
# sam build for the python3.12 runtime needs a python3.12 on PATH; pyenv keeps one here.
PY312_DIR := $(shell for p in $$(command -v python3.12 2>/dev/null) $$HOME/.pyenv/versions/3.12*/bin/python3.12; do \
	[ -x "$$p" ] && "$$p" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null \
	&& { dirname "$$p"; break; }; done)

# Fake credentials: nothing here ever needs (or may reach) a real AWS account.
export AWS_ACCESS_KEY_ID ?= testing
export AWS_SECRET_ACCESS_KEY ?= testing
export AWS_DEFAULT_REGION ?= us-east-1
export SAM_CLI_TELEMETRY := 0

.PHONY: help venv tools demo lint build pytest test bench events docs clean

help:
	@echo "make demo   - set up and run the whole flow on the local cloud (moto)"
	@echo "make test   - set up, lint (ruff, cfn-lint, sam validate --lint, bandit, checkov), sam build, pytest"
	@echo "make bench  - benchmarks (ratios against a baseline measured in the same run)"

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

venv: $(BIN)/.installed

# aws-sam-cli pins a pydantic that aind-data-schema refuses: it gets its own virtual environment.
$(TOOLS)/.installed:
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install -q --upgrade pip
	$(TOOLS)/bin/python -m pip install -q "aws-sam-cli==1.170.0"
	touch $@

# checkov pins a boto3/botocore older than aws-sam-cli needs: it gets a virtual environment too.
$(CHECKOV_VENV)/.installed:
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install -q --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install -q "checkov==3.3.30"
	touch $@

tools: $(TOOLS)/.installed $(CHECKOV_VENV)/.installed

demo: venv
	$(BIN)/upload-processor local demo

lint: venv tools
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/cfn-lint template.yaml
	$(SAM) validate --lint --region $(AWS_DEFAULT_REGION)
	# security scan of the code: no high-severity finding (exceptions are justified in place)
	$(BIN)/bandit -q -r layers functions --severity-level high
	# security scan of the template, offline (no Bridgecrew download, no version check): no
	# failed check; each skipped one is justified in place (Metadata: checkov: skip)
	BC_SKIP_MAPPING=TRUE CHECKOV_RUN_SCA_PACKAGE_SCAN_V2=false $(CHECKOV) -f template.yaml \
		--framework cloudformation --skip-download --quiet --compact

build: tools
	@test -n "$(PY312_DIR)" || { echo "sam build needs python3.12 on PATH (e.g. pyenv install 3.12)"; exit 1; }
	PATH="$(PY312_DIR):$$PATH" $(SAM) build

pytest: venv
	$(BIN)/pytest

test: lint build pytest

bench: venv
	$(BIN)/python -m benchmarks

events: venv
	$(BIN)/upload-processor local events --write events

docs: venv
	$(BIN)/upload-processor schema upload-job --markdown > docs/upload_job.md

clean:
	rm -rf .aws-sam .pytest_cache .ruff_cache
