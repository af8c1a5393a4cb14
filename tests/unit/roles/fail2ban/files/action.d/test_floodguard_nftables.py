# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tests of the fail2ban action roles/fail2ban/files/action.d/floodguard_nftables.py.

The option parsing is tested on its own. The firewall side runs the real nft program against
the kernel, in a private network namespace per test (so the host's ruleset is never touched);
those tests need root and nft and are skipped otherwise. fail2ban itself is not on PyPI: when it
is not installed, a stand-in of its ActionBase (constructor and logger only) is used here; the
end-to-end runs with real fail2ban are tools/bench-ban-action.sh and the role's Molecule tests.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import shutil
import subprocess
import time
import types

import pytest

from ansible_collections.floodguard.shield.tests.unit.roles.fail2ban.actions import load_action, wait_for

CLONE_NEWNET = 0x40000000

action_module = load_action("floodguard_nftables.py")


class BanList:
    """What the action reads from fail2ban's jail: its name and the addresses it holds as banned."""

    def __init__(self, name):
        self.name = name
        self.banned = []
        # sleeptime: what fail2ban's actions thread starts with (JailThread: Utils.DEFAULT_SLEEP_TIME).
        self.actions = types.SimpleNamespace(banManager=types.SimpleNamespace(getBanList=lambda: list(self.banned)), sleeptime=2)


def nft(*argv):
    return subprocess.run(["nft", *argv], check=True, capture_output=True, text=True).stdout


def elements(set_name):
    listing = json.loads(nft("-j", "list", "set", "inet", "floodguard", set_name))["nftables"]
    found = []
    for item in listing:
        for element in item.get("set", {}).get("elem", []):
            if isinstance(element, dict) and "prefix" in element:
                found.append("%s/%d" % (element["prefix"]["addr"], element["prefix"]["len"]))
            else:
                found.append(element)
    return sorted(found)


@pytest.fixture(name="netns")
def private_network_namespace():
    """Run the test's nft commands in a new, empty network namespace of this thread."""
    if os.geteuid() != 0 or not shutil.which("nft"):
        pytest.skip("needs root and the nft program")
    libc = ctypes.CDLL(None, use_errno=True)
    original = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    if libc.unshare(CLONE_NEWNET) != 0:
        os.close(original)
        pytest.skip("cannot create a network namespace: %s" % os.strerror(ctypes.get_errno()))
    try:
        yield
    finally:
        libc.setns(original, CLONE_NEWNET)
        os.close(original)


def make_action(jail_name="manual", **options):
    jail = BanList(jail_name)
    options.setdefault("port", "http,https")
    return jail, action_module.Action(jail, "floodguard_nftables", **options)


def ban(action, jail, ip):
    jail.banned.append(ip)
    action.ban({"ip": ip})


def unban(action, jail, ip):
    jail.banned.remove(ip)
    action.unban({"ip": ip})


# option parsing


@pytest.mark.parametrize(
    "port, protocol, expected",
    [
        ("http,https", "tcp", "meta l4proto { tcp } th dport { 80, 443 }"),
        ("80 8000:8080", "tcp,udp", "meta l4proto { tcp, udp } th dport { 80, 8000-8080 }"),
        ("0:65535", "tcp", "meta l4proto { tcp }"),
        ("all", "all", ""),
    ],
)
def test_port_and_protocol_become_an_nft_match(port, protocol, expected):
    assert action_module.build_match(port, protocol) == expected


@pytest.mark.parametrize(
    "options, fragment",
    [
        ({"port": "no-such-service"}, "port: unknown service name 'no-such-service'"),
        ({"port": "90:80"}, "range '90:80' is reversed"),
        ({"port": "70000"}, "outside 0-65535"),
        ({"protocol": "icmp"}, "protocol: 'icmp' is not a protocol with ports"),
        ({"protocol": "all"}, "set port=all too"),
        ({"blocktype": "accept"}, "blocktype: 'accept'"),
        ({"name": "web; flush ruleset"}, "name: 'web; flush ruleset'"),
        ({"flushdelay": "5"}, "flushdelay"),
        ({"ticketwait": "10"}, "ticketwait: '10' s"),
        ({"ticketwait": "soon"}, "ticketwait numbers of seconds"),
        ({"allowlist": "192.0.2.1 office.example"}, "allowlist: 'office.example' is not an IP address"),
    ],
)
def test_bad_options_are_refused_with_the_option_named(options, fragment):
    with pytest.raises(action_module.NftablesConfigError, match=fragment.replace("(", r"\(")):
        make_action(**options)


@pytest.mark.parametrize(
    "ip, expected",
    [
        ("192.0.2.7", ((4, False), "192.0.2.7")),
        ("2001:db8::7", ((6, False), "2001:db8::7")),
        ("192.0.2.0/24", ((4, True), "192.0.2.0/24")),
        ("2001:db8:1::/48", ((6, True), "2001:db8:1::/48")),
        ("::ffff:192.0.2.7", ((4, False), "192.0.2.7")),
        ("192.0.2.7/32", ((4, False), "192.0.2.7")),
        ("not-an-address", None),
    ],
)
def test_ticket_address_chooses_set_and_element(ip, expected):
    assert action_module.element_of(ip) == expected


def test_element_commands_add_bans_and_delete_unbans_whether_present_or_not():
    assert action_module.element_commands("f2b-manual-v4", ["192.0.2.1", "192.0.2.2"], True) == (
        "add element inet floodguard f2b-manual-v4 { 192.0.2.1, 192.0.2.2 }")
    assert action_module.element_commands("f2b-manual-v4net", ["192.0.2.0/24"], False) == (
        "add element inet floodguard f2b-manual-v4net { 192.0.2.0/24 }\n"
        "delete element inet floodguard f2b-manual-v4net { 192.0.2.0/24 }")


# the firewall side, real nft in a private network namespace


@pytest.mark.usefixtures("netns")
def test_bans_and_unbans_reach_the_sets_in_batches():
    jail, action = make_action()
    action.start()
    try:
        v4 = ["198.18.%d.%d" % (i // 250, i % 250 + 1) for i in range(6000)]
        for ip in v4 + ["2001:db8::1", "203.0.113.0/24", "2001:db8:1::/48"]:
            ban(action, jail, ip)
        assert wait_for(lambda: len(elements("f2b-manual-v4")) == 6000)
        assert elements("f2b-manual-v6") == ["2001:db8::1"]
        assert elements("f2b-manual-v4net") == ["203.0.113.0/24"]
        assert elements("f2b-manual-v6net") == ["2001:db8:1::/48"]
        chain = nft("list", "chain", "inet", "floodguard", "f2b-manual")
        assert "hook input priority filter - 10;" in chain
        assert "tcp dport { 80, 443 } ip saddr @f2b-manual-v4 drop" in chain
        for ip in v4[:5999] + ["203.0.113.0/24"]:
            unban(action, jail, ip)
        # the calls may land in two batches: wait for the last one
        assert wait_for(lambda: elements("f2b-manual-v4net") == [])
        assert elements("f2b-manual-v4") == [v4[5999]]
    finally:
        action.stop()
    assert "f2b-manual" not in nft("list", "table", "inet", "floodguard")


@pytest.mark.usefixtures("netns")
def test_unban_while_ban_is_pending_leaves_the_address_unbanned():
    jail, action = make_action(flushdelay="0.3")
    action.start()
    try:
        ban(action, jail, "192.0.2.1")
        ban(action, jail, "192.0.2.2")
        unban(action, jail, "192.0.2.1")  # within the flush delay: both calls are still pending
        assert wait_for(lambda: elements("f2b-manual-v4") == ["192.0.2.2"])
        time.sleep(0.4)
        assert elements("f2b-manual-v4") == ["192.0.2.2"]
        # unbanning what the set does not hold must not fail the batch it is in
        action.unban({"ip": "192.0.2.99"})
        unban(action, jail, "192.0.2.2")
        assert wait_for(lambda: elements("f2b-manual-v4") == [])
    finally:
        action.stop()


@pytest.mark.usefixtures("netns")
def test_stop_flushes_pending_bans_and_leaves_other_jails_alone():
    other_jail, other = make_action("other")
    other.start()
    ban(other, other_jail, "192.0.2.50")
    jail, action = make_action(flushdelay="1")
    action.start()
    ban(action, jail, "192.0.2.1")
    assert action.flush() is True  # fail2ban-client unban --all: pending bans are dropped too
    ban(action, jail, "192.0.2.2")
    action.stop()
    assert wait_for(lambda: elements("f2b-other-v4") == ["192.0.2.50"])
    listing = nft("list", "table", "inet", "floodguard")
    assert "f2b-manual" not in listing and "chain f2b-other" in listing
    other.stop()


@pytest.mark.usefixtures("netns")
def test_overlapping_network_is_logged_and_does_not_lose_the_batch(caplog):
    jail, action = make_action()
    action.start()
    try:
        ban(action, jail, "10.0.0.0/8")
        assert wait_for(lambda: elements("f2b-manual-v4net") == ["10.0.0.0/8"])
        with caplog.at_level(logging.ERROR):
            for ip in ("10.1.0.0/16", "172.16.0.0/12", "192.0.2.1"):
                ban(action, jail, ip)
            assert wait_for(lambda: elements("f2b-manual-v4net") == ["10.0.0.0/8", "172.16.0.0/12"])
            assert wait_for(lambda: "cannot ban 10.1.0.0/16" in caplog.text)
        assert wait_for(lambda: elements("f2b-manual-v4") == ["192.0.2.1"])
    finally:
        action.stop()


@pytest.mark.usefixtures("netns")
def test_lost_ruleset_is_rebuilt_with_every_current_ban(caplog):
    jail, action = make_action()
    action.start()
    try:
        for ip in ("192.0.2.1", "192.0.2.2", "2001:db8::2"):
            ban(action, jail, ip)
        assert wait_for(lambda: len(elements("f2b-manual-v4")) == 2)
        assert action.consistencyCheck() is True
        nft("flush", "ruleset")  # what a firewall reload does
        with caplog.at_level(logging.WARNING):
            ban(action, jail, "192.0.2.3")  # this batch fails, then the repair reloads every ban
            assert wait_for(lambda: "rebuilt with 4 bans" in caplog.text)
        assert elements("f2b-manual-v4") == ["192.0.2.1", "192.0.2.2", "192.0.2.3"]
        assert elements("f2b-manual-v6") == ["2001:db8::2"]
        nft("flush", "ruleset")
        assert action.consistencyCheck() is True  # fail2ban's own check repairs it too
        assert len(elements("f2b-manual-v4")) == 3
    finally:
        action.stop()


@pytest.mark.usefixtures("netns")
def test_reload_with_new_ports_keeps_the_bans():
    jail, action = make_action()
    action.start()
    try:
        ban(action, jail, "192.0.2.1")
        assert wait_for(lambda: elements("f2b-manual-v4") == ["192.0.2.1"])
        action.clearAllParams()
        action.reload(port="8443", protocol="tcp", blocktype="reject", chainpriority="-5")
        chain = nft("list", "chain", "inet", "floodguard", "f2b-manual")
        assert "priority filter - 5;" in chain and "tcp dport 8443 ip saddr @f2b-manual-v4 reject" in chain
        assert elements("f2b-manual-v4") == ["192.0.2.1"]
    finally:
        action.stop()


@pytest.mark.usefixtures("netns")
@pytest.mark.parametrize("options, sleeptime", [({}, 0.2), ({"ticketwait": "0.5"}, 0.5), ({"ticketwait": "0"}, 2)])
def test_start_shortens_the_wait_of_fail2bans_actions_thread(options, sleeptime):
    # fail2ban's own waits grow to 0.8 s between looks at new tickets: most of a ban's reaction time.
    jail, action = make_action(**options)
    action.start()
    try:
        assert jail.actions.sleeptime == sleeptime
    finally:
        action.stop()


def test_the_action_declares_that_it_bans_networks():
    # fail2ban_ban reads this (fail2ban-client get JAIL action NAME supports_networks) before a CIDR ban.
    assert action_module.Action.supports_networks is True


@pytest.mark.usefixtures("netns")
def test_allowlisted_addresses_leave_the_chain_before_the_ban_rules():
    jail, action = make_action(allowlist="192.0.2.0/25 192.0.2.1 10.0.0.0/8, 2001:db8::/32")
    action.start()
    try:
        ban(action, jail, "192.0.2.1")  # banned in fail2ban and in the set, yet let through
        assert wait_for(lambda: elements("f2b-manual-v4") == ["192.0.2.1"])
        rules = [line.strip() for line in nft("list", "chain", "inet", "floodguard", "f2b-manual").splitlines() if "saddr" in line]
        assert rules[0] == "ip saddr { 10.0.0.0/8, 192.0.2.0/25 } return"
        assert rules[1] == "ip6 saddr 2001:db8::/32 return"
        assert all("return" not in rule for rule in rules[2:]) and len(rules) == 6
    finally:
        action.stop()
