#!/usr/bin/env bash
# Makes this checkout resolvable as floodguard.shield for Molecule, ansible-lint and ad-hoc runs:
# ANSIBLE_COLLECTIONS_PATH (set by the Makefile) points at .cache/collections, where a link names
# the checkout. Edits show at once; `make sanity` separately proves the built artifact installs.
# Parallel stages of `make test` call this at once: the link is left alone when it is right, and
# otherwise replaced by a rename, so that no reader ever finds it missing.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
target="$repo/.cache/collections/ansible_collections/floodguard"
mkdir -p "$target"
[ "$(readlink "$target/shield" 2>/dev/null)" = "$repo" ] && exit 0
ln -sfn "$repo" "$target/.shield.$$"
mv -Tf "$target/.shield.$$" "$target/shield"
