# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The parsers of module_utils/_fail2ban.py on verbatim output of fail2ban 1.0 (Debian 12) and 1.1 (Debian 13)."""

from __future__ import annotations

import ipaddress
import json

import pytest

from ansible_collections.floodguard.shield.plugins.module_utils import _fail2ban as f2b
from ansible_collections.floodguard.shield.tests.unit.plugins.module_utils.fail2ban_fixtures import VERSIONS, load

# The addresses capture_fail2ban.py bans in the jail 'manual', in its order and as fail2ban lists them.
IPV4 = [str(ipaddress.ip_address("203.0.113.1") + i) for i in range(200)]
IPV6 = ["2001:db8::%x" % (i + 1) for i in range(49)] + ["2001:db8::abcd"]


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


def test_version(captured):
    assert f2b.parse_version(out(captured, "version")) == captured["_meta"]["fail2ban"]


def test_version_rejects_other_text(captured):
    with pytest.raises(f2b.Fail2banError, match="Unexpected output"):
        f2b.parse_version(out(captured, "client_version"))


def test_jail_list(captured):
    assert f2b.parse_jail_list(out(captured, "status")) == [
        "iptables-jail", "manual", "nginx-req-limit", "no-actions", "permanent", "sshd"]


def test_jail_list_rejects_a_jail_status(captured):
    with pytest.raises(f2b.Fail2banError):
        f2b.parse_jail_list(out(captured, "status_empty"))


def test_status_of_an_empty_jail(captured):
    assert f2b.parse_jail_status(out(captured, "status_empty")) == {
        "filter": {"currently_failed": 0, "total_failed": 0,
                   "file_list": ["/var/log/floodguard-manual.log"], "journal_matches": []},
        "actions": {"currently_banned": 0, "total_banned": 0, "banned": []},
    }
    assert f2b.parse_bans_with_time(out(captured, "banip_with_time_empty")) == []
    assert f2b.parse_banned(out(captured, "banned_empty")) == []


def test_status_of_a_journal_jail(captured):
    status = f2b.parse_jail_status(out(captured, "status_journal"))
    assert status["filter"]["file_list"] == []
    # Debian 13's sshd filter adds the sshd-session process of OpenSSH 9.8.
    expected = {
        "1.0": ["_SYSTEMD_UNIT=sshd.service", "_COMM=sshd"],
        "1.1": ["_SYSTEMD_UNIT=ssh.service", "_COMM=sshd", "_COMM=sshd-session"],
    }[captured["_meta"]["fail2ban"][:3]]
    assert status["filter"]["journal_matches"] == expected


def test_status_with_many_bans(captured):
    status = f2b.parse_jail_status(out(captured, "status_many"))
    banned = IPV4 + IPV6 + ["203.0.113.250"]
    assert status["actions"] == {"currently_banned": 251, "total_banned": 251, "banned": banned}


def test_bans_with_time(captured):
    bans = f2b.parse_bans_with_time(out(captured, "banip_with_time_many"))
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
    bans = f2b.parse_bans_with_time(out(captured, "banip_with_time_permanent"))
    assert [(ban["ip"], ban["bantime"], ban["ban_end"]) for ban in bans] == [
        ("198.51.100.0/24", -1, None), ("198.51.100.77", -1, None)]


def test_bans_with_time_rejects_other_text(captured):
    with pytest.raises(f2b.Fail2banError):
        f2b.parse_bans_with_time(out(captured, "banned_many"))


def test_banned(captured):
    assert f2b.parse_banned(out(captured, "banned_after_ban")) == IPV4 + IPV6
    assert f2b.parse_banned(out(captured, "banned_many")) == IPV4 + IPV6 + ["203.0.113.250"]
    after = f2b.parse_banned(out(captured, "banned_after_unban"))
    assert after == IPV4[100:] + IPV6[:-1] + ["203.0.113.250"]


def test_fail2ban_lists_an_invalid_address_as_banned(captured):
    # Why the module validates addresses itself.
    assert captured["banip_not_an_ip"]["rc"] == 0
    assert f2b.parse_banned(out(captured, "banned_not_an_ip")) == ["not-an-ip"]


def test_banned_ip(captured):
    assert f2b.parse_banned_ip(out(captured, "banned_ip")) == [["manual"], ["manual"], []]


def test_banned_rejects_other_text(captured):
    with pytest.raises(f2b.Fail2banError):
        f2b.parse_banned(out(captured, "status_many"))
    with pytest.raises(f2b.Fail2banError):
        f2b.parse_banned(out(captured, "banned_all"))


def test_ignoreip(captured):
    assert sorted(f2b.parse_ignoreip(out(captured, "ignoreip"))) == sorted(
        ["127.0.0.0/8", "192.0.2.0/24", "2001:db8:1::/48", "localhost", "::1", "198.51.100.23"])
    assert f2b.parse_ignoreip(out(captured, "ignoreip_empty")) == []


