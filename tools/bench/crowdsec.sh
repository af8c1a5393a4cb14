#!/bin/sh
# The CrowdSec peer on the benchmark's web host, run by tools/bench/host.py as `sh -s ...` (stdin).
#   crowdsec.sh setup POLL_S ALLOWED...   install and configure it (bouncer polling every POLL_S seconds)
#   crowdsec.sh reset                     no decisions or alerts, the bouncer's set empty
# Setup, from Debian's packages (in the test image's apt cache), offline:
#   - fail2ban is stopped (both would ban from the same NGINX log) and its firewall tables removed;
#   - /etc/crowdsec/online_api_credentials.yaml exists before the install, so that it never registers;
#   - cscli gets a fixed hub branch, so that nothing it runs looks its hub version up online;
#   - the shipped whitelist (crowdsecurity/whitelists: 10/8, 172.16/12, 192.168/16) would whitelist the
#     test network (172.29.50.0/24): it is replaced by one of loopback and ALLOWED (the web host and the
#     allowlisted client, as floodguard's allowlist has them);
#   - its shipped hub: acquisition of /var/log/nginx/*.log, the nginx collection and its
#     nginx-req-limit-exceeded scenario (NGINX's rejection lines, as fail2ban's jail reads them);
#   - the bouncer (nftables mode, Debian's default) polls every POLL_S seconds (its default is 10).
set -eu

wait_for_bouncer() {
  for _ in $(seq 1 150); do
    nft list chain ip crowdsec crowdsec-chain >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "crowdsec-firewall-bouncer made no nftables chain within 30 s" >&2
  exit 1
}

reset() {
  systemctl kill --signal=SIGCONT crowdsec crowdsec-firewall-bouncer 2>/dev/null || true
  systemctl stop crowdsec-firewall-bouncer
  systemctl is-active --quiet crowdsec || systemctl start crowdsec
  cscli decisions delete --all >/dev/null 2>&1 || true
  cscli alerts delete --all >/dev/null 2>&1 || true
  nft delete table ip crowdsec 2>/dev/null || true
  nft delete table ip6 crowdsec6 2>/dev/null || true
  systemctl start crowdsec-firewall-bouncer
  wait_for_bouncer
}

setup() {
  poll="$1"
  shift
  systemctl disable --now fail2ban >/dev/null 2>&1 || true
  for table in $(nft list tables 2>/dev/null | awk '$3 ~ /f2b|floodguard/ {print $2 "/" $3}'); do
    nft delete table "${table%%/*}" "${table#*/}"
  done
  if ! command -v cscli >/dev/null 2>&1; then
    mkdir -p /etc/crowdsec
    printf 'url: http://127.0.0.1:1/\nlogin: offline\npassword: offline\n' >/etc/crowdsec/online_api_credentials.yaml
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-download -o Dpkg::Use-Pty=0 \
      crowdsec crowdsec-firewall-bouncer >/var/log/floodguard-bench-crowdsec-install.log 2>&1
  fi
  grep -q '^cscli:' /etc/crowdsec/config.yaml.local 2>/dev/null ||
    printf 'cscli:\n  hub_branch: master\n' >>/etc/crowdsec/config.yaml.local
  whitelist=/etc/crowdsec/parsers/s02-enrich/whitelists.yaml
  rm -f "$whitelist"
  {
    printf 'name: crowdsecurity/whitelists\ndescription: "floodguard bench: loopback and the allowlist only"\n'
    printf 'whitelist:\n  reason: "floodguard bench allowlist"\n  ip:\n    - "127.0.0.1"\n    - "::1"\n'
    for address in "$@"; do printf '    - "%s"\n' "$address"; done
  } >"$whitelist"
  bouncer=/etc/crowdsec/bouncers/crowdsec-firewall-bouncer.yaml.local
  sed -i '/^update_frequency:/d' "$bouncer"
  printf 'update_frequency: %ss\n' "$poll" >>"$bouncer"
  systemctl enable crowdsec crowdsec-firewall-bouncer >/dev/null 2>&1
  systemctl restart crowdsec
  for _ in $(seq 1 150); do
    cscli decisions list >/dev/null 2>&1 && break
    sleep 0.2
  done
  systemctl restart crowdsec-firewall-bouncer
  wait_for_bouncer
}

command="${1:?usage: crowdsec.sh setup POLL_S ALLOWED... | crowdsec.sh reset}"
shift
case "$command" in
  setup) setup "$@" ;;
  reset) reset ;;
  *) echo "crowdsec.sh: unknown command $command (setup or reset)" >&2; exit 2 ;;
esac
