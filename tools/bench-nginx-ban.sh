#!/usr/bin/env bash
# The single-quoted commands run in the container, where their $ expand.
# shellcheck disable=SC2016
# Measures the NGINX ban back end on a throwaway test container (real systemd, NGINX with Debian's
# libnginx-mod-http-lua, fail2ban with roles/fail2ban/files/action.d/floodguard_nginx.py):
#   - NGINX reloads and worker restarts during a burst of 1,000 bans (master and worker PIDs, and
#     NGINX's own "reconfiguring" / "signal process started" log lines);
#   - time from `fail2ban-client set manual banip` to the ban being enforced (a request with that
#     client address gets 403), p50/p95 over 20 single bans, and to ban 10,000 and 100,000 addresses;
#   - NGINX's memory (PSS of all its processes, and the shared dict's use) with 0 and 100,000 bans;
#   - the per-request cost (ab, 20,000 requests, 8 at a time) with 0 and with 100,000 bans.
# The requests come from 127.0.0.1, trusted as the load balancer, with X-Forwarded-For naming the
# client, as behind an ALB. Addresses come from 198.18.0.0/15; no traffic leaves the container.
# Usage: tools/bench-nginx-ban.sh bookworm|trixie   (through /work/bin/fg-heavy on a shared machine)
set -euo pipefail

suite="${1:?usage: $0 bookworm|trixie}"
case "$suite" in bookworm | trixie) ;; *) echo "unsupported suite '$suite'" >&2; exit 2 ;; esac
repo="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-$repo/.venv/bin/python}"
container="fg-benchnginxban-$suite"
socket=/run/floodguard-nginx/ban.sock
statedir=/var/lib/floodguard/nginx-bans
work="$(mktemp -d)"

docker rm -f "$container" >/dev/null 2>&1 || true
trap 'docker rm -f "$container" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
docker run -d --name "$container" --cap-add SYS_ADMIN --cap-add NET_ADMIN --cgroupns host \
  -v /sys/fs/cgroup:/sys/fs/cgroup:rw --tmpfs /run --tmpfs /run/lock --stop-signal SIGRTMIN+3 \
  "floodguard-test:$suite" >/dev/null
for _ in $(seq 30); do
  state="$(docker exec "$container" systemctl is-system-running 2>/dev/null || true)"
  case "$state" in running | degraded) break ;; esac
  sleep 1
done
inside() { docker exec "$container" bash -c "$1"; }
inside 'DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx libnginx-mod-http-lua fail2ban python3-systemd apache2-utils curl >/dev/null'

# The role's own files: the Lua module, and ban.conf.j2 rendered with the role's defaults.
"$python" - "$repo" "$work/ban.conf" <<'EOF'
import sys, jinja2, yaml
repo, out = sys.argv[1], sys.argv[2]
role = repo + "/roles/nginx_ratelimit"
values = yaml.safe_load(open(role + "/defaults/main.yml"))
values.update(yaml.safe_load(open(role + "/vars/main.yml")))
values["ansible_managed"] = "tools/bench-nginx-ban.sh"
environment = jinja2.Environment(loader=jinja2.FileSystemLoader(role + "/templates"), trim_blocks=True, undefined=jinja2.StrictUndefined)
open(out, "w").write(environment.get_template("ban.conf.j2").render(values))
EOF
cat >"$work/site.conf" <<'EOF'
geo $floodguard_ratelimit_exempt { default 0; }
set_real_ip_from 127.0.0.1;
real_ip_header X-Forwarded-For;
real_ip_recursive on;
server {
    listen 80 default_server;
    root /var/www/html;
    access_log off;
    location / { try_files /index.nginx-debian.html =404; }
}
EOF
cat >"$work/jail.local" <<EOF
[manual]
enabled = true
filter =
backend = systemd
journalmatch = _SYSTEMD_UNIT=floodguard-bench-none.service
bantime = 1d
action = floodguard_nginx.py[name=manual, socket=$socket, statedir=$statedir, allowlist="127.0.0.0/8 ::1"]

[sshd]
enabled = false
EOF
inside "install -d -m 0700 /run/floodguard-nginx $statedir && install -d /etc/nginx/floodguard && rm -f /etc/nginx/sites-enabled/default"
docker cp "$repo/roles/nginx_ratelimit/files/floodguard_ban.lua" "$container:/etc/nginx/floodguard/"
docker cp "$work/ban.conf" "$container:/etc/nginx/conf.d/floodguard-ban.conf"
docker cp "$work/site.conf" "$container:/etc/nginx/conf.d/bench-site.conf"
# The action loads floodguard_batching.py and floodguard_ports.py from its own directory.
for file in floodguard_nginx.py floodguard_batching.py floodguard_ports.py; do
  docker cp -L "$repo/roles/fail2ban/files/action.d/$file" "$container:/etc/fail2ban/action.d/"
