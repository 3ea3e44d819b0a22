#!/usr/bin/env bash
# `make demo` and `make real-model`: start the local stack if needed, run a module of deploy/ as
# `python -m deploy.<module>` (so that it imports tests.support), and stop again what it started
# (KEEP=1 leaves the stack running). Its exit status is the module's.
#   deploy/with_stack.sh NAME MODULE    e.g. deploy/with_stack.sh demo deploy.demo
set -euo pipefail
cd "$(dirname "$0")/.."
name=$1 module=$2
was_up=0
bash deploy/stack.sh status >/dev/null 2>&1 && was_up=1
bash deploy/stack.sh up
rc=0
.venv/bin/python -m "$module" || rc=$?
if [[ $was_up == 0 && ${KEEP:-0} != 1 ]]; then
  echo "[$name] stopping the stack it started (KEEP=1 keeps it)"
  bash deploy/stack.sh down
fi
exit $rc
