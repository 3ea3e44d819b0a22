#!/usr/bin/env bash
# `make demo`: start the local stack if needed, run deploy/demo.py (as `python -m deploy.demo`,
# so that it imports tests.support), and stop again what the demo started (KEEP=1 leaves the
# stack running).
set -euo pipefail
cd "$(dirname "$0")/.."
was_up=0
bash deploy/stack.sh status >/dev/null 2>&1 && was_up=1
bash deploy/stack.sh up
rc=0
.venv/bin/python -m deploy.demo || rc=$?
if [[ $was_up == 0 && ${KEEP:-0} != 1 ]]; then
  echo "[demo] stopping the stack the demo started (KEEP=1 keeps it)"
  bash deploy/stack.sh down
fi
exit $rc
