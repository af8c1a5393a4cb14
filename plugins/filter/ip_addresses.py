# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter that turns operator input (a list, or a comma/space separated string) into valid addresses.

The address rules are those of the modules: module_utils/_addresses.py.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.floodguard.shield.plugins.module_utils._addresses import (
    check_addresses,
    shortlist,
    split_addresses,
)


def ip_addresses(value, variable="ips", allow_networks=True):
    """Return the addresses in value, normalised, in order, without repeats.

    Raises AnsibleFilterError naming the variable and every bad entry, so that a playbook can stop
    before it touches a host.
    """
    if value is None:
        raise AnsibleFilterError("%s is missing: give one or more IP addresses, e.g. -e %s=203.0.113.7" % (variable, variable))
    if isinstance(value, str):
        value = [value]
    elif not isinstance(value, (list, tuple)):
        raise AnsibleFilterError("%s must be a list or a comma/space separated string of IP addresses, not %s" % (variable, type(value).__name__))
    items = split_addresses(value)
    if not items:
        raise AnsibleFilterError("%s is empty: give one or more IP addresses, e.g. -e %s=203.0.113.7" % (variable, variable))
    result, bad = check_addresses(items, allow_networks=allow_networks)
    if bad:
        raise AnsibleFilterError(
            "%s holds %d invalid address(es): %s. Give IPv4 or IPv6 addresses%s, e.g. 203.0.113.7 or 2001:db8::7."
            % (variable, len(bad), shortlist(bad), " or CIDR networks" if allow_networks else "")
        )
    return result


class FilterModule(object):
    """floodguard.shield address filters."""

    def filters(self):
        return {"ip_addresses": ip_addresses}
