# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""plugins/filter/fail2ban_config.py: its address check is the modules' one.

The role's input checks and jail normalisation are tested with the role, in
tests/unit/roles/fail2ban/test_fail2ban_config.py.
"""

from __future__ import annotations

import pytest

from ansible_collections.floodguard.shield.plugins.filter import fail2ban_config
from ansible_collections.floodguard.shield.plugins.module_utils._addresses import network_problem


@pytest.mark.parametrize("entry", ["192.0.2.10", "198.51.100.0/24", "192.0.2.1/24", "2001:db8::/32", " 10.0.0.0/8 "])
def test_allowlist_entries_that_are_addresses_or_networks(entry):
    assert fail2ban_config.fail2ban_address_problems([entry], "fail2ban_ignoreip") == []


@pytest.mark.parametrize("entry", ["office.example", "10.0.0.0/33", "999.1.1.1"])
def test_allowlist_entries_that_are_not(entry):
    problems = fail2ban_config.fail2ban_address_problems([entry], "fail2ban_ignoreip")
    assert problems == ["fail2ban_ignoreip holds %r, which is not an IP address or CIDR network (%s): write it like "
                        "192.0.2.10, 198.51.100.0/24 or 2001:db8::/32." % (entry, network_problem(entry))]


def test_allowlist_must_be_a_list_of_strings():
    assert "must be a list" in fail2ban_config.fail2ban_address_problems("192.0.2.10", "fail2ban_ignoreip")[0]
    assert "(not a string)" in fail2ban_config.fail2ban_address_problems([7], "fail2ban_ignoreip")[0]
