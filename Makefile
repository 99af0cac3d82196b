# The two commands a user needs: `make demo` and `make test`. Everything else supports them.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint binaries bench clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt -e .
	touch $@

## the seed scenario end to end on a local stack, printed step by step
demo: $(STAMP) binaries
	$(PY) -m demo.seed_story

## etcd + kube-apiserver for the tests (built once from Debian's sources, cached in ~/.cache/eks-iam-sync)
binaries:
	bash tests/harness/build-kube-apiserver.sh

## the whole suite: unit tests and the real apiserver + etcd + moto environment
test: $(STAMP) binaries
	$(PY) -m pytest

## ruff (lint + format), mypy (strict) and the import contracts of .importlinter (the architecture)
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis

## figures, not assertions: IAM calls per snapshot, API calls per event, import and event costs
bench: $(STAMP) binaries
	$(PY) -m benchmarks.iam_snapshot
	$(PY) -m benchmarks.event_costs
