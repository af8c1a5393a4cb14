# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""module_utils/_fail2ban_parsers.py on verbatim output of fail2ban 1.0 (Debian 12) and 1.1 (Debian 13)."""

from __future__ import annotations

import json

import pytest

from ansible_collections.floodguard.shield.plugins.module_utils import _fail2ban_parsers as parsers
from ansible_collections.floodguard.shield.tests.unit.plugins.module_utils.fail2ban_fixtures import (
    IPV4,
    IPV6,
    VERSIONS,
    load,
)

# Action commands that no captured jail runs, written for these tests (not captured): an nftables
# set with flags interval, ipsets of both kinds, and a command floodguard does not know.
INVENTED_ACTIONS = {
    "nftables_interval": ("nft add element inet f2b-table <addr_set> { <ip> }",
                          "nft add set inet f2b-table s { type ipv4_addr; flags interval; }"),
    "ipset_hash_ip": ("ipset add <ipmset> <ip>", "ipset create <ipmset> hash:ip"),
    "ipset_hash_net": ("ipset add <ipmset> <ip>", "ipset create <ipmset> hash:net"),
    "curl": ("curl https://example.invalid/ban?ip=<ip>", ""),
}


@pytest.fixture(params=VERSIONS)
def captured(request):
    return load(request.param)


def out(captured, name):
    return captured[name]["stdout"]


def test_the_fixtures_are_the_versions_they_claim():
    assert load(VERSIONS[0])["_meta"]["fail2ban"].startswith("1.0.")
    assert load(VERSIONS[0])["_meta"]["debian"].startswith("12.")
    assert load(VERSIONS[1])["_meta"]["fail2ban"].startswith("1.1.")
    assert load(VERSIONS[1])["_meta"]["debian"].startswith("13.")


def test_fixtures_are_json_of_real_runs():
    for version in VERSIONS:
        captures = load(version)
        for name, run in captures.items():
            if name == "_meta":
                continue
            assert set(run) == {"argv", "rc", "stdout", "stderr"}, name
            json.dumps(run)


def test_version(captured):
    assert parsers.parse_version(out(captured, "version")) == captured["_meta"]["fail2ban"]


def test_version_rejects_other_text(captured):
    with pytest.raises(parsers.UnexpectedOutput, match="Unexpected output"):
        parsers.parse_version(out(captured, "client_version"))


def test_jail_list(captured):
    assert parsers.parse_jail_list(out(captured, "status")) == [
        "iptables-jail", "manual", "nginx-req-limit", "no-actions", "permanent", "sshd"]


def test_jail_list_rejects_a_jail_status(captured):
    with pytest.raises(parsers.UnexpectedOutput):
        parsers.parse_jail_list(out(captured, "status_empty"))


def test_status_of_an_empty_jail(captured):
    assert parsers.parse_jail_status(out(captured, "status_empty")) == {
        "filter": {"currently_failed": 0, "total_failed": 0,
                   "file_list": ["/var/log/floodguard-manual.log"], "journal_matches": []},
        "actions": {"currently_banned": 0, "total_banned": 0, "banned": []},
    }
    assert parsers.parse_bans_with_time(out(captured, "banip_with_time_empty")) == []
    assert parsers.parse_banned(out(captured, "banned_empty")) == []


def test_status_of_a_journal_jail(captured):
    status = parsers.parse_jail_status(out(captured, "status_journal"))
    assert status["filter"]["file_list"] == []
    # Debian 13's sshd filter adds the sshd-session process of OpenSSH 9.8.
    expected = {
        "1.0": ["_SYSTEMD_UNIT=sshd.service", "_COMM=sshd"],
        "1.1": ["_SYSTEMD_UNIT=ssh.service", "_COMM=sshd", "_COMM=sshd-session"],
    }[captured["_meta"]["fail2ban"][:3]]
    assert status["filter"]["journal_matches"] == expected


def test_status_with_many_bans(captured):
    status = parsers.parse_jail_status(out(captured, "status_many"))
    banned = IPV4 + IPV6 + ["203.0.113.250"]
    assert status["actions"] == {"currently_banned": 251, "total_banned": 251, "banned": banned}


def test_bans_with_time(captured):
    bans = parsers.parse_bans_with_time(out(captured, "banip_with_time_many"))
    assert len(bans) == 251
    assert {ban["ip"] for ban in bans} == set(IPV4 + IPV6 + ["203.0.113.250"])
    first = bans[0]
    assert first["ip"] == "203.0.113.2"
    assert first["bantime"] == 30 * 86400
    assert first["ban_start"][:10] <= first["ban_end"][:10]
    assert first["ban_end"] is not None
    # Banned again: fail2ban prolongs the ban and moves it to the end.
    again = [ban for ban in bans if ban["ip"] == "203.0.113.1"][0]
    assert again["bantime"] > 30 * 86400
    assert bans[-1]["ip"] == "203.0.113.250"


def test_permanent_bans_have_no_end(captured):
    bans = parsers.parse_bans_with_time(out(captured, "banip_with_time_permanent"))
    assert [(ban["ip"], ban["bantime"], ban["ban_end"]) for ban in bans] == [
        ("198.51.100.0/24", -1, None), ("198.51.100.77", -1, None)]


