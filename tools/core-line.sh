#!/usr/bin/env bash
# Runs COMMAND with the ansible-core line LINE first on PATH, from the checkout's root.
#   2.19        this host's .venv (Python 3.11; `make venv`), the oldest line requires_ansible admits
#   2.20 2.21   a venv inside the controller container (tools/controller.sh: Debian 13, Python 3.13),
#               since these lines need Python >= 3.12
# Venvs live in .cache/venvs/<requirements>-<hash of the file and the Python version> and are reused
# until either changes. Usage: tools/core-line.sh LINE COMMAND...
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
line="${1:?usage: $0 2.19|2.20|2.21 COMMAND...}"
shift
cd "$repo"

case "$line" in
  2.19) where=host requirements="" ;;
  2.20 | 2.21) where=container requirements="requirements-core-$line.txt" ;;
  *)
    echo "unknown ansible-core line '$line': give 2.19, 2.20 or 2.21 (see requirements-core-*.txt)" >&2
    exit 2
    ;;
esac

if [ "$where" = container ] && [ "${FLOODGUARD_CONTROLLER:-}" != 1 ]; then
  FLOODGUARD_CONTROLLER_HOME="core-$line" exec tools/controller.sh tools/core-line.sh "$line" "$@"
fi

if [ -z "$requirements" ]; then
  bin="$repo/.venv/bin"
else
  bin="$(tools/venv.sh "$requirements")/bin"
fi
export PATH="$bin:$PATH"
echo "ansible-core line $line: $("$bin/python" -c 'import ansible.release as r; print(r.__version__)') on $("$bin/python" -V) ($where)"
exec "$@"
