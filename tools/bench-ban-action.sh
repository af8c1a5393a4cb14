#!/usr/bin/env bash
# Measures how fast a fail2ban ban action bans, unbans and restores (after `systemctl restart
# fail2ban`) N addresses, on a throwaway test container (real systemd, fail2ban and nftables).
# Addresses come from the benchmarking ranges 198.18.0.0/15 and 2001:db8::/32 (one in ten is
# IPv6); they are only set elements, no traffic is sent. Bans go through
# `fail2ban-client set manual banip ...` in batches of 5,000, as an operator or a script would.
# Usage: tools/bench-ban-action.sh bookworm|trixie floodguard|stock N [N...]
#   floodguard: roles/fail2ban/files/action.d/floodguard_nftables.py; stock: fail2ban's nftables action.
#   FLOODGUARD_BENCH_LOGLEVEL=WARNING (for example) sets fail2ban's loglevel: at the default
#   (INFO) fail2ban writes one log line per ban and per unban, much of its CPU time in a flood.
set -euo pipefail

suite="${1:?usage: $0 bookworm|trixie floodguard|stock N [N...]}"
action="${2:?usage: $0 bookworm|trixie floodguard|stock N [N...]}"
shift 2
[ "$#" -gt 0 ] || { echo "give at least one N" >&2; exit 2; }
case "$suite" in bookworm | trixie) ;; *) echo "unsupported suite '$suite'" >&2; exit 2 ;; esac
case "$action" in
  floodguard) jail_action='floodguard_nftables.py[port="http,https", protocol=tcp, blocktype=drop]' ;;
  stock) jail_action='nftables[port="http,https", protocol=tcp, blocktype=drop]' ;;
  *) echo "unknown action '$action': use floodguard or stock" >&2; exit 2 ;;
esac
for n in "$@"; do
  if ! [[ "$n" =~ ^[0-9]+$ ]] || [ "$n" -lt 10 ] || [ "$n" -gt 130000 ]; then
    echo "N must be 10..130000, not '$n'" >&2; exit 2
  fi
done
repo="$(cd "$(dirname "$0")/.." && pwd)"
container="fg-benchban-$suite-$action"

docker rm -f "$container" >/dev/null 2>&1 || true
trap 'docker rm -f "$container" >/dev/null 2>&1 || true' EXIT
# The test host's container settings and image: molecule/shared/vars/platform.yml, through tools/testbed.py.
mapfile -t run_options < <(python3 "$repo/tools/testbed.py" docker-run-options --distro "$suite")
[ "${#run_options[@]}" -gt 1 ] || { echo "tools/testbed.py docker-run-options failed" >&2; exit 1; }
docker run -d --name "$container" "${run_options[@]}" >/dev/null
for _ in $(seq 30); do docker exec "$container" systemctl is-system-running >/dev/null 2>&1 && break
  docker exec "$container" systemctl is-system-running 2>/dev/null | grep -q degraded && break; sleep 1; done
docker exec "$container" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -qq fail2ban nftables python3-nftables python3-systemd >/dev/null
# The action loads floodguard_batching.py, floodguard_ports.py (plugins/module_utils/_ports.py) and floodguard_watch.py from its own directory.
for file in floodguard_nftables.py floodguard_batching.py floodguard_ports.py floodguard_watch.py; do
  docker cp -L "$repo/roles/fail2ban/files/action.d/$file" "$container:/etc/fail2ban/action.d/"
done
docker exec -i "$container" bash -c 'cat >/etc/fail2ban/filter.d/floodguard-never.conf' <<'FILTER'
[Definition]
failregex = ^floodguard benchmark line that never appears <HOST>$
FILTER
docker exec -i "$container" bash -c 'cat >/etc/fail2ban/jail.d/zz-bench.conf' <<JAIL
[sshd]
enabled = false
[manual]
enabled = true
filter = floodguard-never
backend = polling
logpath = /var/log/floodguard-never.log
bantime = 1d
action = $jail_action
JAIL
if [ -n "${FLOODGUARD_BENCH_LOGLEVEL:-}" ]; then
  [[ "$FLOODGUARD_BENCH_LOGLEVEL" =~ ^[A-Z]+$ ]] || { echo "FLOODGUARD_BENCH_LOGLEVEL: a fail2ban level like WARNING" >&2; exit 2; }
  printf '[Definition]\nloglevel = %s\n' "$FLOODGUARD_BENCH_LOGLEVEL" | docker exec -i "$container" bash -c 'cat >/etc/fail2ban/fail2ban.local'
fi
docker exec "$container" bash -c 'touch /var/log/floodguard-never.log && fail2ban-client -t >/dev/null && systemctl restart fail2ban'
echo "$suite, $action action, loglevel ${FLOODGUARD_BENCH_LOGLEVEL:-default}: fail2ban $(docker exec "$container" dpkg-query -W -f '${Version}' fail2ban), $(docker exec "$container" nft --version)"

