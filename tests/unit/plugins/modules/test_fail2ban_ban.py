# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""fail2ban_ban's whole flow on verbatim fail2ban 1.0 and 1.1 output: which commands run, and what it reports."""

from __future__ import annotations

import ipaddress
import json

from ansible_collections.floodguard.shield.plugins.module_utils._batches import batch_budget
from ansible_collections.floodguard.shield.plugins.modules.fail2ban_ban import main
from ansible_collections.floodguard.shield.tests.unit.plugins.module_utils.fail2ban_fixtures import Replay

# What capture_fail2ban.py bans in the jail 'manual'.
IPV4 = [str(ipaddress.ip_address("203.0.113.1") + i) for i in range(200)]
IPV6 = ["2001:db8::%x" % (i + 1) for i in range(49)] + ["2001:db8::abcd"]
# The same, as an operator may write them: upper case, /32, a repeat, several in one survey field.
REQUESTED = IPV4[:-2] + ["%s/32 %s" % (IPV4[-2], IPV4[-1]), IPV4[0]] + IPV6[:-1] + ["2001:DB8:0:0::ABCD"]
UNBAN = IPV4[:100] + ["2001:db8::abcd", "198.51.100.99"]

STATUS = (["status"], "status")
BANNED_EMPTY = (["get", "manual", "banned"], "banned_empty")
CHECKS = [(["get", "manual", "ignoreip"], "ignoreip_empty"), (["-j", "address", "show"], "ip_address_show")]
BAN = [(["set", "manual", "banip"] + IPV4 + IPV6, "banip_many"), (["get", "manual", "banned"], "banned_after_ban")]


def test_ban(run_module, captured):
    result, replay = run_module(main, {"jail": "manual", "ips": REQUESTED}, captured,
                                [STATUS, BANNED_EMPTY] + CHECKS + BAN)
    assert result["changed"] is True
    assert result["added_count"] == 250 and result["banned_count"] == 250 and result["removed_count"] == 0
    assert result["added"] == IPV4 + IPV6 == result["banned"]
    assert result["batches"] == 1
    assert replay.calls[0] == ["/usr/bin/fail2ban-client", "status"]
    assert replay.calls[3] == ["/usr/sbin/ip", "-j", "address", "show"]


def test_ban_in_check_mode_changes_nothing(run_module, captured):
    result, replay = run_module(main, {"jail": "manual", "ips": REQUESTED}, captured,
                                [STATUS, BANNED_EMPTY] + CHECKS, check_mode=True)
    assert result["changed"] is True
    assert result["added_count"] == 250 and result["banned_count"] == 250 and result["batches"] == 0
    assert not any("banip" in call for call in replay.calls)


def test_ban_is_idempotent(run_module, captured):
    for check_mode in (False, True):
        result, replay = run_module(main, {"jail": "manual", "ips": REQUESTED}, captured,
                                    [STATUS, (["get", "manual", "banned"], "banned_after_ban")], check_mode=check_mode)
        assert result["changed"] is False
        assert result["added"] == [] and result["added_count"] == 0 and result["banned_count"] == 250
        assert len(replay.calls) == 2


def test_ban_diff(run_module, captured):
    result = run_module(main, {"jail": "manual", "ips": REQUESTED[:3]}, captured,
                        [STATUS, BANNED_EMPTY] + CHECKS, check_mode=True, diff=True)[0]
    assert result["diff"] == {"before_header": "manual: banned before", "after_header": "manual: banned after",
                              "before": "", "after": "203.0.113.1\n203.0.113.2\n203.0.113.3\n"}


def test_lists_are_limited_but_counts_exact(run_module, captured):
    result = run_module(main, {"jail": "manual", "ips": REQUESTED, "list_limit": 10}, captured,
                        [STATUS, BANNED_EMPTY] + CHECKS, check_mode=True, diff=True)[0]
    assert result["added"] == IPV4[:10] and result["added_count"] == 250 and result["truncated"] is True
    assert result["diff"]["after"].endswith("# ... and 240 more\n")


