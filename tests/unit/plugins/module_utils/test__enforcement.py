# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The back end readers of module_utils/_enforcement.py: nftables and iptables on output captured on Debian 12
(nft 1.0.6, iptables 1.8.9 nf_tables) with a jail 'manual' on nftables and a jail 'ipt' on iptables-multiport;
NGINX's ban list through a unix socket."""

from __future__ import annotations

import os
import socket
import threading

from unittest import mock

from ansible_collections.floodguard.shield.plugins.module_utils import _enforcement as enf

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
# What fail2ban-client get JAIL banned listed when the captures were taken.
MANUAL_BANNED = ["203.0.113.7", "198.51.100.9", "2001:db8::9", "192.0.2.0/24"]
IPT_BANNED = ["203.0.113.8", "2001:db8::8", "198.51.100.0/24"]


def capture(name):
    with open(os.path.join(FIXTURES, "enforcement-" + name)) as handle:
        return handle.read()


def nft_state(name="nft-list-table-bookworm.json", chain="f2b-manual"):
    return enf.nft_blocked(enf.parse_nft_table(capture(name)), chain)


def iptables_state(chain="f2b-ipt"):
    saves = {4: enf.parse_iptables_save(capture("iptables-save-bookworm.txt")),
             6: enf.parse_iptables_save(capture("ip6tables-save-bookworm.txt"))}
    return enf.iptables_blocked(saves, chain)


def test_nft_sets_holding_every_ban_are_enforced():
    report = enf.compare(MANUAL_BANNED, nft_state())
    assert report == {"enforced": True, "missing": 0, "missing_sample": [], "problem": ""}


def test_a_ban_missing_from_the_sets_is_counted_and_shown():
    report = enf.compare(MANUAL_BANNED + ["203.0.113.99", "2001:db8::99"], nft_state())
    assert report["enforced"] is False
    assert report["missing"] == 2 and report["missing_sample"] == ["203.0.113.99", "2001:db8::99"]
    assert report["problem"] == "2 of 6 bans are not enforced"


def test_a_chain_without_its_rules_enforces_nothing():
    report = enf.compare(MANUAL_BANNED, nft_state("nft-list-table-chain-flushed-bookworm.json"))
    assert report["enforced"] is False and report["missing"] == 4
    assert report["problem"].startswith("chain f2b-manual has no rule for set f2b-manual-v4")


def test_a_missing_table_or_chain_enforces_nothing():
    assert enf.compare(MANUAL_BANNED, enf.nft_blocked(None, "f2b-manual"))["problem"] == "table inet floodguard is missing"
    assert enf.compare(MANUAL_BANNED, nft_state(chain="f2b-other"))["problem"] == "chain f2b-other is missing"


def test_a_missing_chain_is_not_enforced_even_without_bans():
    # The next ban would not drop either.
    assert enf.compare([], nft_state(chain="f2b-other"))["enforced"] is False


def test_iptables_rules_and_jumps_are_read_for_both_families():
    state = iptables_state()
    assert state.problem == ""
    assert enf.compare(IPT_BANNED, state)["enforced"] is True


def test_an_address_inside_a_banned_network_is_not_a_ban_of_its_own():
    # fail2ban lists the address itself: the firewall must hold that entry.
    report = enf.compare(["198.51.100.1"], iptables_state())
    assert report["missing"] == 1


def test_a_missing_iptables_chain_is_reported():
    assert enf.compare(["203.0.113.8"], iptables_state("f2b-other"))["problem"] == "chain f2b-other is missing (IPv4)"


def test_a_missing_ip6tables_chain_matters_only_with_ipv6_bans():
    # fail2ban's iptables actions create the IPv6 chain at the first IPv6 ban.
    saves = {4: enf.parse_iptables_save(capture("iptables-save-bookworm.txt")), 6: enf.parse_iptables_save("*filter\nCOMMIT\n")}
    state = enf.iptables_blocked(saves, "f2b-ipt")
    assert enf.compare(["203.0.113.8"], state)["enforced"] is True
    assert enf.compare(["203.0.113.8", "2001:db8::8"], state)["problem"] == "chain f2b-ipt is missing (IPv6)"


class FakeModule:
    """run_command and get_bin_path of AnsibleModule, answering with the captures."""

    def __init__(self, outputs):
        self.outputs = outputs
        self.calls = []

    def get_bin_path(self, name):
        return "/usr/sbin/" + name

    def run_command(self, argv, environ_update=None):
        assert isinstance(argv, list) and environ_update == {"LC_ALL": "C"}
        self.calls.append(argv)
        return self.outputs[argv[0].rsplit("/", 1)[1]]


