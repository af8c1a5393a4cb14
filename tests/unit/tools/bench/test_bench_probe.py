# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tools/bench/probe.py reads the ruleset as nft prints it: which set holds the benchmark's bans."""

from __future__ import annotations

import importlib.util
import ipaddress
import threading
import time
from pathlib import Path

import pytest

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


# fail2ban's stock nftables-multiport action and CrowdSec's bouncer (nftables mode), as nft prints them.
STOCK = """table inet f2b-table {
    set addr-set-nginx-req-limit {
        type ipv4_addr
        elements = { 198.18.0.5, 198.18.0.6 }
    }
    chain f2b-chain {
        type filter hook input priority filter - 1; policy accept;
        tcp dport { 80, 443 } ip saddr @addr-set-nginx-req-limit reject with icmp port-unreachable
    }
}
table ip crowdsec {
    set crowdsec-blacklists {
        type ipv4_addr
        flags timeout
        elements = { 198.18.0.7 timeout 4h expires 3h59m48s408ms, 198.18.0.8 timeout 4h expires 3h59m }
    }
    chain crowdsec-chain {
        type filter hook input priority filter; policy accept;
        ip saddr @crowdsec-blacklists counter packets 0 bytes 0 drop
    }
}
""".replace("    ", "\t")
# A set no hooked chain uses, and one a regular chain uses that a hooked chain jumps to.
UNHOOKED = """table inet other {
    set idle {
        type ipv4_addr
        elements = { 198.18.9.1, 198.18.9.2 }
    }
    set jumped {
        type ipv4_addr
        elements = { 198.18.8.1 }
    }
    chain regular {
        ip saddr @jumped drop
    }
    chain unreached {
        ip saddr @idle drop
    }
    chain entry {
        type filter hook input priority 0; policy accept;
        jump regular
    }
}
""".replace("    ", "\t")
IPTABLES = """*filter
:INPUT ACCEPT [0:0]
:f2b-manual - [0:0]
:f2b-orphan - [0:0]
-A INPUT -p tcp -m multiport --dports 0:65535 -j f2b-manual
-A f2b-manual -s 198.18.0.2/32 -j REJECT --reject-with icmp-port-unreachable
-A f2b-manual -s 198.18.0.1/32 -j REJECT --reject-with icmp-port-unreachable
-A f2b-manual -s 198.18.4.0/30 -j DROP
-A f2b-manual -j RETURN
-A f2b-orphan -s 198.18.0.9/32 -j REJECT --reject-with icmp-port-unreachable
COMMIT
"""


def test_single_addresses_of_the_network_are_found_in_their_set_only():
    assert probe.set_elements(RULESET, NETWORK) == {
        ("inet", "floodguard", "f2b-manual-v4"): ["198.18.0.1", "198.18.0.2", "198.18.0.3"],
    }


def test_counting_takes_prefixes_of_blocking_sets_and_never_an_allowlist(monkeypatch):
    blocking = RULESET.replace("@f2b-manual-v4 drop", "@f2b-manual-v4 drop\n\t\tip saddr @f2b-manual-v4net drop")
    monkeypatch.setattr(probe, "ruleset", lambda backend: blocking)
    # 3 set elements and a /24; 198.18.0.9 of the chain's allowlist (return) is not a ban.
    assert probe.count_detail("nftables", NETWORK) == {"count": 3 + 256, "unhooked": 0}


def test_a_set_that_no_rule_blocks_with_is_not_counted(monkeypatch):
    # f2b-manual-v4net is in the table, but no rule drops with it yet.
    monkeypatch.setattr(probe, "ruleset", lambda backend: RULESET)
    assert probe.count_detail("nftables", NETWORK) == {"count": 3, "unhooked": 256}


def test_a_set_counts_through_a_chain_the_hook_jumps_to_only(monkeypatch):
    monkeypatch.setattr(probe, "ruleset", lambda backend: UNHOOKED)
    assert probe.count_detail("nftables", NETWORK) == {"count": 1, "unhooked": 2}


def test_the_peers_sets_are_counted_and_timeouts_are_not_addresses(monkeypatch):
    monkeypatch.setattr(probe, "ruleset", lambda backend: STOCK)
    assert probe.count_detail("nftables", NETWORK) == {"count": 4, "unhooked": 0}
    assert probe.target("nftables", NETWORK, STOCK) == ["inet", "f2b-table", "addr-set-nginx-req-limit"]


def test_iptables_counts_rules_of_chains_input_reaches(monkeypatch):
    monkeypatch.setattr(probe, "ruleset", lambda backend: IPTABLES)
    assert probe.count_detail("iptables-multiport", NETWORK) == {"count": 2 + 4, "unhooked": 1}


