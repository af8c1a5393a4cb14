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
import sqlite3
import subprocess
import sys
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
        ({"sleepinterval": "0.5"}, "sleepinterval: '0.5' s; use 0"),
        ({"sleepinterval": "0.0001"}, "sleepinterval: '0.0001' s"),
        ({"sleepinterval": "fast"}, "flushdelay, sleepinterval and ticketwait numbers"),
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
        # a loaded machine may split the burst into batches: wait for the last one
        assert wait_for(lambda: elements("f2b-manual-v6net") == ["2001:db8:1::/48"])
        assert elements("f2b-manual-v6") == ["2001:db8::1"]
        assert elements("f2b-manual-v4net") == ["203.0.113.0/24"]
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
def test_a_stopping_jail_keeps_dropping_until_stop_removes_its_sets_and_unban_all_empties_them():
    jail, action = make_action()
    action.start()
    ban(action, jail, "192.0.2.1")
    assert wait_for(lambda: elements("f2b-manual-v4") == ["192.0.2.1"])
    assert action.flush() is True  # fail2ban-client unban --all: the jail runs on, its sets are emptied
    assert elements("f2b-manual-v4") == []
    ban(action, jail, "192.0.2.2")
    assert wait_for(lambda: elements("f2b-manual-v4") == ["192.0.2.2"])
    # A stop (or restart): fail2ban goes through every ticket after flush(), seconds at 100,000 bans.
    jail.actions.active = False
    assert action.flush() is True
    assert elements("f2b-manual-v4") == ["192.0.2.2"]
    action.stop()
    assert "f2b-manual" not in nft("list", "table", "inet", "floodguard")


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
@pytest.mark.parametrize("options, sleeptime", [({}, 0.02), ({"ticketwait": "0.5"}, 0.5), ({"ticketwait": "0"}, 2)])
def test_start_shortens_the_wait_of_fail2bans_actions_thread(options, sleeptime):
    # fail2ban's own waits grow to 0.8 s between looks at new tickets: most of a ban's reaction time. A wait
    # of one sleep step (0.02 s) looks every 20 ms; a longer one sleeps 20, 40, 60 ... ms in turn.
    jail, action = make_action(**options)
    action.start()
    try:
        assert jail.actions.sleeptime == sleeptime
    finally:
        action.stop()


@pytest.fixture(name="sleep_step")
def fail2bans_sleep_step():
    """fail2ban's process-wide sleep step (Utils.DEFAULT_SLEEP_INTERVAL), put back after the test."""
    utils = sys.modules["fail2ban.server.utils"].Utils
    original = utils.DEFAULT_SLEEP_INTERVAL
    utils.DEFAULT_SLEEP_INTERVAL = 0.2
    yield utils
    utils.DEFAULT_SLEEP_INTERVAL = original


@pytest.mark.usefixtures("netns")
@pytest.mark.parametrize("options, step", [({}, 0.02), ({"sleepinterval": "0.05"}, 0.05), ({"sleepinterval": "0"}, 0.2)])
def test_start_sets_fail2bans_sleep_step(sleep_step, options, step):
    # Every wait of fail2ban's actions thread is a multiple of the step: a capped wait is still one 0.2 s step.
    _jail, action = make_action(**options)
    action.start()
    try:
        assert sleep_step.DEFAULT_SLEEP_INTERVAL == step
        # Another jail's action never makes the step longer again (it is the whole process's).
        _other_jail, other = make_action("other", sleepinterval="0.1")
        other.start()
        assert sleep_step.DEFAULT_SLEEP_INTERVAL == min(step, 0.1)
        other.stop()
    finally:
        action.stop()


@pytest.mark.usefixtures("netns")
def test_a_lone_ban_does_not_wait_for_the_flush_delay_and_a_burst_does():
    jail, action = make_action(flushdelay="1")
    action.start()
    try:
        started = time.monotonic()
        ban(action, jail, "192.0.2.1")  # one attacker: written after a few milliseconds
        assert wait_for(lambda: elements("f2b-manual-v4") == ["192.0.2.1"], timeout=0.8)
        assert time.monotonic() - started < 0.8
        started = time.monotonic()
        for number in range(2, 40):  # a burst: gathered for the whole flush delay, then one batch
            ban(action, jail, "192.0.2.%d" % number)
        time.sleep(0.5)
        assert elements("f2b-manual-v4") == ["192.0.2.1"]
        assert wait_for(lambda: len(elements("f2b-manual-v4")) == 39, timeout=2)
        assert time.monotonic() - started >= 1
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


