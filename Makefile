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

.DEFAULT_GOAL := help
.PHONY: help setup demo eval test unit integration lint format bench services-start services-stop clean

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $@

setup: $(VENV)/.installed ## create .venv and install the sidecar with dev tools (idempotent)

demo: setup ## validate the example spec, show its chain, replay the recorded Online Boutique data
	@echo "== spec validate $(EXAMPLE_SPECS)"
	$(PY) -m sidecar spec validate $(EXAMPLE_SPECS)
	@echo; echo "== spec show checkout:flow:PlaceOrder (node and its chain)"
	$(PY) -m sidecar spec show $(EXAMPLE_SPECS) checkout:flow:PlaceOrder
	@echo; echo "== replay $(DATA)/fault-currency-cpu (traces, logs, metrics; Nezha data, MIT)"
	$(PY) -m sidecar replay --specs $(EXAMPLE_SPECS) \
	  --input $(DATA)/fault-currency-cpu/traces.json --input $(DATA)/fault-currency-cpu/logs.json \
	  --input $(DATA)/fault-currency-cpu/metrics.json \
	  --output .demo/annotated.jsonl --report .demo/report.json

eval: setup ## accuracy on labelled synthetic telemetry (correlation, per-kind drift, benign)
	@test -f $(EVAL_DIR)/drifted/labels.jsonl || $(PY) -m sidecar.synth.telemetry $(EVAL_DIR) --seed 7 --traces 2000
	$(PY) -m sidecar.evaluation $(EVAL_DIR)

lint: setup ## ruff (lint + format check) and mypy --strict
	$(VENV)/bin/ruff check sidecar tests
	$(VENV)/bin/ruff format --check sidecar tests
	$(VENV)/bin/mypy

format: setup ## apply ruff formatting and safe fixes
	$(VENV)/bin/ruff check --fix sidecar tests
	$(VENV)/bin/ruff format sidecar tests

services-start: ## start Redis, PostgreSQL and Neo4j on loopback (installs them if needed)
	$(SERVICES) start

services-stop: ## stop the loopback services
	$(SERVICES) stop

unit: setup ## unit tests only (no servers)
	$(PY) -m pytest tests/unit -q

integration: setup services-start ## integration tests against the real services
	eval "$$($(SERVICES) env)" && $(PY) -m pytest tests/integration -q

test: lint services-start ## everything: lint, unit and integration tests against real services
	eval "$$($(SERVICES) env)" && $(PY) -m pytest -q

bench: setup ## benchmarks; prints ratios (results are kept in docs/benchmarks.md)
	$(PY) tests/bench/bench_spec_load.py
	$(PY) tests/bench/bench_kernels.py
	$(PY) tests/bench/bench_engine.py

clean: ## remove build output and caches (keeps .venv and .services)
	rm -rf build dist .pytest_cache .mypy_cache .ruff_cache .hypothesis .bench .eval .demo
