# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tools/bench/host.py: the jail.d override that gives fail2ban its stock nftables actions (a peer)."""

from __future__ import annotations

import bench_modules

host = bench_modules.load("host")

# The role's floodguard-banactions.local as rendered on the bench's web host (roles/fail2ban/templates).
BANACTIONS = """[nginx-req-limit]
action = floodguard_nftables.py[name=nginx-req-limit, port="http,https", protocol="tcp", blocktype=drop, allowlist="127.0.0.0/8 ::1 172.29.50.30/32"]

[manual]
action = floodguard_nftables.py[name=manual, port="all", protocol="tcp,udp", blocktype=drop, allowlist="127.0.0.0/8 ::1"]
"""


def test_each_floodguard_action_becomes_fail2ban_s_stock_one():
    assert host.stock_actions(BANACTIONS) == """[nginx-req-limit]
action = nftables-multiport[name=nginx-req-limit, port="http,https", protocol="tcp"]

[manual]
action = nftables-allports[name=manual, protocol="tcp,udp"]
"""


def test_the_systems_ban_daemons_are_the_units_a_restart_restarts(monkeypatch):
    bench = host.Host("/tmp")
    bench.action = "crowdsec-1s"
    assert bench.units == ("crowdsec", "crowdsec-firewall-bouncer") and bench.backend == "nftables"
    bench.action = "fail2ban-iptables"
    assert bench.units == ("fail2ban",) and bench.backend == "iptables-multiport"


def test_the_fast_experiment_cuts_the_flush_delay_and_adds_its_action_once():
    text = host.fast_actions(BANACTIONS)
    assert text.count('flushdelay="0.005"') == 2
    assert text.count("floodguard_bench_fast.py") == 1
    assert 'allowlist="127.0.0.0/8 ::1 172.29.50.30/32"]\n         floodguard_bench_fast.py\n' in text