# the bulk window (fail2ban_ban opens it for 1,000 addresses or more)

batching_module = load_action("floodguard_batching.py")


def ban_record(jail_name, ip, restored=False, msg="[%s] %sBan %s"):
    """A record as fail2ban's actions thread logs a ban (fail2ban/server/actions.py, 1.0 and 1.1)."""
    args = (jail_name, "Restore " if restored else "", ip) if msg.count("%s") == 3 else (jail_name, ip)
    return logging.LogRecord("fail2ban.actions", 25, __file__, 1, msg, args, None)


def test_bulk_window_leaves_out_only_new_bans_of_its_jail():
    now = [1000.0]
    bulk = batching_module.BulkBanLog("manual", clock=lambda: now[0])
    assert bulk.filter(ban_record("manual", "198.18.0.1")) is True
    bulk.open(60)
    assert bulk.filter(ban_record("manual", "198.18.0.2")) is False
    assert bulk.filter(ban_record("nginx-req-limit", "198.18.0.4")) is True
    assert bulk.filter(ban_record("manual", "198.18.0.5", msg="[%s] Unban %s")) is True
    assert bulk.take() == (1, ["198.18.0.2"]) and bulk.take() == (0, [])
    # It closes by itself: a module killed midway does not silence the jail for good.
    now[0] += 61
    assert bulk.filter(ban_record("manual", "198.18.0.6")) is True
    bulk.open(60)
    bulk.close()
    assert bulk.filter(ban_record("manual", "198.18.0.7")) is True


def test_bulk_window_property_opens_closes_and_logs_one_summary_line(caplog):
    jail, action = make_action(jail_name="bulk-jail")
    action.bulk_window = "60"  # as fail2ban-client set JAIL action NAME bulk_window 60 gives it
    assert 59 < action.bulk_window <= 60
    bulk = batching_module.bulk_ban_log("bulk-jail")
    assert bulk is action._bulk_log and len([f for f in logging.getLogger("fail2ban.actions").filters if f is bulk]) == 1
    for index in range(7):
        assert bulk.filter(ban_record("bulk-jail", "198.18.0.%d" % (index + 1))) is False
    with caplog.at_level(logging.INFO):
        action.bulk_window = "0"
    assert action.bulk_window == 0
    lines = [record.getMessage() for record in caplog.records if "in bulk" in record.getMessage()]
    assert lines == ["[bulk-jail] Ban 7 addresses in bulk (fail2ban_ban; one line for all, fail2ban-client get "
                     "bulk-jail banned lists each): 198.18.0.1, 198.18.0.2, 198.18.0.3, 198.18.0.4, 198.18.0.5, ..."]
    with pytest.raises(ValueError, match="bulk_window: 'soon' is not a number of seconds"):
        action.bulk_window = "soon"
    action.bulk_window = "100000"
    assert action.bulk_window <= batching_module.BULK_WINDOW_MAX_S
    action.bulk_window = "0"
    assert jail.name == "bulk-jail"


def test_restored_bans_and_unbans_at_a_stop_are_summed_up():
    bulk = batching_module.BulkBanLog("manual")
    # "Restore Ban" lines (each ban again at every start) always; other jails' never.
    assert bulk.filter(ban_record("manual", "198.18.0.3", restored=True)) is False
    assert bulk.filter(ban_record("sshd", "198.18.0.4", restored=True)) is True
    # "Unban" lines only while the jail stops (flush() sees fail2ban's actions thread stopped).
    assert bulk.filter(ban_record("manual", "198.18.0.5", msg="[%s] Unban %s")) is True
    bulk.stopping = True
    assert bulk.filter(ban_record("manual", "198.18.0.6", msg="[%s] Unban %s")) is False
    assert bulk.filter(ban_record("sshd", "198.18.0.7", msg="[%s] Unban %s")) is True
    assert bulk.take("restore") == (1, ["198.18.0.3"]) and bulk.take("unban") == (1, ["198.18.0.6"])
    assert bulk.take("ban") == (0, [])


