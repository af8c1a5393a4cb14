# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""module_utils/_addresses.py: operator input, order, and the allowlists a ban must respect."""

from __future__ import annotations

import ipaddress

import pytest

from ansible_collections.floodguard.shield.plugins.module_utils import _addresses as addresses
from ansible_collections.floodguard.shield.plugins.module_utils._fail2ban_parsers import parse_ignoreip
from ansible_collections.floodguard.shield.plugins.module_utils._host_addresses import parse_host_addresses
from ansible_collections.floodguard.shield.tests.unit.plugins.module_utils.fail2ban_fixtures import VERSIONS, load


@pytest.fixture(params=VERSIONS)
def captured(request):
    return load(request.param)


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
    assert addresses.normalise_address(text) == expected


def test_validate_keeps_order_and_drops_repeats():
    assert addresses.validate_addresses(["203.0.113.7, 2001:db8::7\n203.0.113.7/32", "198.51.100.0/24"]) == [
        "203.0.113.7", "2001:db8::7", "198.51.100.0/24"]
    assert addresses.validate_addresses([]) == []


def test_validate_names_every_bad_entry():
    with pytest.raises(addresses.AddressError) as info:
        addresses.validate_addresses(["not-an-ip", "203.0.113.7", "198.51.100.1/24", "999.1.1.1"])
    assert "ips holds 3 entries that are not an IP address or CIDR network" in info.value.msg
    for bad in ("'not-an-ip'", "'198.51.100.1/24' (198.51.100.1/24 has host bits set)", "'999.1.1.1'"):
        assert bad in info.value.msg
    assert "Nothing was changed" in info.value.msg
    assert set(info.value.result()) == {"msg", "cmd", "rc", "stdout", "stderr"}


def test_a_long_list_of_bad_entries_is_counted_not_listed():
    with pytest.raises(addresses.AddressError) as info:
        addresses.validate_addresses(["bad%d" % i for i in range(25)])
    assert "'bad19' (" in info.value.msg and "'bad20'" not in info.value.msg
    assert " and 5 more." in info.value.msg


def test_networks_can_be_refused():
    assert addresses.check_addresses(["203.0.113.7", "198.51.100.0/24"], allow_networks=False) == (
        ["203.0.113.7"], ["'198.51.100.0/24' (networks are not allowed here)"])


def test_repeats_are_dropped_in_100000_addresses():
    network = ipaddress.ip_network("198.18.0.0/15")
    items = [str(network[i]) for i in range(1, 100001)]
    result, bad = addresses.check_addresses(items + ["%s/32" % item for item in items[::-1]])
    assert result == items and bad == []


def test_allowlist_entries_may_have_host_bits():
    assert addresses.network_problem("192.0.2.1/24") == ""
    assert addresses.network_problem("2001:db8::/32") == ""
    assert "does not appear to be an IPv4 or IPv6 network" in addresses.network_problem("office.example")


def test_allowlist_conflicts_name_the_covering_entry(captured):
    ignoreip = parse_ignoreip(captured["ignoreip"]["stdout"])
    hosts = parse_host_addresses(captured["ip_address_show"]["stdout"])
    own = [address for address, name in hosts if name == "eth0"][0]
    protected, warnings = addresses.protected_networks(ignoreip, hosts, resolve=lambda name: ["127.0.0.1", "::1"])
    assert warnings == []
    conflicts = dict(addresses.allowlist_conflicts(
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
    protected = addresses.protected_networks([], [])[0]
    assert dict(addresses.allowlist_conflicts(["127.0.0.1", "::1", "203.0.113.7"], protected)) == {
        "127.0.0.1": "loopback (127.0.0.0/8)", "::1": "loopback (::1/128)"}


def test_ignoreip_host_names_resolve_or_warn():
    protected, warnings = addresses.protected_networks(
        ["api.example.test", "gone.example.test", "file:/etc/x"], [],
        resolve=lambda name: ["192.0.2.80"] if name == "api.example.test" else [])
    assert dict(addresses.allowlist_conflicts(["192.0.2.80"], protected)) == {
        "192.0.2.80": "the jail's ignoreip entry api.example.test (192.0.2.80)"}
    assert len(warnings) == 2
    assert "'gone.example.test' does not resolve" in warnings[0]
    assert "'file:/etc/x' is not an address" in warnings[1]


def test_sorting_is_numeric_v4_first():
    assert addresses.sorted_addresses(["2001:db8::1", "203.0.113.10", "not-an-ip", "203.0.113.9", "198.51.100.0/24"]) == [
        "198.51.100.0/24", "203.0.113.9", "203.0.113.10", "2001:db8::1", "not-an-ip"]


def test_shortlist():
    assert addresses.shortlist(["a", "b"]) == "a; b"
    assert addresses.shortlist(["a", "b", "c"], shown=2) == "a; b and 1 more"


def ipaddress_span(text):
    """What address_span gives through ipaddress alone (the slow path it skips for plain IPv4)."""
    network = ipaddress.ip_network(text, strict=False)
    return network.version, int(network.network_address), int(network.broadcast_address)


@pytest.mark.parametrize("text", ["0.0.0.0", "255.255.255.255", "198.18.0.1", "10.0.0.255", "1.2.3.4", "203.0.113.250"])
def test_plain_ipv4_fast_path_agrees_with_ipaddress(text):
    assert addresses.CANONICAL_IPV4.match(text)
    assert addresses.normalise_address(text) == str(ipaddress.ip_address(text)) == text
    addresses.address_span.cache_clear()
    assert addresses.address_span(text) == ipaddress_span(text)


@pytest.mark.parametrize("text", ["01.2.3.4", "1.2.3.04", "256.1.1.1", "1.2.3", "1.2.3.4.5", "1.2.3.4\n", " 1.2.3.4",
                                  "\u0661.2.3.4", "1.2.3.4/32", "1.2.3.0/24", "::ffff:1.2.3.4", "+1.2.3.4", "1.2.3.-4"])
def test_anything_else_takes_the_ipaddress_path(text):
    assert not addresses.CANONICAL_IPV4.match(text)
    try:
        expected = str(ipaddress.ip_network(text, strict=True)) if "/" in text else str(ipaddress.ip_address(text))
    except ValueError:
        expected = None
    if expected is None:
        with pytest.raises(ValueError):
            addresses.normalise_address(text)
    else:
        assert addresses.normalise_address(text) == expected.replace("/32", "")


def test_fast_path_spans_match_ipaddress_over_a_range():
    network = ipaddress.ip_network("198.18.0.0/22")
    texts = [str(address) for address in network]
    addresses.address_span.cache_clear()
    assert [addresses.address_span(text) for text in texts] == [ipaddress_span(text) for text in texts]
    assert addresses.validate_addresses(texts) == texts
