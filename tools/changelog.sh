#!/usr/bin/env bash
# The changelog, built with antsibull-changelog from changelogs/fragments/.
#   tools/changelog.sh check    (make test) lint the fragments and changelogs/changelog.yaml, and check
#                               that CHANGELOG.rst is what changelog.yaml gives; list the fragments
#                               that no release holds yet (they go into the next `release`).
#   tools/changelog.sh release  (make changelog) fold every new fragment into the release of
#                               galaxy.yml's version (again and again until it ships) and rewrite
#                               CHANGELOG.rst. Fragments are kept (changelogs/config.yaml).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
venv="$("$repo/tools/venv.sh" requirements-galaxy.txt)"
export PATH="$venv/bin:$PATH"
cd "$repo"
case "${1:-}" in
  check)
    antsibull-changelog lint
    echo "antsibull-changelog lint: $(find changelogs/fragments -name '*.yml' -o -name '*.yaml' | wc -l) fragments and changelog.yaml are valid"
    scratch="$(mktemp -d /tmp/floodguard-changelog.XXXXXX)"
    trap 'rm -rf "$scratch"' EXIT
    antsibull-changelog generate --output "$scratch/CHANGELOG.rst"
    if ! diff -u CHANGELOG.rst "$scratch/CHANGELOG.rst"; then
      echo "CHANGELOG.rst is not what changelogs/changelog.yaml gives: run 'make changelog'" >&2
      exit 1
    fi
    echo "CHANGELOG.rst matches changelogs/changelog.yaml"
    python3 - <<'PY'
import pathlib, yaml
released = set()
for release in (yaml.safe_load(open("changelogs/changelog.yaml")).get("releases") or {}).values():
    released.update(release.get("fragments") or [])
pending = sorted(p.name for p in pathlib.Path("changelogs/fragments").iterdir() if p.suffix in (".yml", ".yaml") and p.name not in released)
print("fragments not in a release yet (next 'make changelog'): " + (", ".join(pending) or "none"))
PY
    ;;
  release)
    version="$(python3 -c 'import yaml; print(yaml.safe_load(open("galaxy.yml"))["version"])')"
    antsibull-changelog release --version "$version" --update-existing --reload-plugins
    echo "CHANGELOG.rst now holds release $version"
    ;;
  *)
    echo "usage: $0 check|release" >&2
    exit 2
    ;;
esac