def test_bans_with_time_rejects_other_text(captured):
    with pytest.raises(parsers.UnexpectedOutput):
        parsers.parse_bans_with_time(out(captured, "banned_many"))


def test_banned(captured):
    assert parsers.parse_banned(out(captured, "banned_after_ban")) == IPV4 + IPV6
    assert parsers.parse_banned(out(captured, "banned_many")) == IPV4 + IPV6 + ["203.0.113.250"]
    after = parsers.parse_banned(out(captured, "banned_after_unban"))
    assert after == IPV4[100:] + IPV6[:-1] + ["203.0.113.250"]


def test_fail2ban_lists_an_invalid_address_as_banned(captured):
    # Why the module validates addresses itself.
    assert captured["banip_not_an_ip"]["rc"] == 0
    assert parsers.parse_banned(out(captured, "banned_not_an_ip")) == ["not-an-ip"]


def test_banip_and_unbanip_print_how_many_they_changed(captured):
    # The modules do not trust these counts: they read the jail again (get <jail> banned).
    assert out(captured, "banip_many").strip() == "250"
    assert out(captured, "banip_again").strip() == "1"
    # 198.51.100.99 was not banned: fail2ban counts only what it unbanned.
    assert out(captured, "unbanip_many").strip() == "101"


def test_banned_ip(captured):
    assert parsers.parse_banned_ip(out(captured, "banned_ip")) == [["manual"], ["manual"], []]


def test_banned_rejects_other_text(captured):
    with pytest.raises(parsers.UnexpectedOutput):
        parsers.parse_banned(out(captured, "status_many"))
    with pytest.raises(parsers.UnexpectedOutput):
        parsers.parse_banned(out(captured, "banned_all"))


def test_unexpected_output_carries_the_text_for_fail_json(captured):
    with pytest.raises(parsers.UnexpectedOutput) as info:
        parsers.parse_banned(out(captured, "status_many"))
    assert info.value.result()["stdout"] == out(captured, "status_many")
    assert set(info.value.result()) == {"msg", "cmd", "rc", "stdout", "stderr"}


def test_ignoreip(captured):
    assert sorted(parsers.parse_ignoreip(out(captured, "ignoreip"))) == sorted(
        ["127.0.0.0/8", "192.0.2.0/24", "2001:db8:1::/48", "localhost", "::1", "198.51.100.23"])
    assert parsers.parse_ignoreip(out(captured, "ignoreip_empty")) == []


def test_actions(captured):
    assert parsers.parse_actions(out(captured, "actions_nftables")) == ["nftables"]
    assert parsers.parse_actions(out(captured, "actions_iptables")) == ["iptables-multiport"]
    assert parsers.parse_actions(out(captured, "actions_none")) == []
    # INVENTED_ several actions, as fail2ban's beautifier prints them (", ".join of the names on one line).
    several = "The jail manual has the following actions:\nfloodguard_nftables, floodguard_nginx\n"
    assert parsers.parse_actions(several) == ["floodguard_nftables", "floodguard_nginx"]


def test_action_properties(captured):
    properties = parsers.parse_action_properties(out(captured, "actionproperties_nftables"))
    assert {"actionban", "actionstart", "actionunban", "addr_set", "table"} <= set(properties)
    # The role's in-process action is a Python action: no commands, its own properties.
    assert parsers.parse_action_properties(out(captured, "actionproperties_python")) == [
        "backend", "bulk_window", "chain", "enforced", "supports_networks"]
    assert parsers.parse_actions(out(captured, "actions_python")) == ["floodguard_nftables"]


def test_action_methods(captured):
    methods = parsers.parse_action_methods(out(captured, "actionmethods_python"))
    assert {"ban", "bulkban", "unban", "start", "stop"} <= set(methods) and "bulk_window" not in methods
    with pytest.raises(parsers.UnexpectedOutput, match="actionmethods"):
        parsers.parse_action_methods(out(captured, "actionproperties_python"))


def test_a_network_ban_through_the_python_action_is_enforced(captured):
    # Captured after the ban: fail2ban lists the network, and the action's interval set holds it.
    assert parsers.parse_banned(out(captured, "banned_cidr_python")) == ["198.51.100.0/24"]
    assert captured["nft_cidr_python"]["rc"] == 0
    assert "198.51.100.0/24" in out(captured, "nft_cidr_python")


def test_network_support_of_the_stock_actions(captured):
    nft = parsers.command_action_network_support(out(captured, "actionban_nftables"), out(captured, "actionstart_nftables"))
    assert nft == (False, "its nftables set has no 'flags interval', so nft rejects networks")
    ipt = parsers.command_action_network_support(out(captured, "actionban_iptables"), out(captured, "actionstart_iptables"))
    assert ipt[0] is True


def test_network_support_of_other_actions():
    assert parsers.command_action_network_support(*INVENTED_ACTIONS["nftables_interval"])[0] is True
    assert parsers.command_action_network_support(*INVENTED_ACTIONS["ipset_hash_ip"])[0] is False
    assert parsers.command_action_network_support(*INVENTED_ACTIONS["ipset_hash_net"])[0] is True
    unknown = parsers.command_action_network_support(*INVENTED_ACTIONS["curl"])
    assert unknown[0] is False and "curl" in unknown[1]
