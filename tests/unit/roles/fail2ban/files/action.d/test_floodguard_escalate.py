# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tests of the fail2ban action roles/fail2ban/files/action.d/floodguard_escalate.py (prefix escalation).

The counting and the decision with a jail that records what the action bans through it; the real
fail2ban, nftables and NGINX are exercised by the Molecule scenario botnet.
"""

from __future__ import annotations

import ipaddress

import pytest

from ansible_collections.floodguard.shield.tests.unit.roles.fail2ban.actions import load_action

escalate = load_action("floodguard_escalate.py")


class Actions:
    def __init__(self):
        self.banned = []

    def addBannedIP(self, ip):  # pylint: disable=invalid-name  # fail2ban's name
        self.banned.append(ip)
        return 1


class Jail:
    def __init__(self):
        self.name = "nginx-req-limit"
        self.actions = Actions()


def action(**options):
    jail = Jail()
    result = escalate.Action(jail, "floodguard_escalate", **options)
    result._protected = list(result._settings.allowlist)  # this host's own addresses are not the test's
    return result, jail


@pytest.mark.parametrize("address, prefix", [
    ("198.51.100.7", "198.51.100.0/24"),
    ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
    ("::ffff:198.51.100.7", "198.51.100.0/24"),
    ("198.51.100.0/24", None),
    ("not-an-address", None),
])
def test_prefix_of_single_addresses_only(address, prefix):
    got = escalate.prefix_of(address, {4: 24, 6: 64})
    assert got == (ipaddress.ip_network(prefix) if prefix else None)


def test_the_threshold_th_address_of_a_prefix_bans_the_prefix_through_the_jail():
    act, jail = action(threshold="3", window="600")
    for host in (1, 2, 2):  # the same address twice counts once
        act.ban({"ip": "203.0.113.%d" % host})
    assert jail.actions.banned == []
    act.ban({"ip": "203.0.113.9"})
    assert jail.actions.banned == ["203.0.113.0/24"]


def test_ipv6_clients_rotating_in_their_64_are_escalated():
    act, jail = action(threshold="4")
    for host in range(4):
        act.ban({"ip": "2001:db8:7:7::%x" % (host + 1)})
    assert jail.actions.banned == ["2001:db8:7:7::/64"]


def test_addresses_of_different_prefixes_never_add_up():
    act, jail = action(threshold="2")
    for third in range(50):
        act.ban({"ip": "10.1.%d.1" % third})
    assert jail.actions.banned == []


def test_a_prefix_that_holds_an_allowlisted_address_is_never_banned():
    act, jail = action(threshold="2", allowlist="127.0.0.0/8 ::1 203.0.113.200")
    for host in range(10):
        act.ban({"ip": "203.0.113.%d" % (host + 1)})
    assert jail.actions.banned == []


def test_bans_older_than_the_window_do_not_count(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(escalate.time, "time", lambda: clock[0])
    act, jail = action(threshold="2", window="10")
    act.ban({"ip": "203.0.113.1"})
    clock[0] += 11
    act.ban({"ip": "203.0.113.2"})
    assert jail.actions.banned == []
    act.ban({"ip": "203.0.113.3"})
    assert jail.actions.banned == ["203.0.113.0/24"]


def test_restored_bans_and_network_bans_are_not_counted():
    act, jail = action(threshold="2")
    act.ban({"ip": "203.0.113.1", "restored": True})
    act.ban({"ip": "203.0.113.2", "restored": True})
    act.ban({"ip": "203.0.113.0/24"})
    assert jail.actions.banned == []


def test_expired_prefixes_are_swept(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(escalate.time, "time", lambda: clock[0])
    counter = escalate.PrefixCounter(escalate.Settings(threshold="5", window="10"))
    for third in range(escalate.SWEEP_EVERY - 1):
        counter.add(ipaddress.ip_network("10.2.%d.0/24" % (third % 250)), "10.2.%d.%d" % (third % 250, third // 250), clock[0])
    clock[0] += 20
    counter.add(ipaddress.ip_network("10.3.0.0/24"), "10.3.0.1", clock[0])
    assert len(counter) == 1


@pytest.mark.parametrize("options, message", [
    ({"threshold": "1"}, "threshold"),
    ({"window": "soon"}, "window"),
    ({"ipv4prefix": "32"}, "ipv4prefix"),
    ({"ipv6prefix": "8"}, "ipv6prefix"),
    ({"allowlist": "office.example.com"}, "allowlist"),
])
def test_bad_options_name_the_option(options, message):
    with pytest.raises(escalate.EscalateConfigError, match=message):
        action(**options)


def test_the_action_survives_a_reload_of_fail2ban_and_takes_changed_options():
    act, jail = action(threshold="3")
    # fail2ban's Actions.add keeps an existing action over a reload only with both methods.
    assert callable(act.clearAllParams) and callable(act.reload)
    for host in (1, 2):
        act.ban({"ip": "203.0.113.%d" % host})
    act.reload(threshold="3", window="600", ipv4prefix="24", ipv6prefix="64", allowlist="")
    act.ban({"ip": "203.0.113.3"})  # same options: the counts are kept
    assert jail.actions.banned == ["203.0.113.0/24"]
    act.reload(threshold="2", allowlist="203.0.113.200")
    assert act._settings.threshold == 2
    assert any(str(network) == "203.0.113.200/32" for network in act._protected)


def test_a_reload_with_a_bad_option_raises_and_keeps_the_old_ones():
    act, _jail = action(threshold="3")
    with pytest.raises(escalate.EscalateConfigError):
        act.reload(threshold="1")
    assert act._settings.threshold == 3
