# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""fail2ban_info's flow on verbatim fail2ban 1.0 and 1.1 output."""

from __future__ import annotations

import pytest

from ansible_collections.floodguard.shield.plugins.module_utils._enforcement import Enforcement
from ansible_collections.floodguard.shield.plugins.modules.fail2ban_info import main

# What the back ends hold is tested in test_fail2ban_info_enforcement.py; here it is taken as enforced.
ENFORCED = {"enforced": True, "backend": "nftables", "missing": 0, "missing_sample": [], "problem": ""}


@pytest.fixture(autouse=True)
def every_ban_enforced(monkeypatch):
    monkeypatch.setattr(Enforcement, "jail_report", lambda self, client, jail, banned: dict(ENFORCED))


JAILS = ["iptables-jail", "manual", "nginx-req-limit", "no-actions", "permanent", "sshd"]
HEAD = [(["version"], "version"), (["status"], "status")]


def every_jail():
    calls = []
    for jail in JAILS:
        calls += [(["status", jail], "status_all_" + jail), (["get", jail, "banip", "--with-time"], "banip_with_time_all_" + jail)]
    return calls


def test_every_jail(run_module, captured):
    for check_mode in (False, True):
        result = run_module(main, {}, captured, HEAD + every_jail(), check_mode=check_mode)[0]
        assert result["changed"] is False
        assert result["version"] == captured["_meta"]["fail2ban"]
        assert result["jail_list"] == JAILS and sorted(result["jails"]) == JAILS
        manual = result["jails"]["manual"]
        assert manual["actions"]["currently_banned"] == len(manual["actions"]["banned"]) == 251
        assert manual["filter"]["file_list"] == ["/var/log/floodguard-manual.log"]
        assert result["jails"]["sshd"]["filter"]["file_list"] == []
        assert "_COMM=sshd" in result["jails"]["sshd"]["filter"]["journal_matches"]
        permanent = result["jails"]["permanent"]["actions"]["banned"]
        assert [(ban["ip"], ban["bantime"], ban["ban_end"]) for ban in permanent] == [
            ("198.51.100.0/24", -1, None), ("198.51.100.77", -1, None)]
        assert result["jails"]["no-actions"]["actions"]["banned"] == []


def test_one_jail_with_many_bans(run_module, captured):
    result = run_module(main, {"jail": "manual"}, captured, HEAD + [
        (["status", "manual"], "status_many"), (["get", "manual", "banip", "--with-time"], "banip_with_time_many")])[0]
    assert list(result["jails"]) == ["manual"] and result["jail_list"] == JAILS
    actions = result["jails"]["manual"]["actions"]
    assert actions["currently_banned"] == 251 and len(actions["banned"]) == 251
    assert actions["banned_truncated"] is False
    assert {"2001:db8::abcd", "203.0.113.250"} <= {ban["ip"] for ban in actions["banned"]}
    assert all(ban["ban_start"] and ban["ban_end"] and ban["bantime"] >= 2592000 for ban in actions["banned"])


def test_list_limit_keeps_the_most_recent_bans(run_module, captured):
    result = run_module(main, {"jail": "manual", "list_limit": 3}, captured, HEAD + [
        (["status", "manual"], "status_many"), (["get", "manual", "banip", "--with-time"], "banip_with_time_many")])[0]
    actions = result["jails"]["manual"]["actions"]
    assert [ban["ip"] for ban in actions["banned"]] == ["203.0.113.1", "2001:db8::1", "203.0.113.250"]
    assert actions["banned_truncated"] is True and actions["currently_banned"] == 251


def test_a_journal_jail(run_module, captured):
    result = run_module(main, {"jail": "sshd"}, captured, HEAD + [
        (["status", "sshd"], "status_journal"), (["get", "sshd", "banip", "--with-time"], "banip_with_time_journal")])[0]
    sshd = result["jails"]["sshd"]
    assert sshd["filter"]["journal_matches"][0].startswith("_SYSTEMD_UNIT=ssh")
    assert sshd["actions"]["banned"] == [] and sshd["actions"]["currently_banned"] == 0


def test_which_jails_ban_an_address(run_module, captured):
    result = run_module(main, {"ip": "203.0.113.1/32"}, captured, HEAD + [
        (["banned", "203.0.113.1"], "banned_one_ip"),
        (["status", "manual"], "status_many"), (["get", "manual", "banip", "--with-time"], "banip_with_time_many")])[0]
    assert result["ip"] == "203.0.113.1" and result["banned_in"] == ["manual"]
    assert [ban["ip"] for ban in result["jails"]["manual"]["actions"]["banned"]] == ["203.0.113.1"]


def test_an_address_outside_the_jail_asked_about(run_module, captured):
    result = run_module(main, {"ip": "203.0.113.1", "jail": "sshd"}, captured, HEAD + [
        (["banned", "203.0.113.1"], "banned_one_ip")])[0]
    assert result["banned_in"] == [] and result["jails"] == {}


def test_unknown_jail_lists_the_jails(run_module, captured):
    result = run_module(main, {"jail": "nosuch"}, captured, HEAD)[0]
    assert result["failed"] is True
    assert "no jail named 'nosuch'. Its jails: iptables-jail, manual" in result["msg"]


def test_invalid_ip(run_module, captured):
    result, replay = run_module(main, {"ip": "not-an-ip"}, captured, [])
    assert result["failed"] is True and "ip is 'not-an-ip', not an IP address" in result["msg"]
    assert replay.calls == []


def test_server_down(run_module, captured):
    result = run_module(main, {}, captured, [(["version"], "server_down_version")])[0]
    assert result["failed"] is True and "systemctl start fail2ban" in result["msg"]
    assert result["rc"] == 255 and result["stderr"] == captured["server_down_version"]["stderr"]


def test_permission_denied(run_module, captured):
    # The captured refusal of `status`, answered to `version`: fail2ban-client refuses every command alike.
    denied = dict(captured["not_root_status"], argv=["fail2ban-client", "version"])
    result = run_module(main, {}, captured, [(["version"], denied)])[0]
    assert result["failed"] is True and "must run as root" in result["msg"]


def test_not_installed(run_module, captured):
    result = run_module(main, {}, captured, [], binaries={})[0]
    assert result["failed"] is True and "fail2ban is not installed" in result["msg"]
