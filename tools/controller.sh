#!/usr/bin/env bash
# Runs COMMAND in a controller container: Debian 13 (floodguard-test:trixie plus venv and pip, Python 3.13)
# for the ansible-core lines that need Python >= 3.12 while this host has 3.11.
# The checkout is bind-mounted at its own absolute path, so that venvs cached in .cache/ and the
# sources of Molecule's bind mounts resolve the same inside and on the host; the Docker socket and
# the host's docker CLI (Go; Debian 13's libc is newer than 12's) let Molecule start its test
# containers next to this one.
# Usage: tools/controller.sh COMMAND...   (from the checkout's root)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
base_image=floodguard-test:trixie
image=floodguard-controller:trixie
ca_bundle=/etc/ssl/certs/ca-certificates.crt
socket="${DOCKER_HOST:-unix:///var/run/docker.sock}"
socket="${socket#unix://}"

if ! docker image inspect "$base_image" >/dev/null 2>&1; then
  echo "the test image $base_image is missing: build it with 'make images'" >&2
  exit 1
fi
# The test image holds python3-venv and python3-pip in its apt cache, not installed: install them
# from there (no mirror needed) once per test image, labelled with that image's id.
base_id="$(docker image inspect --format '{{.Id}}' "$base_image")"
if [ "$(docker image inspect --format '{{index .Config.Labels "floodguard.base"}}' "$image" 2>/dev/null)" != "$base_id" ]; then
  echo "building $image from $base_image"
  builder="fg-controller-build-$$"
  docker run --name "$builder" --entrypoint /bin/sh "$base_image" -c \
    'apt-get install --yes --no-download --no-install-recommends python3-venv python3-pip >/dev/null'
  docker commit --change "LABEL floodguard.base=$base_id" "$builder" "$image" >/dev/null
  docker rm "$builder" >/dev/null
fi
docker_cli="$(command -v docker)"
# One HOME per caller (FLOODGUARD_CONTROLLER_HOME, e.g. core-2.20): ansible-test keys its venvs by Python
# version only, and 2.20 and 2.21 both run on 3.13, so parallel sanity runs sharing a HOME race on them.
home="$repo/.cache/controller-home/${FLOODGUARD_CONTROLLER_HOME:-default}"

args=(
  --rm --init --network host
  --name "fg-controller-$$"
  --entrypoint /usr/bin/env
  -v "$repo:$repo"
  -v "$socket:/var/run/docker.sock"
  -v "$docker_cli:/usr/local/bin/docker:ro"
  -v "$ca_bundle:$ca_bundle:ro"
  -w "$PWD"
  -e FLOODGUARD_CONTROLLER=1
  -e DEBIAN_FRONTEND=noninteractive
  -e "HOME=$home"
  -e "PIP_CERT=$ca_bundle"
  -e PIP_DISABLE_PIP_VERSION_CHECK=1
  -e "REQUESTS_CA_BUNDLE=$ca_bundle"
)
# A scratch directory outside the checkout that COMMAND works in (tools/sanity.sh).
if [ -n "${FLOODGUARD_CONTROLLER_MOUNT:-}" ]; then
  args+=(-v "$FLOODGUARD_CONTROLLER_MOUNT:$FLOODGUARD_CONTROLLER_MOUNT")
fi
# ansible-test's shellcheck test runs only where the tool is (Debian's build needs libgmp and libffi,
# both in the image).
if command -v shellcheck >/dev/null 2>&1; then
  args+=(-v "$(command -v shellcheck):/usr/local/bin/shellcheck:ro")
fi
for name in ANSIBLE_COLLECTIONS_PATH ANSIBLE_FORCE_COLOR PY_COLORS NO_COLOR MOLECULE_DISTRO; do
  if [ -n "${!name+x}" ]; then args+=(-e "$name=${!name}"); fi
done
mkdir -p "$home"
exec docker run "${args[@]}" "$image" "$@"