UNBAN_FLOW = [
    STATUS,
    (["get", "manual", "banned"], "banned_before_unban"),
    (["set", "manual", "unbanip"] + IPV4[:100] + ["2001:db8::abcd"], "unbanip_many"),
    (["get", "manual", "banned"], "banned_after_unban"),
]


def test_unban(run_module, captured):
    result = run_module(main, {"jail": "manual", "ips": UNBAN, "state": "absent"}, captured, UNBAN_FLOW)[0]
    assert result["changed"] is True
    # 198.51.100.99 was not banned: nothing to unban there.
    assert result["removed"] == IPV4[:100] + ["2001:db8::abcd"] and result["removed_count"] == 101
    assert result["banned_count"] == 150 and result["added"] == []


def test_unban_in_check_mode_and_idempotent(run_module, captured):
    result = run_module(main, {"jail": "manual", "ips": UNBAN, "state": "absent"}, captured, UNBAN_FLOW[:2],
                        check_mode=True)[0]
    assert result["changed"] is True and result["removed_count"] == 101 and result["banned_count"] == 150
    for check_mode in (False, True):
        result = run_module(main, {"jail": "manual", "ips": UNBAN, "state": "absent"}, captured,
                            [STATUS, (["get", "manual", "banned"], "banned_after_unban")], check_mode=check_mode)[0]
        assert result["changed"] is False and result["removed_count"] == 0


def assert_failed_cleanly(result, replay, fragment):
    assert result["failed"] is True
    assert fragment in result["msg"], result["msg"]
    assert {"msg", "cmd", "rc", "stdout", "stderr"} <= set(result)
    assert not any(verb in call for call in replay.calls for verb in ("banip", "unbanip"))


def test_invalid_addresses_fail_before_any_command(run_module, captured):
    result, replay = run_module(main, {"jail": "manual", "ips": ["203.0.113.7", "not-an-ip", "198.51.100.1/24"]},
                                captured, [])
    assert_failed_cleanly(result, replay, "ips holds 2 entries that are not an IP address or CIDR network")
    assert "'not-an-ip'" in result["msg"] and "host bits set" in result["msg"]
    assert replay.calls == []


def test_unknown_jail_lists_the_jails(run_module, captured):
    result, replay = run_module(main, {"jail": "nosuch", "ips": ["203.0.113.7"]}, captured, [STATUS])
    assert_failed_cleanly(result, replay, "fail2ban has no jail named 'nosuch'. Its jails: iptables-jail, manual, "
                                          "nginx-req-limit, no-actions, permanent, sshd.")


def test_not_installed(run_module, captured):
    result, replay = run_module(main, {"jail": "manual", "ips": ["203.0.113.7"]}, captured, [], binaries={})
    assert_failed_cleanly(result, replay, "fail2ban is not installed")


def test_server_down_says_how_to_start_it(run_module, captured):
    result, replay = run_module(main, {"jail": "manual", "ips": ["203.0.113.7"]}, captured,
                                [(["status"], "server_down_status")])
    assert_failed_cleanly(result, replay, "The fail2ban server is not running")
    assert "systemctl start fail2ban" in result["msg"]
    assert result["rc"] == 255 and result["cmd"] == ["/usr/bin/fail2ban-client", "status"]
    assert result["stderr"] == captured["server_down_status"]["stderr"]


def test_permission_denied(run_module, captured):
    result, replay = run_module(main, {"jail": "manual", "ips": ["203.0.113.7"]}, captured,
                                [(["status"], "not_root_status")])
    assert_failed_cleanly(result, replay, "Permission denied on fail2ban's socket")
    assert "become: true" in result["msg"] and result["rc"] == 255


def allowlist_flow(jail):
    return [STATUS, (["get", jail, "banned"], "banned_empty"), (["get", jail, "ignoreip"], "ignoreip"),
            (["-j", "address", "show"], "ip_address_show")]


def test_ignoreip_is_honoured(run_module, captured):
    result, replay = run_module(main, {"jail": "nginx-req-limit", "ips": ["203.0.113.7", "192.0.2.5", "2001:db8:1::9"]},
                                captured, allowlist_flow("nginx-req-limit"))
    assert_failed_cleanly(result, replay, "Refusing to ban 2 address(es) in jail 'nginx-req-limit'")
    assert "192.0.2.5 is covered by the jail's ignoreip entry 192.0.2.0/24" in result["msg"]
    assert "2001:db8:1::9 is covered by the jail's ignoreip entry 2001:db8:1::/48" in result["msg"]
    assert "force: true" in result["msg"] and "203.0.113.7" not in result["msg"]


