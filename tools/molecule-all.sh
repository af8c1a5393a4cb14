#!/usr/bin/env bash
# Runs every Molecule scenario on every distro, MOLECULE_JOBS at a time (default 2: the two distros
# of a scenario side by side; Ansible spends most of its time waiting on the containers).
# Each run's full output goes to .cache/molecule-logs/<scenario>-<distro>.log; a failed run's log
# tail is printed. After the first failure no new run starts; the exit code is 1 if any run failed.
# Usage: tools/molecule-all.sh "SCENARIO..." "DISTRO..."
set -uo pipefail
scenarios="${1:?usage: $0 \"SCENARIO...\" \"DISTRO...\"}"
distros="${2:?usage: $0 \"SCENARIO...\" \"DISTRO...\"}"
jobs_max="${MOLECULE_JOBS:-2}"
log_dir=".cache/molecule-logs"
mkdir -p "$log_dir"

declare -A started_at=() job_log=()
failed=()

# Waits for one run to end and records it.
reap_one() {
  local pid rc name elapsed
  wait -n -p pid
  rc=$?
  name="${job_log[$pid]}"
  elapsed=$(($(date +%s) - started_at[$pid]))
  unset "job_log[$pid]" "started_at[$pid]"
  if [ "$rc" -eq 0 ]; then
    echo "<== molecule $name: ok in ${elapsed}s" | tee -a .cache/timings.txt
  else
    echo "<== molecule $name: FAILED (exit $rc) after ${elapsed}s; last lines of $log_dir/$name.log:" | tee -a .cache/timings.txt
    tail -n 120 "$log_dir/$name.log"
    failed+=("$name")
  fi
}

for scenario in $scenarios; do
  for distro in $distros; do
    [ "${#failed[@]}" -eq 0 ] || break 2
    while [ "${#job_log[@]}" -ge "$jobs_max" ]; do reap_one; done
    [ "${#failed[@]}" -eq 0 ] || break 2
    name="$scenario-$distro"
    echo "==> molecule $name (log: $log_dir/$name.log)"
    tools/molecule-scenario.sh "$scenario" "$distro" >"$log_dir/$name.log" 2>&1 &
    started_at[$!]=$(date +%s)
    job_log[$!]="$name"
  done
done
while [ "${#job_log[@]}" -gt 0 ]; do reap_one; done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "Molecule failed: ${failed[*]}" >&2
  exit 1
fi