@pytest.mark.usefixtures("netns")
def test_a_stopping_jail_sums_up_its_unban_lines(caplog):
    jail, action = make_action(jail_name="stopping-jail")
    action.start()
    action.flush()  # fail2ban-client unban --all: the jail keeps running, its "Unban" lines stay
    assert action._bulk_log.stopping is False
    jail.actions.active = False  # as fail2ban's actions thread is when the jail stops
    action.flush()
    assert action._bulk_log.filter(ban_record("stopping-jail", "198.18.0.9", msg="[%s] Unban %s")) is False
    with caplog.at_level(logging.INFO):
        action.stop()
    assert action._bulk_log.stopping is False
    assert ["[stopping-jail] Unban 1 addresses as the jail stops (one line for all; stopping-jail's bans stay in the "
            "database): 198.18.0.9"] == [record.getMessage() for record in caplog.records if "as the jail stops" in record.getMessage()]


# the restore after a restart


class RestoringJail(BanList):
    """A jail as fail2ban's restore sees it: a database of bans, a bantime, ignoreip, a ticket queue."""

    def __init__(self, name, database, bantime=3600, ignoreip=("127.0.0.1/8",), increment=False):
        super().__init__(name)
        self.database = types.SimpleNamespace(filename=str(database))
        self.actions.getBanTime = lambda: bantime
        self.filter = types.SimpleNamespace(ignoreCommand=None, ignoreSelf=False, getIgnoreIP=lambda: list(ignoreip))
        self.increment, self.bantime = increment, bantime
        self.hasFailTickets = False

    def getBanTimeExtra(self, option=None):  # pylint: disable=invalid-name  # fail2ban's names
        return self.increment if option == "increment" else {}

    def getMaxBanTime(self):  # pylint: disable=invalid-name
        return self.bantime


def ban_database(path, rows):
    """fail2ban's table of current bans (bips), with rows (ip, jail, seconds ago, bantime)."""
    connection = sqlite3.connect(str(path))
    connection.execute("CREATE TABLE bips(ip TEXT NOT NULL, jail TEXT NOT NULL, timeofban INTEGER NOT NULL, "
                       "bantime INTEGER NOT NULL, bancount INTEGER NOT NULL default 1, data JSON, PRIMARY KEY(ip, jail))")
    now = time.time()
    connection.executemany("INSERT INTO bips(ip, jail, timeofban, bantime) VALUES (?, ?, ?, ?)",
                           [(ip, jail, now - ago, bantime) for ip, jail, ago, bantime in rows])
    connection.commit()
    connection.close()
    return path


def test_restorable_bans_are_those_fail2ban_restores(tmp_path):
    database = ban_database(tmp_path / "fail2ban.sqlite3", [
        ("192.0.2.1", "manual", 10, 3600),       # current
        ("192.0.2.2", "manual", 7200, 3600),     # expired
        ("192.0.2.3", "manual", 10, -1),         # persistent
        ("192.0.2.4", "other", 10, 3600),        # another jail's
        ("192.0.2.5", "manual", 1800, 86400),    # longer than the jail's bantime now: corrected to 1,200 s
    ])
    watch = action_module.watch
    assert watch.restorable_bans(str(database), "manual", time.time()) == ["192.0.2.1", "192.0.2.3", "192.0.2.5"]
    # bantime.increment off: fail2ban looks back one bantime, and caps each ban at the jail's maximum.
    assert watch.restorable_bans(str(database), "manual", time.time(), forbantime=1200, max_bantime=1200) == \
        ["192.0.2.1", "192.0.2.3"]


def test_start_loads_the_bans_fail2ban_restores_before_it_restores_them(netns, tmp_path, caplog):
    database = ban_database(tmp_path / "fail2ban.sqlite3", [
        ("192.0.2.1", "manual", 10, 3600), ("2001:db8::1", "manual", 10, 3600), ("203.0.113.0/24", "manual", 10, 3600),
        ("127.0.0.9", "manual", 10, 3600),      # ignoreip: fail2ban does not restore it
        ("198.51.100.7", "manual", 10, 3600),   # ignoreip 198.51.100.0/24
        ("192.0.2.2", "manual", 7200, 3600),    # expired
    ])
    jail = RestoringJail("manual", database, ignoreip=("127.0.0.1/8", "198.51.100.0/24"))
    action = action_module.Action(jail, "floodguard_nftables", port="http,https")
    caplog.set_level(logging.INFO)
    action.start()
    try:
        # Held as start() returns: before fail2ban's restore has made a single ticket.
        assert elements("f2b-manual-v4") == ["192.0.2.1"]
        assert elements("f2b-manual-v6") == ["2001:db8::1"]
        assert elements("f2b-manual-v4net") == ["203.0.113.0/24"]
        assert "3 bans from fail2ban's database in nftables" in caplog.text
        # fail2ban's restore then bans them: nothing is written twice.
        jail.banned.append("192.0.2.1")
        action.ban({"ip": "192.0.2.1"})
        assert action._pending == {}  # pylint: disable=protected-access
        for ip in ("2001:db8::1", "203.0.113.0/24"):
            ban(action, jail, ip)
        # Every preloaded ban restored: the restore is over at once, nothing lifted.
        assert wait_for(lambda: "it restored every ban loaded at start" in caplog.text)
        assert "did not restore" not in caplog.text
        assert elements("f2b-manual-v4") == ["192.0.2.1"] and elements("f2b-manual-v4net") == ["203.0.113.0/24"]
    finally:
        action.stop()