def test_an_iptables_ban_rule_names_its_source():
    rule = "-A f2b-manual -s 198.18.0.7/32 -j REJECT --reject-with icmp-port-unreachable"
    assert probe.banned_source(rule, NETWORK) == "198.18.0.7"
    assert probe.banned_source(rule.replace("198.18.0.7", "192.0.2.7"), NETWORK) is None
    assert probe.banned_source("-N f2b-manual", NETWORK) is None


class Clock:
    """time.time() that moves only when told: each read takes `read_s`, each pause what it is given."""

    def __init__(self, read_s):
        self.now, self.read_s = 1000.0, read_s

    def __call__(self):
        return self.now

    def pause(self, seconds):
        self.now += seconds


def test_wait_ends_when_the_confirming_read_has_finished(monkeypatch):
    clock = Clock(read_s=0.5)
    counts = iter([10, 500, 1000])

    def reading(backend, network):
        clock.now += clock.read_s
        return next(counts)

    monkeypatch.setattr(probe, "count", reading)
    result = probe.wait("iptables-multiport", NETWORK, 1000, 60, clock=clock, pause=clock.pause)
    # Reads: 1000.0-1000.5 (10), 1000.52-1001.02 (500), 1001.04-1001.54 (1000, confirms): the bans were
    # complete after the second read started and by the time the third had finished.
    assert result["done"] and result["count"] == 1000 and result["polls"] == 3
    assert result["seconds"] == 1.54
    assert result["epoch_lower"] == pytest.approx(1000.52)
    assert result["uncertainty_s"] == 1.02


def test_wait_gives_up_at_its_limit_without_a_count(monkeypatch):
    clock = Clock(read_s=1.0)

    def reading(backend, network):
        clock.now += clock.read_s
        return 1

    monkeypatch.setattr(probe, "count", reading)
    result = probe.wait("iptables-multiport", NETWORK, 1000, 3, clock=clock, pause=clock.pause)
    assert result["done"] is False and result["count"] is None and result["seconds"] >= 3


def with_handles(text, table_handle, set_handle):
    """RULESET as `nft -a list ruleset` prints it: the table's and the set's handle on their lines."""
    return text.replace("table inet floodguard {", "table inet floodguard { # handle %d" % table_handle).replace(
        "set f2b-manual-v4 {", "set f2b-manual-v4 { # handle %d" % set_handle)


def test_handles_tell_a_set_made_again_from_the_one_it_replaced():
    old, remade = with_handles(RULESET, 7, 1), with_handles(RULESET, 12, 1)
    assert ("inet", "floodguard", 7, "f2b-manual-v4", 1) in probe.nft_sets(old)
    # Same set handle in a new table (a table made again numbers its sets from 1): still a new set.
    # (blocking, in sets no rule uses): the /24 of f2b-manual-v4net is not blocked with in RULESET.
    assert probe.nft_count(remade, NETWORK, stale=probe.nft_sets(old)) == (3, 256)
    assert probe.nft_count(old, NETWORK, stale=probe.nft_sets(old)) == (0, 0)
    assert probe.nft_count(old, NETWORK) == (3, 256)


def test_restart_counts_only_sets_made_after_it_began_while_the_command_runs(monkeypatch):
    old, remade = with_handles(RULESET, 7, 1), with_handles(RULESET, 8, 1)
    released = threading.Event()
    listings = iter([old, old, old, remade])

    def listing(backend):
        text = next(listings)
        if text is remade:
            released.set()
        return text

    def command(argv, **kwargs):
        # systemctl restart returns only after the new set is full, as fail2ban's ExecStartPost waits.
        assert argv[:2] == ["systemctl", "restart"]
        released.wait(5)
        return type("Done", (), {"returncode": 0})()

    monkeypatch.setattr(probe, "ruleset", listing)
    monkeypatch.setattr(probe.subprocess, "run", command)
    result = probe.restart("nftables", NETWORK, 3, 10)
    # The first listing is the one before the restart; the old set, full, is not counted while it runs.
    assert result["done"] and result["count"] == 3 and result["polls"] == 3
    assert result["restart_command_s"] >= 0
    # The old set dropped all 3 until the new one did: no read saw fewer.
    assert result["unenforced"] == {"reads_short": 0, "closed": True, "upper_s": 0.0, "lower_s": 0.0}


