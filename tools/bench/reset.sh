#!/bin/sh
# Fresh fail2ban on the benchmark's web host: no bans in its database or the firewall, every jail
# running. Run by tools/bench/host.py as `sh -s JAIL` (stdin); exits 0 once JAIL answers again.
set -u
jail="${1:?usage: reset.sh JAIL}"
systemctl kill --signal=SIGKILL fail2ban >/dev/null 2>&1
systemctl stop fail2ban >/dev/null 2>&1
systemctl reset-failed fail2ban >/dev/null 2>&1
rm -f /var/lib/fail2ban/fail2ban.sqlite3
for table in $(nft list tables 2>/dev/null | awk '$3 ~ /f2b|floodguard/ {print $2 "/" $3}'); do
  nft delete table "${table%%/*}" "${table#*/}"
done
if command -v iptables >/dev/null 2>&1; then
  for tool in iptables ip6tables; do
    $tool -S INPUT 2>/dev/null | grep -- '-j f2b-' | sed 's/^-A //' | while read -r rule; do
      # shellcheck disable=SC2086 # the rule's words are iptables arguments
      $tool -D $rule
    done
    for chain in $($tool -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^f2b-/ {print $2}'); do
      $tool -F "$chain"
      $tool -X "$chain"
    done
  done
fi
systemctl start fail2ban
for _ in $(seq 1 100); do
  fail2ban-client status "$jail" >/dev/null 2>&1 && exit 0
  sleep 0.2
done
echo "fail2ban did not come back within 20 s" >&2
exit 1