def test_preloaded_bans_that_fail2ban_did_not_restore_are_lifted(netns, tmp_path, caplog, monkeypatch):
    database = ban_database(tmp_path / "fail2ban.sqlite3", [("192.0.2.%d" % n, "manual", 10, 3600) for n in (1, 2, 3)])
    jail = RestoringJail("manual", database)
    action = action_module.Action(jail, "floodguard_nftables", port="http,https")
    clock = types.SimpleNamespace(now=0.0)

    def pause(seconds):
        clock.now += seconds
        if clock.now == 0.25:  # fail2ban restores two of the three, then an unban lifts one of those
            for ip in ("192.0.2.1", "192.0.2.2"):
                ban(action, jail, ip)
            unban(action, jail, "192.0.2.2")

    action.start()
    try:
        with monkeypatch.context() as patched:
            patched.setattr(action_module.time, "monotonic", lambda: clock.now)  # the claims' time too
            action._settle_preloaded(clock=lambda: clock.now, pause=pause)  # pylint: disable=protected-access
        # 192.0.2.3: never restored, lifted once the restore was quiet for PRELOAD_QUIET_S.
        assert wait_for(lambda: elements("f2b-manual-v4") == ["192.0.2.1"])
        assert clock.now >= 0.25 + action_module.PRELOAD_QUIET_S
        assert "lifted 1 bans loaded from fail2ban's database at start that fail2ban did not restore (e.g. 192.0.2.3)" \
            in caplog.text
    finally:
        action.stop()


def test_a_repair_during_the_restore_lets_restored_bans_write_themselves(netns, tmp_path):
    database = ban_database(tmp_path / "fail2ban.sqlite3", [("192.0.2.1", "manual", 10, 3600)])
    jail = RestoringJail("manual", database)
    action = action_module.Action(jail, "floodguard_nftables", port="http,https")
    action.start()
    try:
        nft("flush", "set", "inet", "floodguard", "f2b-manual-v4")  # another process empties the set
        action._repair()  # pylint: disable=protected-access  # fail2ban lists nothing yet: the set stays empty
        ban(action, jail, "192.0.2.1")  # then fail2ban restores the ban: it is written again
        assert wait_for(lambda: elements("f2b-manual-v4") == ["192.0.2.1"])
    finally:
        action.stop()


def test_no_preload_where_fail2ban_runs_an_ignorecommand(netns, tmp_path):
    database = ban_database(tmp_path / "fail2ban.sqlite3", [("192.0.2.1", "manual", 10, 3600)])
    jail = RestoringJail("manual", database)
    jail.filter.ignoreCommand = "/usr/local/bin/is-ours <ip>"
    action = action_module.Action(jail, "floodguard_nftables", port="http,https")
    action.start()
    try:
        assert elements("f2b-manual-v4") == []
    finally:
        action.stop()


def test_a_restored_ban_claims_its_preloaded_element_whatever_the_spelling(netns, tmp_path, caplog):
    # The database's text and fail2ban's address may spell one IPv6 address differently: one kernel element.
    database = ban_database(tmp_path / "fail2ban.sqlite3", [("2001:DB8:0::1", "manual", 10, 3600)])
    jail = RestoringJail("manual", database)
    action = action_module.Action(jail, "floodguard_nftables", port="http,https")
    caplog.set_level(logging.INFO)
    action.start()
    try:
        assert elements("f2b-manual-v6") == ["2001:db8::1"]
        ban(action, jail, "2001:db8::1")
        assert wait_for(lambda: "it restored every ban loaded at start" in caplog.text)
        assert elements("f2b-manual-v6") == ["2001:db8::1"]
    finally:
        action.stop()