def test_actions(captured):
    assert f2b.parse_actions(out(captured, "actions_nftables")) == ["nftables"]
    assert f2b.parse_actions(out(captured, "actions_iptables")) == ["iptables-multiport"]
    assert f2b.parse_actions(out(captured, "actions_none")) == []


def test_action_properties(captured):
    properties = f2b.parse_action_properties(out(captured, "actionproperties_nftables"))
    assert {"actionban", "actionstart", "actionunban", "addr_set", "table"} <= set(properties)


def test_counts(captured):
    assert f2b.parse_count(out(captured, "banip_many")) == 250
    assert f2b.parse_count(out(captured, "banip_again")) == 1
    # 198.51.100.99 was not banned: fail2ban counts only what it unbanned.
    assert f2b.parse_count(out(captured, "unbanip_many")) == 101


def test_network_support_of_the_stock_actions(captured):
    nft = f2b.command_action_network_support(out(captured, "actionban_nftables"), out(captured, "actionstart_nftables"))
    assert nft == (False, "its nftables set has no 'flags interval', so nft rejects networks")
    ipt = f2b.command_action_network_support(out(captured, "actionban_iptables"), out(captured, "actionstart_iptables"))
    assert ipt[0] is True


def test_network_support_of_other_actions():
    interval = f2b.command_action_network_support(
        "nft add element inet f2b-table <addr_set> { <ip> }", "nft add set inet f2b-table s { type ipv4_addr; flags interval; }")
    assert interval[0] is True
    assert f2b.command_action_network_support("ipset add <ipmset> <ip>", "ipset create <ipmset> hash:ip")[0] is False
    assert f2b.command_action_network_support("ipset add <ipmset> <ip>", "ipset create <ipmset> hash:net")[0] is True
    unknown = f2b.command_action_network_support("curl https://example.invalid/ban?ip=<ip>", "")
    assert unknown[0] is False and "curl" in unknown[1]


def test_host_addresses(captured):
    addresses = f2b.parse_host_addresses(out(captured, "ip_address_show"))
    assert ("127.0.0.1", "lo") in addresses
    assert any(name == "eth0" and ipaddress.ip_address(address).version == 4 for address, name in addresses)


@pytest.mark.parametrize("name", ["server_down_ping", "server_down_status"])
def test_server_down_says_how_to_start_it(captured, name):
    run = captured[name]
    assert run["rc"] == 255
    error = f2b.explain_failure(["fail2ban-client"] + run["argv"][1:], run["rc"], run["stdout"], run["stderr"])
    assert "not running" in error.msg and "systemctl start fail2ban" in error.msg
    assert error.result()["stderr"] == run["stderr"]


@pytest.mark.parametrize("name", ["not_root_ping", "not_root_status"])
def test_permission_denied_says_to_become_root(captured, name):
    run = captured[name]
    error = f2b.explain_failure(run["argv"][3:], run["rc"], run["stdout"], run["stderr"])
    assert "Permission denied" in error.msg and "become: true" in error.msg
    assert error.rc == 255


def test_unknown_jail_is_named(captured):
    run = captured["status_unknown_jail"]
    error = f2b.explain_failure(run["argv"], run["rc"], run["stdout"], run["stderr"])
    assert error.msg == "fail2ban has no jail named 'nosuch'."


def test_other_failures_quote_the_last_line():
    error = f2b.explain_failure(["fail2ban-client", "x"], 255, "", "some\nthing broke\n")
    assert error.msg == "fail2ban-client failed (rc=255): thing broke"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:DB8:0::7", "2001:db8::7"),
        ("203.0.113.7/32", "203.0.113.7"),
        ("2001:db8::7/128", "2001:db8::7"),
        ("198.51.100.0/24", "198.51.100.0/24"),
    ],
)
def test_addresses_are_normalised_as_fail2ban_lists_them(text, expected):
    assert f2b.normalise_address(text) == expected


def test_validate_keeps_order_and_drops_repeats():
    assert f2b.validate_addresses(["203.0.113.7, 2001:db8::7\n203.0.113.7/32", "198.51.100.0/24"]) == [
        "203.0.113.7", "2001:db8::7", "198.51.100.0/24"]
    assert f2b.validate_addresses([]) == []


def test_validate_names_every_bad_entry():
    with pytest.raises(f2b.Fail2banError) as info:
        f2b.validate_addresses(["not-an-ip", "203.0.113.7", "198.51.100.1/24", "999.1.1.1"])
    assert "ips holds 3 entries that are not an IP address or CIDR network" in info.value.msg
    for bad in ("'not-an-ip'", "'198.51.100.1/24' (198.51.100.1/24 has host bits set)", "'999.1.1.1'"):
        assert bad in info.value.msg
    assert "Nothing was changed" in info.value.msg


