# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The batching core's one allowlist parser, which the nftables, NGINX and WAF actions share."""

from __future__ import annotations

import ipaddress

import pytest

from ansible_collections.floodguard.shield.tests.unit.roles.fail2ban.actions import load_action

batching = load_action("floodguard_batching.py")


class OptionError(batching.ConfigError):
    pass


@pytest.mark.parametrize("value, expected", [
    ("", []),
    (None, []),
    ("192.0.2.7", ["192.0.2.7/32"]),
    ("192.0.2.7/24, 2001:db8::1  ::1", ["192.0.2.0/24", "2001:db8::1/128", "::1/128"]),
])
def test_allowlist_words_become_networks(value, expected):
    assert batching.parse_allowlist(value, OptionError) == [ipaddress.ip_network(item) for item in expected]


@pytest.mark.parametrize("value", ["192.0.2.1 office.example", "192.0.2.300", "2001:db8::/129"])
def test_a_word_that_is_no_address_raises_the_callers_error_naming_it(value):
    bad = value.split()[-1]
    with pytest.raises(OptionError, match=r"allowlist: '%s' is not an IP address or network" % bad.replace(".", r"\.")):
        batching.parse_allowlist(value, OptionError)
