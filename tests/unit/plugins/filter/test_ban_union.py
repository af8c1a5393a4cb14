# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tests of the ban_union and ban_state filters (playbooks/sync.yml)."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.floodguard.shield.plugins.filter.ban_union import ban_state, ban_union

# 2026-12-01 10:00:00 UTC
NOW = {"epoch": "1796119200", "tz_offset": "+0000"}


def host(name, bans, date_time=None):
    date_time = date_time or NOW
    jails = dict((jail, {"actions": {"banned": [{"ip": ip, "ban_start": start} for ip, start in entries]}})
                 for jail, entries in bans.items())
    return {"host": name, "jails": jails, "date_time": date_time}


def test_the_union_holds_every_hosts_bans_per_jail_once():
    states = [
        host("web1", {"nginx-req-limit": [("203.0.113.7", "2026-12-01 09:59:00"), ("2001:db8::7", "2026-12-01 09:58:00")],
                      "manual": []}),
        host("web2", {"nginx-req-limit": [("203.0.113.7", "2026-12-01 09:59:30"), ("198.51.100.0/24", "2026-12-01 09:59:00")],
                      "sshd": [("192.0.2.9", "2026-12-01 09:00:00")]}),
    ]
    assert ban_union(states) == {
        "nginx-req-limit": ["198.51.100.0/24", "2001:db8::7", "203.0.113.7"],
        "manual": [],
        "sshd": ["192.0.2.9"],
    }


def test_old_bans_are_not_copied_in_the_hosts_own_time_zone():
    # 11:55 at UTC+2 is 09:55 UTC: 5 minutes old; 10:40 at UTC+2 is 80 minutes old.
    berlin = {"epoch": NOW["epoch"], "tz_offset": "+0200"}
    states = [host("web1", {"manual": [("203.0.113.7", "2026-12-01 11:55:00"), ("203.0.113.8", "2026-12-01 10:40:00")]}, berlin)]
    assert ban_union(states, max_age=900) == {"manual": ["203.0.113.7"]}
    assert ban_union(states, max_age=0) == {"manual": ["203.0.113.7", "203.0.113.8"]}


def test_bad_input_names_the_problem():
    with pytest.raises(AnsibleFilterError, match="list"):
        ban_union("web1")
    with pytest.raises(AnsibleFilterError, match="max_age"):
        ban_union([], max_age="soon")
    with pytest.raises(AnsibleFilterError, match="web3"):
        ban_state({"inventory_hostname": "web3", "status": {"failed": True, "msg": "x"}}, "status")


def test_the_state_of_a_host_is_its_result_and_clock():
    entry = ban_state({"inventory_hostname": "web1", "status": {"jails": {"manual": {}}}, "ansible_facts": {"date_time": NOW}}, "status")
    assert entry == {"host": "web1", "jails": {"manual": {}}, "date_time": NOW}
