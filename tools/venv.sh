#!/usr/bin/env bash
# Prints the path of a virtualenv that holds REQUIREMENTS (a requirements-*.txt), building it first
# if needed: .cache/venvs/<requirements>-<hash of the file and of the Python version>, so a second run
# reuses it and a changed pin or Python builds a new one. Progress goes to stderr.
# Usage: tools/venv.sh REQUIREMENTS [PYTHON]
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
requirements="${1:?usage: $0 REQUIREMENTS [PYTHON]}"
python="${2:-python3}"
key="$( (cat "$repo/$requirements"; "$python" -VV) | sha256sum | cut -c1-12)"
venv="$repo/.cache/venvs/$(basename "$requirements" .txt)-$key"
# Parallel stages may ask for the same venv: one builds it, the others wait for it.
mkdir -p "$repo/.cache/venvs"
exec 9>"$venv.lock"
flock 9
if [ ! -e "$venv/.installed" ]; then
  echo "building $venv from $requirements ($("$python" -V))" >&2
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --upgrade pip >&2
  "$venv/bin/pip" install --quiet -r "$repo/$requirements" >&2
  touch "$venv/.installed"
fi
echo "$venv"
