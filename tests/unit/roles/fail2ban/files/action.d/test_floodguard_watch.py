# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tests of the self-healing of the ban actions (roles/fail2ban/files/action.d/floodguard_watch.py, as
floodguard_nftables.py loads it).

The parsers run on output captured from real runs on Debian 12: netlink events of `nft` commits
(fixtures/), `iptables-save` and `nft -j list table` (the drift report's captures, one home:
tests/unit/plugins/module_utils/fixtures/enforcement-*). The healing runs against the kernel in a
private network namespace (root and nft needed, skipped otherwise), with the action of
test_floodguard_nftables.py.
"""

from __future__ import annotations

import binascii
import json
import logging
import sqlite3
import time
import types
import subprocess
from pathlib import Path

import pytest

# pytest puts this directory on sys.path ("action.d" is no package name).
from test_floodguard_nftables import (  # noqa: F401  pylint: disable=unused-import
    action_module, ban, elements, make_action, private_network_namespace)
from ansible_collections.floodguard.shield.tests.unit.roles.fail2ban.actions import wait_for

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHARED_FIXTURES = Path(__file__).resolve().parents[4] / "plugins" / "module_utils" / "fixtures"
# The module floodguard_nftables.py loaded from next to itself.
watch_module = action_module.watch


def fixture_text(name):
    path = FIXTURES / name if (FIXTURES / name).exists() else SHARED_FIXTURES / ("enforcement-" + name)
    return path.read_text(encoding="utf-8")


# netlink events


def test_commits_name_the_process_of_every_nftables_transaction():
    # Captured while `nft add table`, `nft add set`, `nft add element` and `nft flush ruleset` ran,
    # then a libnftables call from python3: one read per line.
    reads = [binascii.unhexlify(line) for line in fixture_text("netlink-nftables-events-bookworm.hex").split()]
    commits = [commit for data in reads for commit in watch_module.commits_in(data)]
    assert [name for _pid, name in commits] == ["nft", "nft", "nft", "nft"]
    assert all(pid > 0 for pid, _name in commits)
    # Element and table messages are not commits.
    assert watch_module.commits_in(reads[0]) == []


def test_commits_of_this_process_are_not_external():
    own = next(iter(watch_module.own_thread_names()))
    assert watch_module.external([(1, own), (2, "nft")]) == [(2, "nft")]


def test_a_truncated_netlink_read_ends_the_parse():
    assert watch_module.commits_in(b"\x02\x00\x00\x00") == []
    assert watch_module.commits_in(b"\x00" * 16) == []


# iptables


def test_iptables_save_gives_the_banned_sources_of_a_chain():
    chains = watch_module.rules_by_chain(fixture_text("iptables-save-bookworm.txt"))
    assert watch_module.banned_sources(chains["f2b-ipt"]) == {"198.51.100.0/24", "203.0.113.8"}
    assert ["-p", "tcp", "-m", "multiport", "--dports", "80,443", "-j", "f2b-ipt"] in chains["INPUT"]
    chains6 = watch_module.rules_by_chain(fixture_text("ip6tables-save-bookworm.txt"))
    assert watch_module.banned_sources(chains6["f2b-ipt"]) == {"2001:db8::8"}


# nftables drift


def settings():
    return action_module.Settings("manual", port="all", protocol="tcp,udp")


WANTED = {((4, False), "198.51.100.9"), ((4, False), "203.0.113.7"), ((4, True), "192.0.2.0/24"), ((6, False), "2001:db8::9")}


def test_a_table_holding_every_ban_is_enforced():
    state = watch_module.table_state(json.loads(fixture_text("nft-list-table-bookworm.json")))
    assert state["sets"]["f2b-manual-v4net"] == {"192.0.2.0/24"}
    assert watch_module.drift(settings(), state, WANTED) == ("", [])


def test_missing_bans_are_counted_with_their_set():
    state = watch_module.table_state(json.loads(fixture_text("nft-list-table-bookworm.json")))
    wanted = WANTED | {((4, False), "203.0.113.99")}
    assert watch_module.drift(settings(), state, wanted) == ("1 of 3 bans missing from set f2b-manual-v4", ["203.0.113.99"])


def test_a_flushed_chain_is_not_enforced_even_with_full_sets():
    state = watch_module.table_state(json.loads(fixture_text("nft-list-table-chain-flushed-bookworm.json")))
    problem, missing = watch_module.drift(settings(), state, WANTED)
    assert problem == "chain f2b-manual lost its ban rules"
    assert missing == []


def test_a_missing_table_misses_every_ban():
    problem, missing = watch_module.drift(settings(), None, WANTED)
    assert problem == "table inet floodguard is gone"
    assert missing == sorted(element for _key, element in WANTED)


def test_elements_with_comments_and_ranges_are_read():
    assert watch_module.element_text({"elem": {"val": "192.0.2.7", "comment": "x"}}) == "192.0.2.7"
    assert watch_module.element_text({"range": ["192.0.2.1", "192.0.2.9"]}) == "192.0.2.1-192.0.2.9"


# healing against the kernel


def nft_in_namespace(*argv):
    subprocess.run(["nft", *argv], check=True, capture_output=True, text=True)


@pytest.mark.parametrize("fault", [
    ["flush", "ruleset"],
    ["delete", "table", "inet", "floodguard"],
    ["flush", "set", "inet", "floodguard", "f2b-manual-v4"],
    ["flush", "chain", "inet", "floodguard", "f2b-manual"],
])
def test_the_action_restores_its_bans_after_a_fault(netns, fault, caplog):
    jail, action = make_action()
    action.start()
    try:
        for ip in ("192.0.2.7", "192.0.2.8"):
            ban(action, jail, ip)
        assert wait_for(lambda: elements("f2b-manual-v4") == ["192.0.2.7", "192.0.2.8"])

        def healed():
            return [record.getMessage() for record in caplog.records if "were not enforced" in record.getMessage()]

        with caplog.at_level(logging.WARNING):
            nft_in_namespace(*fault)
            assert wait_for(lambda: healed() and action._heal.drift() == ("", []), timeout=10)  # pylint: disable=protected-access
            time.sleep(0.5)  # a second heal line would show now
        assert elements("f2b-manual-v4") == ["192.0.2.7", "192.0.2.8"]
        healed = healed()
        assert len(healed) == 1, healed
        assert "nftables changed by nft[" in healed[0]
    finally:
        action.stop()


# boot: waiting for the restored bans


def test_unexpired_bans_are_read_from_fail2bans_database(tmp_path):
    database = tmp_path / "fail2ban.sqlite3"
    with sqlite3.connect(database) as connection:
        # The table as fail2ban 1.0 and 1.1 create it.
        connection.execute("CREATE TABLE bips(ip TEXT NOT NULL, jail TEXT NOT NULL, timeofban INTEGER NOT NULL, "
                           "bantime INTEGER NOT NULL, bancount INTEGER NOT NULL default 1, data JSON, PRIMARY KEY(ip, jail))")
        connection.executemany("INSERT INTO bips(ip, jail, timeofban, bantime) VALUES (?, ?, ?, ?)", [
            ("192.0.2.1", "manual", 1000, 600), ("192.0.2.2", "manual", 100, 600),
            ("192.0.2.0/24", "manual", 100, -1), ("2001:db8::1", "web", 1000, 600)])
    assert watch_module.unexpired_bans(str(database), now=1200) == {
        "manual": {"192.0.2.1", "192.0.2.0/24"}, "web": {"2001:db8::1"}}
    assert watch_module.unexpired_bans(str(tmp_path / "none.sqlite3"), now=0) == {}


def test_the_bans_to_wait_for_are_noted_before_fail2ban_starts(tmp_path):
    database = tmp_path / "fail2ban.sqlite3"
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TABLE bips(ip TEXT NOT NULL, jail TEXT NOT NULL, timeofban INTEGER NOT NULL, "
                           "bantime INTEGER NOT NULL, bancount INTEGER NOT NULL default 1, data JSON, PRIMARY KEY(ip, jail))")
        connection.execute("INSERT INTO bips(ip, jail, timeofban, bantime) VALUES ('192.0.2.1', 'manual', 0, -1)")
    noted = tmp_path / "restored.json"
    watch_module.save_restored(str(noted), database=str(database))
    assert watch_module.saved_restored(str(noted)) == {"manual": {"192.0.2.1"}}
    assert watch_module.saved_restored(str(tmp_path / "none.json")) is None


def test_a_database_that_cannot_be_read_is_not_taken_for_no_bans(tmp_path):
    # The boot wait reads it again instead of waiting for nothing (fail2ban writes it while it starts).
    database = tmp_path / "fail2ban.sqlite3"
    sqlite3.connect(database).execute("CREATE TABLE other(x)").connection.commit()
    with pytest.raises(sqlite3.Error):
        watch_module.unexpired_bans(str(database), now=0)


def test_bans_that_ignoreip_covers_are_not_waited_for():
    assert watch_module.ignored("192.0.2.7", ["127.0.0.1/8", "192.0.2.0/24"])
    assert watch_module.ignored("192.0.2.0/25", ["192.0.2.0/24"])
    assert not watch_module.ignored("198.51.100.7", ["192.0.2.0/24", "::1"])
    assert not watch_module.ignored("2001:db8::1", ["192.0.2.0/24", "not-an-address"])


def test_fail2ban_client_lists_are_read():
    assert watch_module.listed("['192.0.2.1', '2001:db8::1']") == ["192.0.2.1", "2001:db8::1"]
    # As fail2ban 1.0 prints them (tests/unit/plugins/module_utils/fixtures: ignoreip).
    assert watch_module.tree_items("These IP addresses/networks are ignored:\n|- 127.0.0.0/8\n|- ::1\n`- 192.0.2.10") == [
        "127.0.0.0/8", "::1", "192.0.2.10"]
    status = "Status\n|- Number of jail:\t2\n`- Jail list:\tmanual, nginx-req-limit"
    assert watch_module.jail_list(status) == ["manual", "nginx-req-limit"]


def test_a_watch_without_events_checks_periodically_and_stops_at_once():
    causes = []
    watch = watch_module.CommitWatch(lambda cause: causes.append(cause) or True, "test", logging.getLogger("test"),
                                     interval=0.05, events=False)
    watch.start()
    assert wait_for(lambda: len(causes) >= 2)
    started = time.monotonic()
    watch.stop()
    assert time.monotonic() - started < 1
    assert set(causes) == {"periodic check"}


def test_a_failed_check_is_retried(netns):  # pylint: disable=unused-argument  # the socket needs its own namespace
    results = [False, True]
    causes = []
    watch = watch_module.CommitWatch(lambda cause: causes.append(cause) or results.pop(0), "test", logging.getLogger("test"),
                                     interval=0.1, settle=0.01)
    watch.start()
    try:
        nft_in_namespace("add", "table", "inet", "floodguard_watch_test")
        assert wait_for(lambda: len(causes) == 2)
        assert causes[0].startswith("nftables changed by nft[") and causes[1] == "retry"
    finally:
        watch.stop()


def test_the_iptables_watch_stays_over_a_fail2ban_reload():
    # fail2ban keeps a Python action over `fail2ban-client reload` only if it has both methods.
    jail = types.SimpleNamespace(name="web")
    action = watch_module.IptablesWatch(jail, "floodguard_watch", name="web")
    assert hasattr(action, "clearAllParams") and hasattr(action, "reload")
    action.clearAllParams()
    action.reload(name="web2")
    assert action._chain == "f2b-web2"  # pylint: disable=protected-access