def test_allowlisted_skip_reports_covered_addresses_and_changes_nothing_for_them(run_module, captured):
    # What playbooks/sync.yml does: another host's ban that this host's allowlist covers is skipped, not an error.
    result, _replay = run_module(main, {"jail": "nginx-req-limit", "ips": ["192.0.2.5", "2001:db8:1::9"], "allowlisted": "skip"},
                                 captured, allowlist_flow("nginx-req-limit"))
    assert not result.get("failed"), result
    assert result["changed"] is False and result["added_count"] == 0 and result["banned"] == []
    assert result["skipped"] == ["192.0.2.5 is covered by the jail's ignoreip entry 192.0.2.0/24",
                                 "2001:db8:1::9 is covered by the jail's ignoreip entry 2001:db8:1::/48"]


def test_own_addresses_are_protected(run_module, captured):
    own = [info["local"] for link in json.loads(captured["ip_address_show"]["stdout"])
           for info in link["addr_info"] if link["ifname"] == "eth0"][0]
    result, replay = run_module(main, {"jail": "manual", "ips": [own, "127.0.0.1"]}, captured,
                                [STATUS, BANNED_EMPTY] + CHECKS)
    assert_failed_cleanly(result, replay, "%s is covered by this host's own address %s on eth0" % (own, own))
    assert "127.0.0.1 is covered by loopback (127.0.0.0/8)" in result["msg"]


def test_force_bans_an_allowlisted_address(run_module, captured):
    result, replay = run_module(main, {"jail": "nginx-req-limit", "ips": ["192.0.2.5"], "force": True}, captured, [
        STATUS, (["get", "nginx-req-limit", "banned"], "banned_empty"),
        (["set", "nginx-req-limit", "banip", "192.0.2.5"], "banip_allowlisted"),
        (["get", "nginx-req-limit", "banned"], "banned_allowlisted")])
    assert result["changed"] is True and result["banned"] == ["192.0.2.5"]


NFTABLES_PROBE = [
    (["get", "manual", "actions"], "actions_nftables"),
    (["get", "manual", "actionproperties", "nftables"], "actionproperties_nftables"),
    (["get", "manual", "action", "nftables", "actionban"], "actionban_nftables"),
    (["get", "manual", "action", "nftables", "actionstart"], "actionstart_nftables"),
]


def test_networks_are_refused_where_the_action_cannot_ban_them(run_module, captured):
    result, replay = run_module(main, {"jail": "manual", "ips": ["198.51.100.0/24"]}, captured,
                                [STATUS, BANNED_EMPTY] + NFTABLES_PROBE)
    assert_failed_cleanly(result, replay, "its action 'nftables' cannot ban a network")
    assert "flags interval" in result["msg"] and "198.51.100.0/24" in result["msg"]


def test_networks_are_banned_where_the_action_can(run_module, captured):
    jail = "iptables-jail"
    action = "iptables-multiport"
    result = run_module(main, {"jail": jail, "ips": ["198.51.100.0/24"]}, captured, [
        STATUS, (["get", jail, "banned"], "banned_empty"),
        (["get", jail, "actions"], "actions_iptables"),
        (["get", jail, "actionproperties", action], "actionproperties_iptables"),
        (["get", jail, "action", action, "actionban"], "actionban_iptables"),
        (["get", jail, "action", action, "actionstart"], "actionstart_iptables"),
        (["get", jail, "ignoreip"], "ignoreip_empty"), (["-j", "address", "show"], "ip_address_show"),
        (["set", jail, "banip", "198.51.100.0/24"], "banip_cidr_iptables"),
        (["get", jail, "banned"], "banned_cidr_iptables")])[0]
    assert result["changed"] is True and result["banned"] == ["198.51.100.0/24"]


