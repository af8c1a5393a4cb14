# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tools/bench/probe.py reads the ruleset as nft prints it: which set holds the benchmark's bans."""

from __future__ import annotations

import importlib.util
import ipaddress
from pathlib import Path

PROBE_FILE = Path(__file__).resolve().parents[4] / "tools" / "bench" / "probe.py"
_spec = importlib.util.spec_from_file_location("probe", PROBE_FILE)
probe = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(probe)

NETWORK = ipaddress.IPv4Network("198.18.0.0/15")
# The layout floodguard_nftables.py creates, as `nft list ruleset` prints it (tab-indented; elements wrap
# over lines).
RULESET = """table inet floodguard {
    set f2b-manual-v4 {
        type ipv4_addr
        elements = { 198.18.0.1, 198.18.0.2,
                 198.18.0.3 }
    }
    set f2b-manual-v4net {
        type ipv4_addr
        flags interval
        elements = { 198.18.1.0/24 }
    }
    chain f2b-manual {
        type filter hook input priority -10; policy accept;
        ip saddr { 172.29.50.10, 198.18.0.9 } return
        ip saddr @f2b-manual-v4 drop
    }
}
""".replace("    ", "\t")


def test_single_addresses_of_the_network_are_found_in_their_set_only():
    assert probe.set_elements(RULESET, NETWORK) == {
        ("inet", "floodguard", "f2b-manual-v4"): ["198.18.0.1", "198.18.0.2", "198.18.0.3"],
    }


def test_counting_takes_prefixes_and_ranges_of_the_network_only(monkeypatch):
    monkeypatch.setattr(probe, "ruleset", lambda backend: RULESET + "elements = { 198.18.2.1-198.18.2.4, 10.0.0.1 }")
    # 3 set elements, 198.18.0.9 of the chain, a /24 and a range of 4; 172.29.50.10 and 10.0.0.1 lie outside.
    assert probe.count("nftables", NETWORK) == 3 + 1 + 256 + 4


def test_an_iptables_ban_rule_names_its_source():
    rule = "-A f2b-manual -s 198.18.0.7/32 -j REJECT --reject-with icmp-port-unreachable"
    assert probe.banned_source(rule, NETWORK) == "198.18.0.7"
    assert probe.banned_source(rule.replace("198.18.0.7", "192.0.2.7"), NETWORK) is None
    assert probe.banned_source("-N f2b-manual", NETWORK) is None
