#!/usr/bin/env bash
# `make demo`: the whole product on local test hosts, in a few minutes, with no inventory of your own.
# 1. a Debian 12 web host and an attacker host in Docker (tools/testbed.py);
# 2. the demo Django API under gunicorn on the web host, then playbooks/site.yml, as on a real host;
# 3. a bounded flood from the attacker: NGINX rejects it, fail2ban bans the attacker at the firewall;
# 4. playbooks/status.yml shows the ban; playbooks/unban.yml lifts it; the attacker gets through again.
# The hosts stay up for exploring afterwards; `make demo-clean` removes them.
set -euo pipefail
cd "$(dirname "$0")/.."
distro="${DEMO_DISTRO:-bookworm}"
web_ip=172.29.0.10
attacker_ip=172.29.0.20
inventory=.cache/testbed/demo/inventory.yml
export ANSIBLE_NOCOLOR=1 ANSIBLE_CALLBACK_RESULT_FORMAT=yaml ANSIBLE_DISPLAY_SKIPPED_HOSTS=false

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "1/5 test hosts: web $web_ip and attacker $attacker_ip (Debian $distro, systemd, in Docker)"
python3 tools/testbed.py up --name demo --distro "$distro" --host "web:$web_ip" --host "attacker:$attacker_ip"
docker cp tools/flood.py fg-demo-attacker:/usr/local/bin/flood.py

say "2/5 the demo API, then the defence: ansible-playbook floodguard.shield.site"
ansible-playbook -i "$inventory" tools/demo/upstream.yml
ansible-playbook -i "$inventory" playbooks/site.yml --diff | tail -n 25

flood() {
  docker exec fg-demo-attacker python3 /usr/local/bin/flood.py "http://$web_ip/api/ping" \
    --requests "$1" --rate 40 --duration 20 --concurrency 4 --timeout 1 --stop-after-drops 3 |
    python3 -c 'import json,sys
d = json.load(sys.stdin)
for src, s in d["sources"].items():
    print("  from %s: %d served (2xx), %d rejected by NGINX (429), %d dropped by the firewall" % (src, s["served"], s["rejected"], s["dropped"]))'
}

say "3/5 the attacker floods /api/ping at 40 requests/s, well above 5/s (bounded: 300 requests, 20 s)"
flood 300

say "4/5 status: ansible-playbook floodguard.shield.status"
ansible-playbook -i "$inventory" playbooks/status.yml -e jail=nginx-req-limit | sed -n '/TASK \[Summarise/,/PLAY RECAP/p'
echo "  the firewall on the web host:"
docker exec fg-demo-web nft list set inet floodguard f2b-nginx-req-limit-v4 | grep -E "set |elements" | sed 's/^/    /'
echo "  the attacker's requests now: $(docker exec fg-demo-attacker curl -s -o /dev/null -m 2 -w '%{http_code}' "http://$web_ip/api/ping" || true) (000: no answer, dropped)"

say "5/5 unban: ansible-playbook floodguard.shield.unban -e jail=nginx-req-limit -e ips=$attacker_ip"
ansible-playbook -i "$inventory" playbooks/unban.yml -e jail=nginx-req-limit -e "ips=$attacker_ip" |
  sed -n '/TASK \[Summarise/,/PLAY RECAP/p'
echo "  the attacker, now at a polite 2 requests/s:"
docker exec fg-demo-attacker python3 /usr/local/bin/flood.py "http://$web_ip/api/ping" \
  --requests 4 --rate 2 --duration 10 --timeout 2 |
  python3 -c 'import json,sys; t = json.load(sys.stdin)["totals"]; print("    %d served, %d rejected, %d dropped" % (t["served"], t["rejected"], t["dropped"]))'

say "done: the hosts are still up (inventory: $inventory); remove them with: make demo-clean"
