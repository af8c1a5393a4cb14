# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tools/bench/probe.py reads the ruleset as nft prints it: which set holds the benchmark's bans."""

from __future__ import annotations

import importlib.util
import ipaddress
from pathlib import Path

PROBE_FILE = Path(__file__).resolve().parents[3] / "tools" / "bench" / "probe.py"
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