docker exec -i "$container" python3 - "$action" "$@" <<'DRIVER'
import ipaddress, json, os, sqlite3, subprocess, sys, time

action, sizes = sys.argv[1], [int(n) for n in sys.argv[2:]]
if action == "floodguard":
    sets = [("inet", "floodguard", "f2b-manual-v4"), ("inet", "floodguard", "f2b-manual-v6")]
else:
    sets = [("inet", "f2b-table", "addr-set-manual"), ("inet", "f2b-table", "addr6-set-manual")]
BATCH = 5000
DEADLINE = 900  # seconds per step: a bound, not an expectation


def run(*argv):
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def addresses(n):
    v6 = n // 10
    v4_base = int(ipaddress.IPv4Address("198.18.0.0"))
    v6_base = int(ipaddress.IPv6Address("2001:db8::"))
    return ([str(ipaddress.IPv4Address(v4_base + 1 + i)) for i in range(n - v6)]
            + [str(ipaddress.IPv6Address(v6_base + 1 + i)) for i in range(v6)])


def in_firewall():
    total = 0
    for family, table, name in sets:
        result = subprocess.run(["nft", "-j", "list", "set", family, table, name], capture_output=True, text=True)
        if result.returncode:
            continue  # not created yet (restart in progress)
        for item in json.loads(result.stdout)["nftables"]:
            total += len(item.get("set", {}).get("elem", []))
    return total


def in_jail():
    for line in run("fail2ban-client", "status", "manual").splitlines():
        if "Currently banned" in line:
            return int(line.split(":")[1])
    raise SystemExit("no ban count in fail2ban-client status")


def in_database():
    with sqlite3.connect("/var/lib/fail2ban/fail2ban.sqlite3", timeout=30) as db:
        return db.execute("SELECT COUNT(*) FROM bans WHERE jail = 'manual'").fetchone()[0]


def wait_for(what, probe, want, started):
    while True:
        got = probe()
        if got == want:
            return time.monotonic() - started
        if time.monotonic() - started > DEADLINE:
            raise SystemExit("%s: %d after %d s, want %d" % (what, got, DEADLINE, want))
        time.sleep(0.2)


def server_cpu():
    """CPU seconds used so far by fail2ban-server and the processes it ran (nft for the stock action)."""
    pid = run("systemctl", "show", "--property", "MainPID", "--value", "fail2ban").strip()
    with open("/proc/%s/stat" % pid, encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def wait_server():
    for _ in range(300):
        if subprocess.run(["fail2ban-client", "ping"], capture_output=True).returncode == 0:
            return
        time.sleep(0.1)
    raise SystemExit("fail2ban did not come back")


# Wall seconds, and in brackets the CPU seconds fail2ban-server spent (a figure that other load
# on the machine does not inflate). ban: until every address is in the nft sets; DB: until
# fail2ban's database holds every ban; restore: from `systemctl restart fail2ban` until every
# address is back in the sets; unban: unbanip batches until the sets are empty.
print("| N | ban s (cpu) | DB s | restore s (cpu) | unban s (cpu) | banned in status / after restart |")
print("|---|---|---|---|---|---|")
for n in sizes:
    ips = addresses(n)
    cpu = server_cpu()
    started = time.monotonic()
    for i in range(0, n, BATCH):
        run("fail2ban-client", "--timeout", "900", "set", "manual", "banip", *ips[i:i + BATCH])
    banned = wait_for("banned in nft", in_firewall, n, started)
    ban_cpu = server_cpu() - cpu
    status = in_jail()
    persisted = wait_for("bans in the database", in_database, n, started)
    started = time.monotonic()
    run("systemctl", "restart", "fail2ban")
    wait_server()
    restored = wait_for("restored in nft", in_firewall, n, started)
    restore_cpu = server_cpu()
    restored_status = in_jail()
    cpu = server_cpu()
    started = time.monotonic()
    for i in range(0, n, BATCH):
        run("fail2ban-client", "--timeout", "900", "set", "manual", "unbanip", *ips[i:i + BATCH])
    unbanned = wait_for("unbanned in nft", in_firewall, 0, started)
    unban_cpu = server_cpu() - cpu
    print("| %d | %.1f (%.1f) | %.1f | %.1f (%.1f) | %.1f (%.1f) | %d / %d |"
          % (n, banned, ban_cpu, persisted, restored, restore_cpu, unbanned, unban_cpu, status, restored_status), flush=True)
DRIVER
docker exec "$container" bash -c 'grep -cE "ERROR|Traceback" /var/log/fail2ban.log' | sed 's/^/fail2ban.log errors: /' || true