def test_networks_are_banned_through_the_default_python_action(run_module, captured):
    jail = "python-action"
    action = "floodguard_nftables"
    result = run_module(main, {"jail": jail, "ips": ["198.51.100.0/24"]}, captured, [
        (["status"], "status_with_python_action"), (["get", jail, "banned"], "banned_empty_python"),
        (["get", jail, "actions"], "actions_python"),
        (["get", jail, "actionproperties", action], "actionproperties_python"),
        (["get", jail, "action", action, "supports_networks"], "supports_networks_python"),
        (["get", jail, "ignoreip"], "ignoreip_python"), (["-j", "address", "show"], "ip_address_show"),
        (["set", jail, "banip", "198.51.100.0/24"], "banip_cidr_python"),
        (["get", jail, "banned"], "banned_cidr_python")])[0]
    assert result["changed"] is True and result["banned"] == ["198.51.100.0/24"] and result["batches"] == 1


class BulkReplay(Replay):
    """Replays the captured runs; the ban batches and the list after them it invents, as fail2ban answers them."""

    def __init__(self, captures, expected, jail):
        super().__init__(captures, expected)
        self.prefix = ["set", jail, "banip"]
        self.jail = jail
        self.banned = []
        self.batch_sizes = []

    def __call__(self, args, environ_update=None, **kwargs):
        if args[1:4] == self.prefix:
            assert environ_update == {"LC_ALL": "C"}
            self.calls.append(list(args))
            assert sum(len(arg) + 9 for arg in args) <= batch_budget()
            self.batch_sizes.append(len(args) - 4)
            self.banned.extend(args[4:])
            return 0, "%d\n" % (len(args) - 4), ""
        if args[1:] == ["get", self.jail, "banned"] and self.batch_sizes:
            self.calls.append(list(args))
            return 0, "%r\n" % (self.banned,), ""
        return super().__call__(args, environ_update=environ_update, **kwargs)


def test_100000_addresses_in_a_few_batches(run_module, captured):
    network = ipaddress.ip_network("198.18.0.0/15")
    addresses = [str(network[i]) for i in range(1, 100001)]
    jail = "no-actions"
    replay = BulkReplay(captured, [(["status"], "status"), (["get", jail, "banned"], "banned_empty"),
                                   (["get", jail, "ignoreip"], "ignoreip_empty"),
                                   (["-j", "address", "show"], "ip_address_show"),
                                   (["get", jail, "actions"], "actions_none")], jail)
    result = run_module(main, {"jail": jail, "ips": addresses}, captured, None, replay=replay)[0]
    assert replay.banned == addresses
    assert len(replay.batch_sizes) == result["batches"] <= 12
    assert min(replay.batch_sizes[:-1]) > 5000
    assert result["added_count"] == result["banned_count"] == 100000
    assert len(result["added"]) == len(result["banned"]) == 1000 and result["truncated"] is True


def listing(jail, action, what, names):
    """fail2ban's own answer to `get JAIL action<what> ACTION` (as captured for python-action), with these names."""
    return {"rc": 0, "stderr": "", "stdout": "The jail %s action %s has the following %s:\n%s\n"
            % (jail, action, what, ", ".join(names))}


def checks_before_a_bulk_ban(jail):
    return [(["status"], "status_with_python_action"), (["get", jail, "banned"], "banned_empty_python"),
            (["get", jail, "ignoreip"], "ignoreip_python"), (["-j", "address", "show"], "ip_address_show"),
            (["get", jail, "actions"], "actions_python")]


def bulk_flow(jail, action, properties):
    """The calls before the batches of a bulk ban in a jail whose one action has these properties and no
    bulkban method (an action of another collection, or of an older floodguard)."""
    return checks_before_a_bulk_ban(jail) + [
        (["get", jail, "actionmethods", action], listing(jail, action, "methods", ["ban", "start", "stop", "unban"])),
        (["get", jail, "actionproperties", action], listing(jail, action, "properties", properties))]


class BulkCall(BulkReplay):
    """A BulkReplay that answers the bulkban call as fail2ban did, with the addresses of its file."""

    def __call__(self, args, environ_update=None, **kwargs):
        if args[1:6] == ["set", self.jail, "action", "floodguard_nftables", "bulkban"]:
            self.calls.append(list(args))
            with open(json.loads(args[6])["path"]) as handle:
                self.banned.extend(handle.read().split())
            self.batch_sizes.append(len(self.banned))
            return 0, "%d\n" % len(self.banned), ""
        return super().__call__(args, environ_update=environ_update, **kwargs)


