#!/usr/bin/env bash
# Makes this checkout resolvable as floodguard.shield for Molecule, ansible-lint and ad-hoc runs:
# ANSIBLE_COLLECTIONS_PATH (set by the Makefile) points at .cache/collections, where a link names
# the checkout. Edits show at once; `make sanity` separately proves the built artifact installs.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
target="$repo/.cache/collections/ansible_collections/floodguard"
mkdir -p "$target"
ln -sfn "$repo" "$target/shield"
