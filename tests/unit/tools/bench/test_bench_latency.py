# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tools/bench/latency.py: where an attack's latency went, from fail2ban.log (lines as fail2ban 1.0.2 writes them)."""

from __future__ import annotations

import datetime
import types

import bench_modules

latency = bench_modules.load("latency")

# fail2ban.log of one attack on the bench's web host (fail2ban 1.0.2, Debian 12), another jail and address mixed in.
LOG = """2026-12-01 13:07:21,101 fail2ban.filter         [812]: INFO    [nginx-req-limit] Found 172.29.50.101 - 2026-12-01 13:07:21
2026-12-01 13:07:21,104 fail2ban.filter         [812]: INFO    [nginx-req-limit] Found 172.29.50.1011 - 2026-12-01 13:07:21
2026-12-01 13:07:21,107 fail2ban.filter         [812]: INFO    [nginx-req-limit] Found 172.29.50.101 - 2026-12-01 13:07:21
2026-12-01 13:07:21,108 fail2ban.filter         [812]: INFO    [sshd] Found 172.29.50.101 - 2026-12-01 13:07:21
2026-12-01 13:07:21,121 fail2ban.actions        [812]: NOTICE  [nginx-req-limit] Ban 172.29.50.101
2026-12-01 13:07:21,125 fail2ban.filter         [812]: INFO    [nginx-req-limit] Found 172.29.50.101 - 2026-12-01 13:07:21
"""


def epoch(text):
    return datetime.datetime.strptime(text, "%Y-%m-%d %H:%M:%S,%f").timestamp()


def test_found_notices_are_those_of_the_jail_and_the_exact_address():
    assert latency.found_epochs(LOG, "172.29.50.101") == [epoch("2026-12-01 13:07:21,101"), epoch("2026-12-01 13:07:21,107"),
                                                          epoch("2026-12-01 13:07:21,125")]
    assert latency.found_epochs(LOG, "172.29.50.101", jail="sshd") == [epoch("2026-12-01 13:07:21,108")]
    assert latency.found_epochs(LOG, "172.29.50.102") == []


def test_the_breakdown_splits_rejection_to_drop_at_found_and_ban():
    host = types.SimpleNamespace(exec=lambda *_argv, **_options: types.SimpleNamespace(stdout=LOG))
    ban = epoch("2026-12-01 13:07:21,121")
    reject = epoch("2026-12-01 13:07:21,090")
    parts = latency.breakdown(host, "172.29.50.101", reject, ban, ban + 0.012, maxretry=2)
    # The filter read the first rejection 11 ms after it; the ticket was due at the second "Found" and waited
    # 14 ms for the actions thread; a "Found" after the "Ban" (requests already on their way) does not count.
    assert parts == {"reject_to_found_s": 0.011, "found_to_last_found_s": 0.006, "found_to_ban_s": 0.014,
                     "reject_to_fail2ban_ban_s": 0.031, "fail2ban_ban_to_drop_s": 0.012}
    # With maxretry 1 the first "Found" makes the ticket due.
    assert latency.breakdown(host, "172.29.50.101", reject, ban, ban + 0.012)["found_to_ban_s"] == 0.02
    # Fewer "Found" notices than maxretry (a log rotated away): no split.
    assert "found_to_ban_s" not in latency.breakdown(host, "172.29.50.101", reject, ban, ban + 0.012, maxretry=3)


def test_the_jails_maxretry_comes_from_fail2ban():
    answers = {0: "2\n", 1: ""}
    for returncode, expected in ((0, 2), (1, 1)):
        host = types.SimpleNamespace(exec=lambda *_argv, code=returncode, **_options: types.SimpleNamespace(
            returncode=code, stdout=answers[code]))
        assert latency.jail_maxretry(host) == expected


def test_without_found_notices_only_the_ban_split_is_given():
    host = types.SimpleNamespace(exec=lambda *_argv, **_options: types.SimpleNamespace(stdout=""))
    parts = latency.breakdown(host, "172.29.50.101", 10.0, 10.2, 10.25)
    assert set(parts) == {"reject_to_fail2ban_ban_s", "fail2ban_ban_to_drop_s"}


def test_a_system_with_a_slow_poll_gets_fewer_attacks(monkeypatch):
    monkeypatch.setattr(latency.time, "sleep", lambda _seconds: None)
    monkeypatch.setattr(latency, "attack", lambda _host, source, _maxretry: {"source": source, "latency_s": 1.0})
    for spec, kind, expected in (({"poll_s": 10}, "crowdsec", latency.SETTINGS["slow_poll_runs"]),
                                 ({"poll_s": 1}, "crowdsec", 20), ({}, "fail2ban", 20)):
        host = types.SimpleNamespace(spec=spec, kind=kind, action="system",
                                     exec=lambda *_argv, **_options: types.SimpleNamespace(returncode=0, stdout="2"))
        args = types.SimpleNamespace(latency_runs=20, sources=["172.29.50.%d" % number for number in range(100, 130)])
        outcome = latency.run(host, args)
        assert outcome["summary"]["n"] == expected and len(args.sources) == 30 - expected
