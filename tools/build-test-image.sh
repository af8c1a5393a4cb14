#!/usr/bin/env bash
# Builds a Debian test-host image from the Debian mirror only (no registry is reachable):
# debootstrap a root filesystem with systemd as PID 1 and python3, pre-download the packages
# the roles install (so converges do not depend on mirror speed, yet still run a real apt install),
# then `docker import`. The image is rebuilt only when this recipe changes: its label holds the
# recipe's hash.
# Usage: tools/build-test-image.sh bookworm|trixie
set -euo pipefail

suite="${1:?usage: $0 bookworm|trixie}"
case "$suite" in
  bookworm | trixie) ;;
  *) echo "unsupported suite '$suite': use bookworm or trixie" >&2; exit 2 ;;
esac
mirror="${FLOODGUARD_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
image="floodguard-test:${suite}"
recipe_hash="$(sha256sum <"$0" | cut -c1-16)"

current="$(docker image inspect --format '{{ index .Config.Labels "floodguard.recipe" }}' "$image" 2>/dev/null || true)"
if [ "$current" = "$recipe_hash" ]; then
  echo "image $image is up to date (recipe $recipe_hash)"
  exit 0
fi

# The base system: what a minimal cloud Debian host has (sudo included: the playbooks become root), plus python3 for Ansible.
base_packages="systemd,systemd-sysv,dbus,python3,python3-apt,iproute2,iputils-ping,procps,ca-certificates,curl,gnupg,less,sudo"
# Installed later by the roles and tests; only downloaded here into apt's cache.
# libnginx-mod-http-lua: the NGINX ban back end; haproxy: the load balancer of the LB scenario;
# python3-boto3: the WAF mirror; python3-venv/pip: the newer-core controller and the moto endpoint;
# crowdsec and its firewall bouncer: the peer in `make bench`.
cached_packages="nginx fail2ban python3-systemd python3-pyinotify python3-nftables nftables iptables logrotate python3-django gunicorn whois apache2-utils libnginx-mod-http-lua haproxy python3-boto3 python3-venv python3-pip crowdsec crowdsec-firewall-bouncer"

work="$(mktemp -d /var/tmp/floodguard-rootfs.XXXXXX)"
trap 'umount -l "$work/rootfs/proc" 2>/dev/null || true; rm -rf "$work"' EXIT
rootfs="$work/rootfs"

echo "debootstrap $suite from $mirror"
debootstrap --variant=minbase --include="$base_packages" "$suite" "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || {
  tail -n 30 "$work/debootstrap.log" >&2; echo "debootstrap failed" >&2; exit 1; }

cat >"$rootfs/etc/apt/sources.list" <<SOURCES
deb $mirror $suite main
deb $mirror $suite-updates main
deb http://deb.debian.org/debian-security $suite-security main
SOURCES
# Keep downloaded packages (the default does too, but be explicit: the cache is the point).
echo 'Binary::apt::APT::Keep-Downloaded-Packages "true";' >"$rootfs/etc/apt/apt.conf.d/10keep-debs"
mount -t proc proc "$rootfs/proc"
chroot "$rootfs" apt-get update -qq
# shellcheck disable=SC2086 # a word list on purpose
chroot "$rootfs" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --download-only $cached_packages >/dev/null
umount "$rootfs/proc"

# Units that make no sense in a container and slow or break its boot.
for unit in getty.target systemd-udevd.service systemd-udev-trigger.service systemd-remount-fs.service \
  systemd-firstboot.service console-getty.service systemd-hwdb-update.service sys-kernel-debug.mount \
  sys-kernel-config.mount dev-hugepages.mount systemd-modules-load.service; do
  ln -sf /dev/null "$rootfs/etc/systemd/system/$unit"
done
# Test hosts boot with the apt lists of the image build: count them as fresh for apt's cache_valid_time
# (Ansible reads this stamp), so that a test run never updates them from the mirror, and never fails
# when the mirror hiccups (it did: a CI run lost both distros to a 30 s outage). Every package the
# roles and tests install is in the image's apt cache.
cat >"$rootfs/etc/systemd/system/floodguard-apt-lists-fresh.service" <<'UNIT'
[Unit]
Description=Count the test image's apt lists as fresh (tests need no Debian mirror)
Before=multi-user.target

[Service]
Type=oneshot
ExecStart=/usr/bin/touch /var/lib/apt/periodic/update-success-stamp

[Install]
WantedBy=multi-user.target
UNIT
mkdir -p "$rootfs/var/lib/apt/periodic" "$rootfs/etc/systemd/system/multi-user.target.wants"
ln -sf ../floodguard-apt-lists-fresh.service "$rootfs/etc/systemd/system/multi-user.target.wants/floodguard-apt-lists-fresh.service"
echo "floodguard-test-$suite" >"$rootfs/etc/hostname"
: >"$rootfs/etc/machine-id"

echo "importing $image"
# Debian 13's systemd refuses cgroup v1 unless forced; the flag is harmless on Debian 12.
# In a container, systemd reads these switches from its own command line.
# docker import takes no STOPSIGNAL: the platforms set stop_signal: SIGRTMIN+3.
tar -C "$rootfs" -c . | docker import \
  --change 'ENV container=docker' \
  --change 'CMD ["/lib/systemd/systemd", "systemd.unified_cgroup_hierarchy=0", "SYSTEMD_CGROUP_ENABLE_LEGACY_FORCE=1"]' \
  --change "LABEL floodguard.recipe=$recipe_hash floodguard.suite=$suite" \
  - "$image" >/dev/null
echo "built $image (recipe $recipe_hash) in $SECONDS s"
