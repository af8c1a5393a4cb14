#!/usr/bin/env bash
# The NGINX ban back end's benchmark is the phase "lb" of `make bench` (tools/bench/lb.py): behind
# HAProxy appending X-Forwarded-For, the web host converged with site.yml and the README's ALB variables;
# attack-to-ban latency through the LB, NGINX reloads and worker restarts during a burst of 1,000 bans,
# 10,000 and 100,000 bans, NGINX's memory (PSS) and restart with them, the per-request cost.
# This runs that phase alone; results in bench/results/<UTC timestamp>/results.md.
# Usage: tools/bench-nginx-ban.sh [bookworm|trixie] [more tools/bench.sh options]
#        (through `/work/bin/fg-heavy bench` on a shared machine; BENCH_QUICK=1 for a short run)
set -euo pipefail

suite="${1:-bookworm}"
case "$suite" in bookworm | trixie) ;; *) echo "unsupported suite '$suite': bookworm or trixie" >&2; exit 2 ;; esac
[ "$#" -gt 0 ] && shift
exec "$(cd "$(dirname "$0")" && pwd)/bench.sh" --only lb --distro "$suite" --docs no "$@"
