# Every CI/CD step is one of these targets; workflows call them, so local runs and GitHub run the same code.
.DEFAULT_GOAL := help
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

VENV ?= .venv
PY := $(VENV)/bin/python
REGISTRY ?= 127.0.0.1:5000
PART ?= patch
BASELINE ?=
IMAGE ?=
TO ?=
ARTIFACTS ?= artifacts

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(PY): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m pip check
	touch $(PY)

.PHONY: setup
setup: $(PY) ## Create .venv with the pinned dependencies

.PHONY: lint
lint: $(PY) ## ruff + mypy + hadolint on both Dockerfiles
	$(VENV)/bin/ruff check ml serving scripts tests
	$(VENV)/bin/ruff format --check ml serving scripts tests
	$(VENV)/bin/mypy
	$(VENV)/bin/hadolint Dockerfile.train Dockerfile.serve

.PHONY: test
test: $(PY) ## Run every test (unit, integration, Docker, registry)
	$(VENV)/bin/pytest

.PHONY: test-unit
test-unit: $(PY) ## Unit tests only: no Docker, no training
	$(VENV)/bin/pytest -m "not slow and not docker and not registry"

.PHONY: train
train: $(PY) ## Train, evaluate and export the model into artifacts/
	$(PY) -m ml train --artifacts $(ARTIFACTS)

.PHONY: evaluate
evaluate: $(PY) ## Re-evaluate the exported model and print its metrics
	$(PY) -m ml evaluate --artifacts $(ARTIFACTS)

.PHONY: gate
gate: $(PY) ## Gate the candidate card against thresholds and BASELINE (path or URL)
	$(PY) -m ml gate --artifacts $(ARTIFACTS) $(if $(BASELINE),--baseline $(BASELINE))

.PHONY: bench
bench: $(PY) ## Benchmarks: prints measured figures side by side
	$(PY) -m tests.bench

.PHONY: clean
clean: ## Remove artifacts and caches (keeps .venv)
	rm -rf $(ARTIFACTS) .pytest_cache .mypy_cache .ruff_cache
