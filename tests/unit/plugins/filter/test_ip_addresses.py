# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.floodguard.shield.plugins.filter.ip_addresses import ip_addresses
from ansible_collections.floodguard.shield.plugins.module_utils._addresses import AddressError, validate_addresses


@pytest.mark.parametrize(
    "value, expected",
    [
        ("203.0.113.7", ["203.0.113.7"]),
        ("203.0.113.7, 2001:DB8::7\n198.51.100.0/24", ["203.0.113.7", "2001:db8::7", "198.51.100.0/24"]),
        (["203.0.113.7", "203.0.113.8 203.0.113.9"], ["203.0.113.7", "203.0.113.8", "203.0.113.9"]),
        ("203.0.113.7 203.0.113.7/32 203.0.113.7", ["203.0.113.7"]),
        ("2001:db8::7/128", ["2001:db8::7"]),
    ],
)
def test_accepts_and_normalises(value, expected):
    assert ip_addresses(value) == expected


@pytest.mark.parametrize(
    "value, fragment",
    [
        (None, "ips is missing"),
        ("", "ips is empty"),
        (" , ", "ips is empty"),
        ("not-an-ip", "'not-an-ip'"),
        ("203.0.113.7 999.1.1.1", "1 invalid address(es): '999.1.1.1'"),
        ("198.51.100.1/24", "has host bits set"),
        ({"ip": "203.0.113.7"}, "must be a list or a comma/space separated string"),
    ],
)
def test_rejects_with_the_variable_and_the_entry(value, fragment):
    with pytest.raises(AnsibleFilterError) as error:
        ip_addresses(value)
    assert fragment in str(error.value)
    assert "ips" in str(error.value)


def test_networks_can_be_refused():
    with pytest.raises(AnsibleFilterError, match="networks are not allowed"):
        ip_addresses("198.51.100.0/24", variable="addresses", allow_networks=False)


def test_error_names_the_given_variable():
    with pytest.raises(AnsibleFilterError, match="^addresses holds"):
        ip_addresses("nope", variable="addresses")


def test_the_filter_and_the_modules_read_addresses_alike():
    # One address parser (module_utils/_addresses.py): the playbooks check what the modules accept.
    given = ["203.0.113.7, 2001:DB8::7", "198.51.100.0/24 203.0.113.7/32", "2001:db8::7/128"]
    assert ip_addresses(given) == validate_addresses(given) == ["203.0.113.7", "2001:db8::7", "198.51.100.0/24"]
    for bad in ("198.51.100.1/24", "999.1.1.1", "not-an-ip"):
        with pytest.raises(AnsibleFilterError):
            ip_addresses(bad)
        with pytest.raises(AddressError):
            validate_addresses([bad])


def test_a_long_list_of_bad_entries_is_counted_not_listed():
    with pytest.raises(AnsibleFilterError) as error:
        ip_addresses(" ".join("bad%d" % i for i in range(25)))
    assert "ips holds 25 invalid address(es)" in str(error.value) and " and 5 more." in str(error.value)