done
docker cp "$work/jail.local" "$container:/etc/fail2ban/jail.d/bench.local"
inside 'printf "[Definition]\nloglevel = WARNING\n" > /etc/fail2ban/fail2ban.d/bench.local'
inside 'nginx -t -q && systemctl restart nginx && systemctl restart fail2ban'
for _ in $(seq 30); do inside 'fail2ban-client status manual >/dev/null 2>&1' && break; sleep 1; done

count() { inside "curl -s --unix-socket $socket 'http://floodguard-ban/count?jail=manual'"; }
pids() { inside 'pgrep -d, -x nginx | tr , "\n" | sort -n | tr "\n" " "'; }
# systemctl reload nginx (what a reload handler does) logs "Reloading" in the journal; a reload also replaces every worker.
reloads() { inside 'journalctl -u nginx --no-pager -o cat | grep -c "^Reload" || true'; }
pss_kib() { inside 'for pid in $(pgrep -x nginx); do cat /proc/$pid/smaps_rollup; done | awk "/^Pss:/ {sum += \$2} END {print sum}"'; }
since() { awk -v start="$1" -v now="$(date +%s.%N)" 'BEGIN {printf "%.3f", now - start}'; }
addresses() { # N addresses from 198.18.0.0/15, starting at offset $2
  "$python" -c "import ipaddress,sys; base=int(ipaddress.ip_address('198.18.0.0'))+int(sys.argv[2]); print(' '.join(str(ipaddress.ip_address(base+i)) for i in range(int(sys.argv[1]))))" "$1" "${2:-0}"
}
ban_many() { # N OFFSET: bans in batches of 5,000; prints seconds until NGINX holds them all
  local n="$1" offset="$2" before start
  before="$(count)"
  addresses "$n" "$offset" | tr ' ' '\n' >"$work/list"
  docker cp "$work/list" "$container:/tmp/list" >/dev/null
  start="$(date +%s.%N)"
  inside 'xargs -n 5000 fail2ban-client set manual banip < /tmp/list >/dev/null'
  until [ "$(count)" -ge $((before + n)) ]; do sleep 0.01; done
  since "$start"
}
ab_mean_ms() {
  inside "ab -q -n 20000 -c 8 -H 'X-Forwarded-For: 192.0.2.1' http://127.0.0.1/ 2>/dev/null" |
    awk '/Time per request:.*\(mean\)$/ {print $4; exit}'
}

reloads_at_start="$(reloads)"
echo "== NGINX ban back end on $suite ($(inside 'nginx -v 2>&1'), $(inside 'dpkg-query -W -f "\${Version}" libnginx-mod-http-lua'))"
echo "per-request cost, 0 bans: $(ab_mean_ms) ms per request (ab -n 20000 -c 8, mean)"
echo "NGINX memory, 0 bans: $(pss_kib) KiB PSS; dict: $(inside "curl -s --unix-socket $socket 'http://floodguard-ban/stats?jail=manual'")"

pids_before="$(pids)"; reloads_before="$(reloads)"
burst_s="$(ban_many 1000 0)"
echo "burst of 1,000 bans: all enforced after ${burst_s} s; NGINX reloads during it: $(($(reloads) - reloads_before)); processes before: $pids_before after: $(pids)"

# Inside the container, so that docker exec does not add to the figures; fail2ban-client's own start
# (a Python process) is part of them.
inside 'for i in $(seq 20); do a=198.19.200.$i; s=$(date +%s%N); fail2ban-client set manual banip $a >/dev/null
  until [ "$(curl -s -o /dev/null -w %{http_code} -H "X-Forwarded-For: $a" http://127.0.0.1/)" = 403 ]; do :; done
  echo $(( ($(date +%s%N) - s) / 1000000 )); done' | sort -n >"$work/latencies"
echo "ban to enforced (fail2ban-client banip, then requests until 403), 20 bans: p50 $(sed -n 10p "$work/latencies") ms, p95 $(sed -n 19p "$work/latencies") ms"

echo "10,000 bans: enforced after $(ban_many 9000 1000) s (with the 1,000 above)"
echo "100,000 bans: enforced after $(ban_many 90000 10000) s (90,000 more)"
inside "curl -s --unix-socket $socket -X POST --data-binary \$'c6336400/24\n' 'http://floodguard-ban/add?jail=bench-net' >/dev/null"
echo "NGINX memory, $(count) bans: $(pss_kib) KiB PSS; dict: $(inside "curl -s --unix-socket $socket 'http://floodguard-ban/stats?jail=manual'")"
echo "per-request cost, 100,000 bans and one /24 network: $(ab_mean_ms) ms per request (ab -n 20000 -c 8, mean)"
start="$(date +%s.%N)"
inside 'systemctl restart nginx'
until [ "$(count 2>/dev/null || echo 0)" -ge 100000 ]; do sleep 0.05; done
echo "NGINX restart with 100,000 bans: all enforced again after $(since "$start") s (state file)"
echo "NGINX reloads during the whole measurement: $(($(reloads) - reloads_at_start))"
