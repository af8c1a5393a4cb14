#!/usr/bin/env bash
# Makes sure a Docker engine answers, and that debootstrap and shellcheck are present (shellcheck for
# ansible-test sanity, which `make test` runs on several core lines at once: one apt-get here, not one
# each). Uses a running engine as it is; otherwise installs Debian's docker.io and starts dockerd
# (these machines have no systemd as PID 1).
set -euo pipefail

need_apt=()
command -v dockerd >/dev/null 2>&1 || need_apt+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need_apt+=(debootstrap)
command -v shellcheck >/dev/null 2>&1 || need_apt+=(shellcheck)
if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "installing ${need_apt[*]} from Debian"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# Every systemd container takes inotify instances; the kernel's default of 128 per user runs out with
# about twenty of them (two scenarios side by side), and systemd then exits 255 without a word.
if [ "$(sysctl -n fs.inotify.max_user_instances)" -lt 1024 ]; then
  sysctl -qw fs.inotify.max_user_instances=1024
fi

if docker info >/dev/null 2>&1; then
  exit 0
fi
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  systemctl start docker
else
  echo "starting dockerd (log: /var/log/floodguard-dockerd.log)"
  nohup dockerd >/var/log/floodguard-dockerd.log 2>&1 &
fi
for _ in $(seq 1 60); do
  docker info >/dev/null 2>&1 && exit 0
  sleep 1
done
echo "the Docker engine did not answer within 60 s; see /var/log/floodguard-dockerd.log" >&2
exit 1