def test_each_firewall_is_read_once_for_every_jail():
    module = FakeModule({
        "nft": (0, capture("nft-list-table-bookworm.json"), ""),
        "iptables-save": (0, capture("iptables-save-bookworm.txt"), ""),
        "ip6tables-save": (0, capture("ip6tables-save-bookworm.txt"), ""),
    })
    enforcement = enf.Enforcement(module)
    properties = {("floodguard_nftables", "chain"): "f2b-manual\n", ("iptables-multiport", "name"): "ipt\n"}
    lookup = mock.Mock(side_effect=lambda action, name: properties[(action, name)])
    manual = enforcement.jail(["floodguard_nftables"], lookup, MANUAL_BANNED)
    ipt = enforcement.jail(["iptables-multiport", "floodguard_watch"], lookup, IPT_BANNED)
    again = enforcement.jail(["floodguard_nftables"], lookup, MANUAL_BANNED + ["203.0.113.250"])
    assert manual["enforced"] is True and manual["backend"] == "nftables"
    assert ipt["enforced"] is True and ipt["backend"] == "iptables"
    assert again["missing_sample"] == ["203.0.113.250"]
    assert [call[0].rsplit("/", 1)[1] for call in module.calls] == ["nft", "iptables-save", "ip6tables-save"]
    assert module.calls[0] == ["/usr/sbin/nft", "-j", "list", "table", "inet", "floodguard"]


def test_a_jail_without_a_known_firewall_action_is_not_judged():
    report = enf.Enforcement(FakeModule({})).jail(["sendmail-whois"], None, ["203.0.113.7"])
    assert report["enforced"] is None and "sendmail-whois" in report["problem"]


def test_a_firewall_that_cannot_be_read_is_not_enforced():
    module = FakeModule({"nft": (1, "", "Error: Operation not permitted\n")})
    report = enf.Enforcement(module).jail(["floodguard_nftables"], lambda action, name: "f2b-manual", ["203.0.113.7"])
    assert report["enforced"] is False
    assert report["problem"].startswith("cannot read nftables: nft -j list table inet floodguard failed (rc=1)")


def test_a_deleted_table_is_missing_not_unreadable():
    module = FakeModule({"nft": (1, "", "Error: No such file or directory\nlist table inet floodguard\n")})
    report = enf.Enforcement(module).jail(["floodguard_nftables"], lambda action, name: "f2b-manual", ["203.0.113.7"])
    assert report["problem"] == "table inet floodguard is missing"


# NGINX: the list floodguard_ban.lua's manage() answers on GET /list?jail=NAME, one element a line as
# the action sends them (hex of the packed network, prefix length). INVENTED_ list in that format.
INVENTED_NGINX_LIST = "cb007107/32\nc6336400/24\n20010db8000000000000000000000009/128\n"


def test_nginx_list_lines_become_networks():
    assert enf.parse_nginx_list(INVENTED_NGINX_LIST + "not-an-element\n") == {
        enf.network("203.0.113.7"), enf.network("198.51.100.0/24"), enf.network("2001:db8::9")}


def test_nginx_holding_every_ban_is_enforced_and_a_lost_one_is_named():
    state = enf.BackendState(blocked=enf.parse_nginx_list(INVENTED_NGINX_LIST))
    assert enf.compare(["203.0.113.7", "198.51.100.0/24", "2001:db8::9"], state)["enforced"] is True
    # An address mapped to IPv6 is the IPv4 ban fail2ban meant.
    assert enf.compare(["::ffff:203.0.113.7"], state)["enforced"] is True
    report = enf.compare(["203.0.113.7", "203.0.113.8"], state)
    assert report["missing"] == 1 and report["missing_sample"] == ["203.0.113.8"]


def serve_once(path, answer):
    """A unix socket at path that answers one HTTP request with answer; returns the thread and the request seen."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    seen = []

    def handle():
        connection, _address = server.accept()
        seen.append(connection.recv(65536).decode())
        connection.sendall(answer)
        connection.close()
        server.close()

    thread = threading.Thread(target=handle, daemon=True)
    thread.start()
    return thread, seen


def test_the_nginx_reader_asks_the_socket_for_the_jails_list(tmp_path):
    body = INVENTED_NGINX_LIST.encode()
    thread, seen = serve_once(tmp_path / "ban.sock", b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    properties = {("floodguard_nginx", "ban_socket"): "%s\n" % (tmp_path / "ban.sock"), ("floodguard_nginx", "ban_list"): "web\n"}
    enforcement = enf.Enforcement(FakeModule({}))
    report = enforcement.jail(["floodguard_nginx"], lambda action, name: properties[(action, name)], ["203.0.113.7", "198.51.100.99"])
    thread.join(5)
    assert seen[0].startswith("GET /list?jail=web HTTP/1.0\r\n")
    assert report["backend"] == "nginx" and report["enforced"] is False
    assert report["missing_sample"] == ["198.51.100.99"]


def test_nginx_down_is_not_enforced_and_says_why(tmp_path):
    state = enf.Enforcement(FakeModule({})).read_nginx(str(tmp_path / "none.sock"), "web")
    assert state.problem.startswith("cannot read NGINX's ban list on %s" % (tmp_path / "none.sock"))
    assert enf.compare(["203.0.113.7"], state)["enforced"] is False
