#!/usr/bin/env bash
# Runs every Molecule scenario on every distro, MOLECULE_JOBS at a time (default 2: the two distros
# of a scenario side by side; Ansible spends most of its time waiting on the containers).
# Each run's full output goes to .cache/molecule-logs/<scenario>-<distro>.log; a failed run's log
# tail is printed. After the first failure no new run starts; the exit code is 1 if any run failed.
# The scenarios in NEWEST_CORE_SCENARIOS run with ansible-core NEWEST_CORE as the controller, in the
# controller container (tools/core-line.sh); the others with this host's .venv (2.19). A scenario
# runs on one controller only: its containers have fixed names.
# Usage: tools/molecule-all.sh "SCENARIO..." "DISTRO..."
set -uo pipefail
scenarios="${1:?usage: $0 \"SCENARIO...\" \"DISTRO...\"}"
distros="${2:?usage: $0 \"SCENARIO...\" \"DISTRO...\"}"
jobs_max="${MOLECULE_JOBS:-2}"
newest_core="${NEWEST_CORE:-2.21}"
newest_core_scenarios=" ${NEWEST_CORE_SCENARIOS:-} "
# Molecule's docker driver needs community.docker: the container's venv takes it from .venv's
# `ansible` package (the checkout is bind-mounted at the same path).
site_packages=("$PWD"/.venv/lib/python3*/site-packages)
host_collections="${site_packages[0]}"
log_dir=".cache/molecule-logs"
mkdir -p "$log_dir"

declare -A started_at=() job_log=() job_file=()
failed=()

# Waits for one run to end and records it.
reap_one() {
  local pid rc name elapsed
  wait -n -p pid
  rc=$?
  name="${job_log[$pid]}"
  log="${job_file[$pid]}"
  elapsed=$(($(date +%s) - started_at[$pid]))
  unset "job_log[$pid]" "job_file[$pid]" "started_at[$pid]"
  if [ "$rc" -eq 0 ]; then
    echo "<== molecule $name: ok in ${elapsed}s" | tee -a .cache/timings.txt
  else
    echo "<== molecule $name: FAILED (exit $rc) after ${elapsed}s; last lines of $log:" | tee -a .cache/timings.txt
    tail -n 120 "$log"
    failed+=("$name")
  fi
}

for scenario in $scenarios; do
  for distro in $distros; do
    [ "${#failed[@]}" -eq 0 ] || break 2
    while [ "${#job_log[@]}" -ge "$jobs_max" ]; do reap_one; done
    [ "${#failed[@]}" -eq 0 ] || break 2
    name="$scenario-$distro"
    if [[ "$newest_core_scenarios" == *" $scenario "* ]]; then
      echo "==> molecule $name, controller ansible-core $newest_core (log: $log_dir/$name.log)"
      ANSIBLE_COLLECTIONS_PATH="${ANSIBLE_COLLECTIONS_PATH:-}:$host_collections" \
        tools/core-line.sh "$newest_core" tools/molecule-scenario.sh "$scenario" "$distro" >"$log_dir/$name.log" 2>&1 &
      job_log[$!]="$name (core $newest_core)"
    else
      echo "==> molecule $name, controller ansible-core 2.19 (log: $log_dir/$name.log)"
      tools/molecule-scenario.sh "$scenario" "$distro" >"$log_dir/$name.log" 2>&1 &
      job_log[$!]="$name (core 2.19)"
    fi
    job_file[$!]="$log_dir/$name.log"
    started_at[$!]=$(date +%s)
  done
done
while [ "${#job_log[@]}" -gt 0 ]; do reap_one; done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "Molecule failed: ${failed[*]}" >&2
  exit 1
fi
