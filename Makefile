# profile-stream: the two commands a newcomer runs are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint unit integration bench clean help
.DEFAULT_GOAL := help

help:
	@echo "make demo    install, start Kafka+Redis, run a worker on a sample conversation"
	@echo "make test    install, start Kafka (with TLS/SASL listeners)+Redis, lint, type-check, run every test"
	@echo "make up|down|status   the local Kafka (KRaft) and Redis"
	@echo "make bench   the short benchmark run"

install: $(STAMP)

$(STAMP): pyproject.toml
	@echo "[make] creating $(VENV) and installing profile-stream with its test extras"
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed, found " + sys.version' 
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/pip install -q --upgrade pip
	@$(BIN)/pip install -q -e '.[test]'
	@touch $(STAMP)

include deploy/stack.mk

demo: install
	@bash deploy/demo.sh

lint: install
	@echo "[make] ruff and mypy (strict)"
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check .
	@$(BIN)/mypy

unit: install
	@$(BIN)/pytest tests/unit -q

# The suite includes the TLS/SASL tests (tests/integration/test_secure_kafka.py): the stack they
# start has the secure listeners beside the plain one (`make up` alone stays plain).
integration test: SECURE ?= 1

integration: up
	@$(BIN)/pytest tests/integration -q

test: up lint
	@echo "[make] the whole suite: unit and integration, on the local Kafka and Redis"
	@$(BIN)/pytest -q

bench: up
	@$(BIN)/python -m bench.run --short

clean:
	@echo "[make] removing $(VENV), caches and local stack data (run 'make down' first)"
	@rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
