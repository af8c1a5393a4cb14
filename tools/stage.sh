#!/usr/bin/env bash
# Runs one stage of `make test`, announcing it and its wall time; the exit code is the stage's.
set -uo pipefail
name="$1"
shift
echo "==> $name"
start=$(date +%s)
"$@"
rc=$?
elapsed=$(($(date +%s) - start))
mkdir -p .cache
if [ "$rc" -eq 0 ]; then
  echo "<== $name: ok in ${elapsed}s" | tee -a .cache/timings.txt
else
  echo "<== $name: FAILED (exit $rc) after ${elapsed}s" | tee -a .cache/timings.txt
fi
exit "$rc"