def test_allowlist_conflicts_name_the_covering_entry(captured):
    ignoreip = f2b.parse_ignoreip(out(captured, "ignoreip"))
    hosts = f2b.parse_host_addresses(out(captured, "ip_address_show"))
    own = [address for address, name in hosts if name == "eth0"][0]
    protected, warnings = f2b.protected_networks(ignoreip, hosts, resolve=lambda name: ["127.0.0.1", "::1"])
    assert warnings == []
    conflicts = dict(f2b.allowlist_conflicts(
        ["192.0.2.5", "192.0.0.0/16", "2001:db8:1::9", "198.51.100.23", "203.0.113.7", "127.0.0.53", own, "2001:db8::7"],
        protected))
    assert conflicts == {
        "192.0.2.5": "the jail's ignoreip entry 192.0.2.0/24",
        "192.0.0.0/16": "the jail's ignoreip entry 192.0.2.0/24",
        "2001:db8:1::9": "the jail's ignoreip entry 2001:db8:1::/48",
        "198.51.100.23": "the jail's ignoreip entry 198.51.100.23",
        "127.0.0.53": "the jail's ignoreip entry 127.0.0.0/8",
        own: "this host's own address %s on eth0" % own,
    }


def test_loopback_is_protected_without_any_ignoreip():
    protected = f2b.protected_networks([], [])[0]
    assert dict(f2b.allowlist_conflicts(["127.0.0.1", "::1", "203.0.113.7"], protected)) == {
        "127.0.0.1": "loopback (127.0.0.0/8)", "::1": "loopback (::1/128)"}


def test_ignoreip_host_names_resolve_or_warn():
    protected, warnings = f2b.protected_networks(
        ["api.example.test", "gone.example.test", "file:/etc/x"], [],
        resolve=lambda name: ["192.0.2.80"] if name == "api.example.test" else [])
    assert dict(f2b.allowlist_conflicts(["192.0.2.80"], protected)) == {
        "192.0.2.80": "the jail's ignoreip entry api.example.test (192.0.2.80)"}
    assert len(warnings) == 2
    assert "'gone.example.test' does not resolve" in warnings[0]
    assert "'file:/etc/x' is not an address" in warnings[1]


def test_batch_budget_leaves_room_under_arg_max():
    assert f2b.batch_budget(arg_max=2097152, environ={}) == 256 * 1024
    assert f2b.batch_budget(arg_max=131072, environ={"PATH": "x" * 1000}) == (131072 - 1014) // 2
    assert f2b.batch_budget(arg_max=4096, environ={}) == 16 * 1024


def test_100000_addresses_go_in_few_batches_under_the_budget():
    network = ipaddress.ip_network("198.18.0.0/15")
    addresses = [str(network[i]) for i in range(1, 50001)] + ["2001:db8::%x" % i for i in range(1, 50001)]
    prefix = ["/usr/bin/fail2ban-client", "set", "manual", "banip"]
    budget = f2b.batch_budget()
    found = list(f2b.batches(addresses, prefix, budget))
    assert [address for batch in found for address in batch] == addresses
    assert all(sum(len(arg) + 9 for arg in prefix + batch) <= budget for batch in found)
    # Never one call per address: thousands go in each.
    assert len(found) <= 40
    assert min(len(batch) for batch in found[:-1]) > 3000


def test_lists_are_limited():
    assert f2b.limited([1, 2, 3], 2) == ([1, 2], True)
    assert f2b.limited([1, 2, 3], 0) == ([1, 2, 3], False)
    assert f2b.limited([1, 2, 3], 3) == ([1, 2, 3], False)


def test_sorting_is_numeric_v4_first():
    assert f2b.sorted_addresses(["2001:db8::1", "203.0.113.10", "not-an-ip", "203.0.113.9", "198.51.100.0/24"]) == [
        "198.51.100.0/24", "203.0.113.9", "203.0.113.10", "2001:db8::1", "not-an-ip"]


def test_small_diffs_list_everything():
    diff = f2b.ban_diff("manual", ["203.0.113.1"], ["203.0.113.1", "203.0.113.2"], ["203.0.113.2"], [], 10)
    assert diff == {"before_header": "manual: banned before", "after_header": "manual: banned after",
                    "before": "203.0.113.1\n", "after": "203.0.113.1\n203.0.113.2\n"}


def test_large_diffs_list_only_the_changes():
    before = IPV4[:150]
    after = IPV4[:100] + IPV4[150:]
    diff = f2b.ban_diff("manual", before, after, IPV4[150:], IPV4[100:150], 20)
    assert diff["before"].startswith("# 100 addresses banned before and after, not listed\n203.0.113.101\n")
    assert diff["before"].endswith("# ... and 30 more\n")
    assert diff["after"].count("\n") == 1 + 20 + 1


def test_fixtures_are_json_of_real_runs():
    for version in VERSIONS:
        captures = load(version)
        for name, run in captures.items():
            if name == "_meta":
                continue
            assert set(run) == {"argv", "rc", "stdout", "stderr"}, name
            json.dumps(run)
