#!/usr/bin/env bash
# `make bench`: measures the defence on local test hosts (tools/bench/run.py) and writes
# bench/results/<UTC timestamp>/{results.json,results.md,timeline.png}; a complete full run also
# updates docs/benchmarks.md. Arguments go to tools/bench/run.py (--help), e.g.
#   tools/bench.sh --only latency,timeline      BENCH_QUICK=1 tools/bench.sh
# The testbed (containers fg-bench-*, network fg-bench) is removed on exit, also on failure or Ctrl-C.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
export PATH="$repo/.venv/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="${ANSIBLE_COLLECTIONS_PATH:-$repo/.cache/collections}"
cd "$repo"

keep=false
for arg in "$@"; do case "$arg" in --keep | --reuse) keep=true ;; esac; done
cleanup() {
  if [ "$keep" = false ]; then
    python3 tools/testbed.py down --name bench >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

python3 tools/bench/run.py "$@"
