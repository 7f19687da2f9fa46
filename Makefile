# Runtime behavior correlation: one Makefile for the sidecar, the collector and the checks.
# `make help` lists the targets. `make test` is the one test command (CI runs it via .ci/run).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SERVICES := scripts/services/run.sh
EXAMPLE_SPECS := examples/online-boutique/specs
DATA := ../shared/data/online-boutique
EVAL_DIR := .eval/seed7
GO_PROCESSOR := processor/behaviorcorrelationprocessor
# Go modules come from the module proxy only (no direct VCS fetches on these machines).
export GOPROXY ?= https://proxy.golang.org

.DEFAULT_GOAL := help
.PHONY: help setup demo eval test unit integration lint format bench services-start services-stop clean \
	proto collector go-lint go-test

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $@

setup: $(VENV)/.installed ## create .venv and install the sidecar with dev tools (idempotent)

demo: setup collector ## the main path on loopback: sidecar + collector, Online Boutique data sent over OTLP
	@echo "== spec validate $(EXAMPLE_SPECS)"
	$(PY) -m sidecar spec validate $(EXAMPLE_SPECS)
	@echo
	$(PY) scripts/demo/collector_demo.py --data $(DATA)

eval: setup ## accuracy on labelled synthetic telemetry (correlation, per-kind drift, benign)
	@test -f $(EVAL_DIR)/drifted/labels.jsonl || $(PY) -m sidecar.synth.telemetry $(EVAL_DIR) --seed 7 --traces 2000
	$(PY) -m sidecar.evaluation $(EVAL_DIR)

lint: setup ## ruff (lint + format check) and mypy --strict
	$(VENV)/bin/ruff check sidecar tests scripts
	$(VENV)/bin/ruff format --check sidecar tests scripts
	$(VENV)/bin/mypy

format: setup ## apply ruff formatting and safe fixes
	$(VENV)/bin/ruff check --fix sidecar tests scripts
	$(VENV)/bin/ruff format sidecar tests scripts

proto: setup ## regenerate the Python and Go stubs from proto/ (a test checks they are current)
	scripts/proto/generate.sh

collector: ## build bin/otelcol-behavior with ocb v0.161.0 (installs the builder; skips when up to date)
	scripts/collector/build.sh

GO_MODULES := $(GO_PROCESSOR) tools/loadgen

go-lint: ## gofmt and go vet on the Go modules (processor, load generator)
	@for m in $(GO_MODULES); do \
	  echo "gofmt/vet $$m"; ( cd $$m && test -z "$$(gofmt -l .)" || { gofmt -l .; exit 1; }; go vet ./... ) || exit 1; \
	done

go-test: ## Go unit tests (processor with the race detector and an in-process fake sidecar; load generator)
	cd $(GO_PROCESSOR) && go test -race ./...
	cd tools/loadgen && go test ./...

services-start: ## start Redis, PostgreSQL and Neo4j on loopback (installs them if needed)
	$(SERVICES) start

services-stop: ## stop the loopback services
	$(SERVICES) stop

unit: setup ## unit tests only (no servers)
	$(PY) -m pytest tests/unit -q

integration: setup services-start ## integration tests against the real services
	eval "$$($(SERVICES) env)" && $(PY) -m pytest tests/integration -q

test: lint go-lint go-test collector services-start ## everything: lint, Go tests, the collector build, unit and integration tests
	eval "$$($(SERVICES) env)" && $(PY) -m pytest -q

bench: setup collector ## benchmarks; prints ratios (results are kept in docs/benchmarks.md)
	$(PY) tests/bench/bench_spec_load.py
	$(PY) tests/bench/bench_kernels.py
	$(PY) tests/bench/bench_engine.py
	$(PY) tests/bench/bench_sidecar_path.py
	$(PY) tests/bench/bench_collector.py

clean: ## remove build output and caches (keeps .venv and .services)
	rm -rf build dist .pytest_cache .mypy_cache .ruff_cache .hypothesis .bench .eval .demo
