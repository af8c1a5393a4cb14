#!/usr/bin/env bash
# Runs one Molecule scenario on one distro as every role and module here is tested:
# check mode on a fresh host, converge, idempotence, check mode again (must change nothing),
# verify with testinfra, and always clean up. Usage: tools/molecule-scenario.sh SCENARIO DISTRO
set -euo pipefail
scenario="${1:?usage: $0 SCENARIO bookworm|trixie}"
export MOLECULE_DISTRO="${2:?usage: $0 SCENARIO bookworm|trixie}"
log_dir=".cache/molecule-logs"
# Molecule keeps one state directory per scenario: give each distro its own, so that both can run at once.
export MOLECULE_EPHEMERAL_DIRECTORY="$PWD/.cache/molecule-state/$scenario-$MOLECULE_DISTRO"
export NO_COLOR=1 PY_COLORS=0 ANSIBLE_FORCE_COLOR=0
mkdir -p "$log_dir"

run() {
  local start=$SECONDS
  echo "--- molecule $1 ($scenario on $MOLECULE_DISTRO)"
  molecule "$1" -s "$scenario"
  echo "--- molecule $1 took $((SECONDS - start))s ($scenario on $MOLECULE_DISTRO)"
}

# Removes this scenario's containers and networks on this distro and Molecule's state of them.
# Straight through Docker: `molecule destroy` takes about 20 s per run for the same result, and the
# names follow one pattern in every scenario (fg-<scenario>-[<role>-]<distro>[-<role>]).
clean_up() {
  local pattern="^fg-${scenario}-([a-z0-9_]+-)?${MOLECULE_DISTRO}(-[a-z0-9_]+)?$"
  local containers=() networks=()
  mapfile -t containers < <(docker ps -a --format '{{.Names}}' | grep -E "$pattern" || true)
  mapfile -t networks < <(docker network ls --format '{{.Name}}' | grep -E "$pattern" || true)
  [ "${#containers[@]}" -eq 0 ] || docker rm -f "${containers[@]}" >/dev/null
  [ "${#networks[@]}" -eq 0 ] || docker network rm "${networks[@]}" >/dev/null
  rm -rf "$MOLECULE_EPHEMERAL_DIRECTORY"
}

# Fails when a check-mode run after converge reports anything as changed.
check_idempotent() {
  local log="$log_dir/$scenario-$MOLECULE_DISTRO-check.log"
  echo "--- molecule check, must change nothing ($scenario on $MOLECULE_DISTRO)"
  molecule check -s "$scenario" 2>&1 | tee "$log"
  local changed
  changed="$(grep -E '\S+\s+: ok=[0-9]+' "$log" | grep -v '^localhost' | grep -vE 'changed=0\b' || true)"
  if [ -n "$changed" ]; then
    echo "check mode after converge is not idempotent:" >&2
    echo "$changed" >&2
    return 1
  fi
}

trap clean_up EXIT
clean_up
run create
run prepare
run check
run converge
run idempotence
check_idempotent
run verify
