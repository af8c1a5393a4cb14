#!/usr/bin/env bash
# Galaxy's own import checks on the built artifact: galaxy-importer (configured by
# tools/galaxy-importer.cfg, offline) must import it with no warning and no error.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
venv="$("$repo/tools/venv.sh" requirements-galaxy.txt)"
scratch="$(mktemp -d /tmp/floodguard-galaxy.XXXXXX)"
trap 'rm -rf "$scratch"' EXIT
"$repo/.venv/bin/ansible-galaxy" collection build --force --output-path "$scratch" "$repo" >/dev/null
artifact="$(basename "$scratch"/floodguard-shield-*.tar.gz)"
cd "$scratch"
PATH="$venv/bin:$PATH" GALAXY_IMPORTER_CONFIG="$repo/tools/galaxy-importer.cfg" \
  "$venv/bin/python" -m galaxy_importer.main "$artifact" 2>&1 | grep -v '^\s*$' | tee importer.log
if grep -qE '^(WARNING|ERROR)' importer.log || ! grep -q 'Importer processing completed successfully' importer.log; then
  echo "galaxy-importer: $artifact has the warnings or errors above" >&2
  exit 1
fi
echo "galaxy-importer: $artifact imports with no warning"