def test_restart_sees_the_gap_between_the_old_sets_and_the_new(monkeypatch):
    old, remade = with_handles(RULESET, 7, 1), with_handles(RULESET, 8, 1)
    gone = old.replace("198.18.0.1, 198.18.0.2,\n\t\t\t\t 198.18.0.3", "198.18.0.1")
    listings = iter([old, old, gone, gone, remade])
    monkeypatch.setattr(probe, "ruleset", lambda backend: next(listings))
    monkeypatch.setattr(probe.subprocess, "run", lambda argv, **kwargs: time.sleep(0.2) or type("Done", (), {"returncode": 0})())
    result = probe.restart("nftables", NETWORK, 3, 10)
    gap = result["unenforced"]
    assert gap["reads_short"] == 2 and gap["closed"] and gap["least_dropped"] == 1
    assert gap["upper_s"] >= gap["lower_s"] >= 0


def test_the_enforcement_gap_is_bounded_by_the_reads_around_it():
    trace = [[0.0, 0.5, 100], [0.6, 1.1, 100], [1.2, 1.7, 0], [1.8, 2.3, 40], [2.4, 2.9, 100]]
    # From the last whole read's start (0.6) to the first whole one's end (2.9); at least from the first
    # short read's end (1.7) to the last short one's start (1.8).
    assert probe.enforcement_gap(trace, 100) == {"reads_short": 2, "closed": True, "upper_s": 2.3, "lower_s": 0.1,
                                                 "least_dropped": 0}
    assert probe.enforcement_gap(trace[:4], 100)["closed"] is False
    assert probe.enforcement_gap([[0.0, 0.5, 10], [0.6, 1.1, 100]], 100)["upper_s"] is None


def test_restart_of_a_daemon_that_keeps_its_set_counts_it_once_the_command_returned(monkeypatch):
    old = with_handles(RULESET, 7, 1)
    monkeypatch.setattr(probe, "ruleset", lambda backend: old)
    monkeypatch.setattr(probe.subprocess, "run", lambda argv, **kwargs: type("Done", (), {"returncode": 0})())
    result = probe.restart("nftables", NETWORK, 3, 10)
    assert result["done"] and result["count"] == 3


def test_a_failed_restart_says_so(monkeypatch):
    monkeypatch.setattr(probe, "ruleset", lambda backend: with_handles(RULESET, 7, 1))
    monkeypatch.setattr(probe.subprocess, "run", lambda argv, **kwargs: type("Done", (), {"returncode": 5})())
    with pytest.raises(SystemExit, match="restart fail2ban failed"):
        probe.restart("nftables", NETWORK, 3, 1)


class Commands:
    """subprocess.run stand-in: records each command and its input, answers `nft list ruleset` with text."""

    def __init__(self, text):
        self.text, self.calls = text, []

    def __call__(self, argv, **kwargs):
        self.calls.append((argv, kwargs.get("input")))
        return type("Done", (), {"stdout": self.text, "returncode": 0})()


def test_fill_adds_only_the_missing_addresses_to_the_set_that_holds_them(monkeypatch):
    commands = Commands(STOCK)
    monkeypatch.setattr(probe.subprocess, "run", commands)
    result = probe.fill("nftables", NETWORK, 6)
    scripts = [given for argv, given in commands.calls if argv == ["nft", "-f", "-"]]
    # 4 of the network are held (198.18.0.5-8); the first two missing ones in order are added.
    assert scripts == ["add element inet f2b-table addr-set-nginx-req-limit { 198.18.0.1, 198.18.0.2 }\n"]
    assert result["added"] == 2 and result["target"] == ["inet", "f2b-table", "addr-set-nginx-req-limit"]


def test_fill_of_an_emptied_firewall_says_to_ban_one_first(monkeypatch):
    empty = STOCK.replace("198.18.0.5, 198.18.0.6", "").replace("\t\telements = { 198.18.0.7 timeout 4h expires "
                                                                "3h59m48s408ms, 198.18.0.8 timeout 4h expires 3h59m }\n", "")
    commands = Commands(empty)
    monkeypatch.setattr(probe.subprocess, "run", commands)
    with pytest.raises(SystemExit, match="ban one first"):
        probe.fill("nftables", NETWORK, 2)
    assert [argv for argv, _given in commands.calls if argv[0] != "nft" or argv[1] != "-a"] == []


