# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter that turns operator input (a list, or a comma/space separated string) into valid addresses."""

from __future__ import annotations

import ipaddress
import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.six import string_types

SEPARATORS = re.compile(r"[\s,]+")


def ip_addresses(value, variable="ips", allow_networks=True):
    """Return the addresses in value, normalised, in order, without repeats.

    Raises AnsibleFilterError naming the variable and every bad entry, so that a playbook can stop
    before it touches a host.
    """
    if value is None:
        raise AnsibleFilterError("%s is missing: give one or more IP addresses, e.g. -e %s=203.0.113.7" % (variable, variable))
    if isinstance(value, string_types):
        items = [item for item in SEPARATORS.split(value) if item]
    elif isinstance(value, (list, tuple)):
        items = []
        for entry in value:
            items.extend(item for item in SEPARATORS.split(to_text(entry)) if item)
    else:
        raise AnsibleFilterError("%s must be a list or a comma/space separated string of IP addresses, not %s" % (variable, type(value).__name__))
    if not items:
        raise AnsibleFilterError("%s is empty: give one or more IP addresses, e.g. -e %s=203.0.113.7" % (variable, variable))

    result = []
    bad = []
    for item in items:
        try:
            if "/" in item:
                if not allow_networks:
                    raise ValueError("networks are not allowed here")
                network = ipaddress.ip_network(item, strict=True)
                normalised = str(network.network_address) if network.num_addresses == 1 else str(network)
            else:
                normalised = str(ipaddress.ip_address(item))
        except ValueError as exc:
            bad.append("%r (%s)" % (item, exc))
            continue
        if normalised not in result:
            result.append(normalised)
    if bad:
        raise AnsibleFilterError(
            "%s holds %d invalid address(es): %s. Give IPv4 or IPv6 addresses%s, e.g. 203.0.113.7 or 2001:db8::7."
            % (variable, len(bad), "; ".join(bad), " or CIDR networks" if allow_networks else "")
        )
    return result


class FilterModule(object):
    """floodguard.shield address filters."""

    def filters(self):
        return {"ip_addresses": ip_addresses}
