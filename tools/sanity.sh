#!/usr/bin/env bash
# ansible-test sanity on one ansible-core line (default 2.19, this host's .venv; see tools/core-line.sh).
# On the host: builds the collection artifact and copies the source files that git knows about into a
# scratch ansible_collections/floodguard/shield tree (ansible-test needs that layout). Then, with the
# line's ansible-core (on the host or in the controller container): installs the artifact, checks that
# ansible-doc reads every module and role from the installed copy, and runs `ansible-test sanity`.
# Usage: tools/sanity.sh [LINE]
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
line="${1:-2.19}"

if [ "${2:-}" != --run ]; then
  # ansible-test's shellcheck test is skipped, not failed, without the tool: make sure it runs.
  if ! command -v shellcheck >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck >/dev/null
  fi
  # Outside the checkout: ansible-test would otherwise take the files from the checkout's git (none).
  scratch="$(mktemp -d "/tmp/floodguard-sanity-$line.XXXXXX")"
  trap 'rm -rf "$scratch"' EXIT
  echo "building the collection artifact"
  "$repo/.venv/bin/ansible-galaxy" collection build --force --output-path "$scratch/dist" "$repo" >/dev/null
  tree="$scratch/ansible_collections/floodguard/shield"
  mkdir -p "$tree"
  # (--cached also lists files deleted from the work tree but not yet from the index: skip those.)
  (cd "$repo" && git ls-files --cached --others --exclude-standard -z | while IFS= read -r -d '' file; do
    if [ -e "$file" ]; then cp --parents "$file" "$tree/"; fi
  done)
  FLOODGUARD_CONTROLLER_MOUNT="$scratch" "$repo/tools/core-line.sh" "$line" tools/sanity.sh "$line" --run "$scratch"
  exit
fi

scratch="$3"
bin="$(dirname "$(command -v ansible-test)")"
artifact="$(ls "$scratch"/dist/floodguard-shield-*.tar.gz)"
ANSIBLE_COLLECTIONS_PATH="$scratch/installed" \
  "$bin/ansible-galaxy" collection install --force -p "$scratch/installed" "$artifact" >/dev/null
echo "installed $(basename "$artifact"); reading its documentation with ansible-doc"
for module in "$repo"/plugins/modules/*.py; do
  [ -e "$module" ] || continue
  name="floodguard.shield.$(basename "$module" .py)"
  ANSIBLE_COLLECTIONS_PATH="$scratch/installed" "$bin/ansible-doc" "$name" >/dev/null
  echo "  ansible-doc $name: ok"
done
for role in "$repo"/roles/*/; do
  [ -d "$role" ] || continue
  name="floodguard.shield.$(basename "$role")"
  ANSIBLE_COLLECTIONS_PATH="$scratch/installed" "$bin/ansible-doc" -t role "$name" >/dev/null
  echo "  ansible-doc -t role $name: ok"
done

# ansible-test fetches get-pip.py from a host these machines cannot reach: use the stand-in.
pip_version="$("$bin/python" - <<'PY'
from ansible_test._internal.python_requirements import get_venv_packages
from types import SimpleNamespace
print(get_venv_packages(SimpleNamespace(version="any"))["pip"])
PY
)"
mkdir -p "$HOME/.ansible/test/cache"
install -m 0644 "$repo/tools/get_pip_standin.py" "$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"

cd "$scratch/ansible_collections/floodguard/shield"
python_version="$("$bin/python" -c 'import sys;print("%d.%d" % sys.version_info[:2])')"
"$bin/ansible-test" sanity --local --python "$python_version" --requirements --color no
echo "ansible-test sanity on ansible-core $("$bin/python" -c 'import ansible.release as r; print(r.__version__)') (Python $python_version): passed"
