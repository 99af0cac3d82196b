# The two commands a user needs: `make demo` and `make test`. Everything else supports them.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint binaries browser arm64-python bench clean package

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

## Debian's chromium for the access report's browser tests (installed once, like etcd)
browser:
	bash tests/harness/install-chromium.sh

## qemu-user and Debian's aarch64 CPython 3.13 in a sysroot, to import the arm64 zip (cached in ~/.cache/eks-iam-sync)
arm64-python:
	bash tests/harness/install-arm64-python.sh

## the whole suite: unit tests and the real apiserver + etcd + moto environment
test: $(STAMP) binaries browser arm64-python
	$(PY) -m pytest

## ruff (lint + format, McCabe <= 10), mypy (strict), the import contracts of .importlinter (the
## architecture) and no module of chalicelib over 400 lines
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(PY) -m tools.module_size

## dist/$(STAGE)/deployment.zip and template.yaml for ARCH=x86_64|arm64 (default x86_64) and RUNTIME=python3.12|python3.13
## (default: tools/lambda_target.py), from any host: wheels resolved for the target; docs/deployment.md.
## TARGET_PYTHON='qemu-aarch64 -L SYSROOT SYSROOT/usr/bin/python3.13' imports an arm64 zip on x86_64 (make arm64-python)
STAGE ?= dev
ARCH ?= x86_64
package: $(STAMP)
	$(PY) -m tools.package build --stage $(STAGE) --arch $(ARCH) $(if $(RUNTIME),--runtime $(RUNTIME)) $(if $(CONFIG),--config $(CONFIG)) $(if $(TARGET_PYTHON),--target-python '$(TARGET_PYTHON)')

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis

## figures, not assertions: IAM calls per snapshot, API calls per event, import and event costs, the cold start
bench: $(STAMP) binaries
	$(PY) -m benchmarks.iam_snapshot
	$(PY) -m benchmarks.event_costs
	$(PY) -m benchmarks.yaml_reader
	$(PY) -m benchmarks.event_cpu
	$(PY) -m benchmarks.cold_start
	$(PY) -m benchmarks.scale
	$(PY) -m benchmarks.queue_fanout