def test_a_bulk_ban_of_a_jail_of_floodguard_actions_is_one_call(run_module, captured, tmp_path):
    jail, action = "python-action", "floodguard_nftables"
    addresses = [str(ipaddress.ip_address("198.18.0.1") + i) for i in range(20000)]
    replay = BulkCall(captured, checks_before_a_bulk_ban(jail) + [
        (["get", jail, "actionmethods", action], "actionmethods_python"),
        (["get", jail, "bantime.increment"], "bantime_increment_python")], jail)
    result = run_module(main, {"jail": jail, "ips": addresses, "_ansible_remote_tmp": str(tmp_path)},
                        captured, None, replay=replay)[0]
    assert result["changed"] is True and result["bulk"] is True and result["batches"] == 1
    assert result["added_count"] == result["banned_count"] == 20000 and replay.banned == addresses
    assert not any(call[1:4] == ["set", jail, "banip"] for call in replay.calls)
    # The result holds at most list_limit addresses per list: the arguments that ansible-core up to 2.20 returns
    # with it (invocation) are cut as the lists are; 2.21 returns none.
    assert "invocation" not in result or result["invocation"]["module_args"]["ips"] == addresses[:1000]
    assert json.dumps(result).count('"198.18.') <= 3000


OK = {"rc": 0, "stdout": "", "stderr": ""}


def test_a_bulk_ban_opens_the_bulk_window_around_its_batches(run_module, captured):
    jail, action = "python-action", "floodguard_nftables"
    addresses = [str(ipaddress.ip_address("198.18.0.1") + i) for i in range(20000)]
    flow = bulk_flow(jail, action, ["backend", "bulk_window", "chain", "enforced", "supports_networks"])
    replay = BulkReplay(captured, flow + [(["set", jail, "action", action, "bulk_window", "80"], OK),
                                          (["set", jail, "action", action, "bulk_window", "0"], OK)], jail)
    result = run_module(main, {"jail": jail, "ips": addresses}, captured, None, replay=replay)[0]
    assert result["changed"] is True and result["added_count"] == 20000 and replay.banned == addresses
    windows = [call[-1] for call in replay.calls if "bulk_window" in call]
    batches = [index for index, call in enumerate(replay.calls) if call[1:4] == ["set", jail, "banip"]]
    opened, closed = [index for index, call in enumerate(replay.calls) if "bulk_window" in call]
    assert windows == ["80", "0"] and opened < min(batches) and closed > max(batches)


def test_the_bulk_window_closes_when_a_batch_fails(run_module, captured):
    jail, action = "python-action", "floodguard_nftables"
    addresses = [str(ipaddress.ip_address("198.18.0.1") + i) for i in range(2000)]
    refused = "ERROR  Failed to access socket path: /var/run/fail2ban/fail2ban.sock. Is fail2ban running?\n"
    failed = {"rc": 255, "stdout": "", "stderr": refused}
    flow = bulk_flow(jail, action, ["bulk_window", "supports_networks"]) + [
        (["set", jail, "action", action, "bulk_window", "62"], OK), (["set", jail, "banip"] + addresses, failed),
        (["set", jail, "action", action, "bulk_window", "0"], OK)]
    result, replay = run_module(main, {"jail": jail, "ips": addresses}, captured, flow)
    assert result["failed"] is True and "not running" in result["msg"]
    assert replay.calls[-1][-2:] == ["bulk_window", "0"]


def test_no_bulk_window_where_no_action_has_one(run_module, captured):
    jail, action = "python-action", "floodguard_nftables"
    addresses = [str(ipaddress.ip_address("198.18.0.1") + i) for i in range(2000)]
    replay = BulkReplay(captured, bulk_flow(jail, action, ["supports_networks"]), jail)
    result = run_module(main, {"jail": jail, "ips": addresses}, captured, None, replay=replay)[0]
    assert result["added_count"] == 2000 and not any("bulk_window" in call for call in replay.calls)
