#!/usr/bin/env bash
# Runs independent stages of `make test` side by side, JOBS at a time, each through tools/stage.sh
# (announced, timed into .cache/timings.txt). A stage's output goes to .cache/stage-logs/<n>.log and is
# printed when it ends, whole, so that parallel stages do not interleave. Every stage runs even if
# another failed; the exit code is 1 if any failed.
# Usage: tools/stage-group.sh JOBS NAME COMMAND [NAME COMMAND]...   (COMMAND is one bash string)
set -uo pipefail
jobs_max="${1:?usage: $0 JOBS NAME COMMAND [NAME COMMAND]...}"
shift
log_dir=.cache/stage-logs
mkdir -p "$log_dir"
declare -A job_log=()
failed=()
count=0

reap_one() {
  local pid rc
  wait -n -p pid
  rc=$?
  cat "${job_log[$pid]}"
  [ "$rc" -eq 0 ] || failed+=("${job_log[$pid]}")
  unset "job_log[$pid]"
}

while [ "$#" -ge 2 ]; do
  while [ "${#job_log[@]}" -ge "$jobs_max" ]; do reap_one; done
  count=$((count + 1))
  log="$log_dir/$count.log"
  echo "--> started: $1 (log: $log)"
  tools/stage.sh "$1" bash -c "$2" >"$log" 2>&1 &
  job_log[$!]="$log"
  shift 2
done
while [ "${#job_log[@]}" -gt 0 ]; do reap_one; done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "failed stages (logs): ${failed[*]}" >&2
  exit 1
fi