def test_fill_inserts_iptables_rules_at_the_top_of_the_ban_chain(monkeypatch):
    commands = Commands(IPTABLES)
    monkeypatch.setattr(probe.subprocess, "run", commands)
    # 6 held (2 addresses and a /30; the orphan chain's rule is not reached): 2 more make 8.
    probe.fill("iptables-multiport", NETWORK, 8)
    restore = [given for argv, given in commands.calls if argv[0] == "iptables-restore"]
    assert restore == ["*filter\n-I f2b-manual 1 -s 198.18.0.3/32 -j REJECT --reject-with icmp-port-unreachable\n"
                       "-I f2b-manual 1 -s 198.18.0.4/32 -j REJECT --reject-with icmp-port-unreachable\nCOMMIT\n"]


def test_toggle_points_the_blocking_rule_at_an_empty_twin_and_back(monkeypatch):
    listed = RULESET.replace("ip saddr @f2b-manual-v4 drop", "ip saddr @f2b-manual-v4 counter packets 9 bytes 540 drop # handle 7")
    scripts = []

    def run(argv, **kwargs):
        if argv[:2] == ["nft", "-f"]:
            scripts.append(kwargs["input"])
        return type("Done", (), {"stdout": listed, "returncode": 0})()

    monkeypatch.setattr(probe.subprocess, "run", run)
    clock = Clock(read_s=0)
    result = probe.toggle("nftables", NETWORK, 2, 0.5, 1.0, clock=clock, pause=clock.pause)
    to_twin = ("replace rule inet floodguard f2b-manual handle 7 ip saddr @f2b-manual-v4-bench0 counter drop\n")
    back = "replace rule inet floodguard f2b-manual handle 7 ip saddr @f2b-manual-v4 counter drop\n"
    assert scripts[0] == "add set inet floodguard f2b-manual-v4-bench0 { type ipv4_addr; }\n"
    assert scripts[1:6] == [to_twin, back, to_twin, back, back]
    assert scripts[6] == "delete set inet floodguard f2b-manual-v4-bench0\n"
    # A and B each last the window; the original rule is back at the end.
    assert [state for state, _began, _done in result["moments"]] == ["A", "B", "A", "B", "end"]
    assert [done for _state, _began, done in result["moments"]] == [1001.0, 1001.5, 1002.0, 1002.5, 1003.0]


def test_toggle_on_iptables_returns_at_the_top_of_each_ban_chain_input_reaches_and_takes_it_out(monkeypatch):
    commands = Commands(IPTABLES)
    monkeypatch.setattr(probe.subprocess, "run", commands)

    class SlowClock(Clock):
        """Each switch takes 0.8 s (iptables-nft reads the table first): the moments say when it began and ended."""

        def __call__(self):
            self.now += 0.4
            return self.now

    clock = SlowClock(read_s=0)
    result = probe.toggle("iptables-multiport", NETWORK, 1, 0.5, 1.0, clock=clock, pause=clock.pause)
    restores = [given for argv, given in commands.calls if argv[0] == "iptables-restore"]
    # f2b-orphan bans an address too, but INPUT never reaches it; the final switch back is a no-op.
    assert restores == ["*filter\n-I f2b-manual 1 -j RETURN\nCOMMIT\n", "*filter\n-D f2b-manual 1\nCOMMIT\n"]
    assert result["rules"] == 1
    assert [state for state, _began, _done in result["moments"]] == ["A", "B", "end"]
    # began/done of each switch: 0.4 s apart (one clock read each), the window of 0.5 s in between.
    assert [[round(began, 1), round(done, 1)] for _state, began, done in result["moments"]] == [
        [1001.4, 1001.8], [1002.7, 1003.1], [1004.0, 1004.4]]


def test_toggle_on_iptables_without_a_reached_ban_chain_changes_nothing(monkeypatch):
    orphan_only = IPTABLES.replace("-A INPUT -p tcp -m multiport --dports 0:65535 -j f2b-manual\n", "")
    commands = Commands(orphan_only)
    monkeypatch.setattr(probe.subprocess, "run", commands)
    with pytest.raises(SystemExit, match="nothing to compare"):
        probe.toggle("iptables-multiport", NETWORK, 1, 0.5, 1.0, clock=Clock(0), pause=lambda seconds: None)
    assert [argv for argv, _given in commands.calls if argv[0] == "iptables-restore"] == []


def test_iptables_reach_follows_jumps_from_input_only():
    text = IPTABLES.replace("-A f2b-manual -j RETURN\n", "-A f2b-manual -j f2b-deeper\n-A f2b-manual -j RETURN\n"
                            "-A f2b-deeper -s 198.18.7.7/32 -j DROP\n-A f2b-orphan -j f2b-behind-orphan\n"
                            "-A f2b-behind-orphan -s 198.18.6.6/32 -j DROP\n")
    assert probe.iptables_reached(text) == ["INPUT", "f2b-manual", "f2b-deeper"]
