# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to floodguard.shield: IP addresses and networks given by operators, and what protects them.

The one home of address handling, for modules (on the host) and filters (on the controller):
split operator input, normalise as fail2ban lists addresses, validate, sort, and check a ban
against the allowlists (ignoreip, loopback, the host's own addresses). Only the standard library
and ansible-core. Not a public API: it may change.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import functools
import ipaddress
import re
import socket

from ansible.module_utils.common.text.converters import to_text

from ansible_collections.floodguard.shield.plugins.module_utils._runner import ModuleFailure

# Always protected: banning them cuts the host off from itself.
LOOPBACK_NETWORKS = ("127.0.0.0/8", "::1/128")
# How many entries an error message lists before it only counts the rest.
SHOWN_IN_MESSAGES = 20

SEPARATORS = re.compile(r"[\s,]+")
# An IPv4 address as ipaddress writes it (no leading zeros): normalised already, and parsed here without
# ipaddress, which is most of the cost of 100,000 addresses. Anything else goes through ipaddress.
OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
CANONICAL_IPV4 = re.compile(r"%s\.%s\.%s\.%s\Z" % (OCTET, OCTET, OCTET, OCTET))
HOST_NAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$")


class AddressError(ModuleFailure):
    """Input that holds entries which are not addresses; raised before anything is changed."""


def shortlist(items, shown=SHOWN_IN_MESSAGES):
    """'a; b; c and 17 more': the first items of a list, for an error message."""
    items = list(items)
    more = " and %d more" % (len(items) - shown) if len(items) > shown else ""
    return "; ".join(items[:shown]) + more


# --- operator input -----------------------------------------------------------------------------

def normalise_address(text):
    """'2001:DB8::7' -> '2001:db8::7', '203.0.113.7/32' -> '203.0.113.7', as fail2ban lists them.

    Raises ValueError for anything that is not an IPv4/IPv6 address or a network without host bits.
    """
    if CANONICAL_IPV4.match(text):
        return text
    if "/" in text:
        network = ipaddress.ip_network(text, strict=True)
        if network.num_addresses == 1:
            return str(network.network_address)
        return str(network)
    return str(ipaddress.ip_address(text))


def split_addresses(values):
    """Entries of a list whose items may themselves hold several addresses (AWX survey text)."""
    items = []
    for value in values:
        items.extend(item for item in SEPARATORS.split(to_text(value)) if item)
    return items


def check_addresses(items, allow_networks=True):
    """(normalised addresses in order without repeats, ["'entry' (why)" for every bad entry])."""
    result = []
    seen = set()
    bad = []
    for item in items:
        try:
            if not allow_networks and "/" in item:
                raise ValueError("networks are not allowed here")
            normalised = normalise_address(item)
        except ValueError as exc:
            bad.append("%r (%s)" % (item, exc))
            continue
        if normalised not in seen:
            seen.add(normalised)
            result.append(normalised)
    return result, bad


def validate_addresses(values, variable="ips"):
    """The normalised addresses of values, in order, without repeats; raises naming every bad entry."""
    result, bad = check_addresses(split_addresses(values))
    if bad:
        raise AddressError(
            "%s holds %d entr%s that %s not an IP address or CIDR network: %s. Give IPv4 or IPv6 "
            "addresses or networks, e.g. 203.0.113.7, 2001:db8::7 or 198.51.100.0/24. Nothing was changed."
            % (variable, len(bad), "y" if len(bad) == 1 else "ies", "is" if len(bad) == 1 else "are", shortlist(bad))
        )
    return result


def network_problem(text):
    """Why text is not an address or network (host bits allowed, as allowlists write them); '' if it is."""
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError as exc:
        return str(exc)
    return ""


def as_network(text):
    """The network of an address or CIDR string, or None for anything else (e.g. 'not-an-ip')."""
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


def is_network(text):
    """True for a normalised network of more than one address (normalise_address drops /32 and /128)."""
    return "/" in text


# --- order --------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1 << 18)
def address_span(text):
    """(IP version, first, last address as integers) of an address or network; None for anything else.

    Integers, computed once per address, because 100,000 addresses are compared against every
    allowlist entry and sorted, and parsing them is the slow part.
    """
    if CANONICAL_IPV4.match(text):
        value = int.from_bytes(socket.inet_aton(text), "big")
        return 4, value, value
    try:
        if "/" in text:
            network = ipaddress.ip_network(text, strict=False)
            return network.version, int(network.network_address), int(network.broadcast_address)
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    return address.version, int(address), int(address)


def sort_key(text):
    """Addresses in numeric order, IPv4 before IPv6, anything unparseable last."""
    span = address_span(text)
    if span is None:
        return (9, 0, 0, text)
    return span + (text,)


def sorted_addresses(addresses):
    return sorted(addresses, key=sort_key)


# --- allowlists ---------------------------------------------------------------------------------

def resolve_host_name(name):
    """The addresses a host name resolves to on this host (as fail2ban resolves ignoreip names)."""
    try:
        infos = socket.getaddrinfo(name, None)
    except (socket.gaierror, UnicodeError):
        return []
    return sorted(set(info[4][0].split("%")[0] for info in infos))


def protected_networks(ignoreip, host_addresses, resolve=resolve_host_name):
    """[(network, why)] that a ban must not cover, and warnings about entries that cannot be checked.

    ignoreip entries may be addresses, networks or host names; names are resolved here, on the
    host, as fail2ban does. host_addresses are [(address, interface)] (_host_addresses); loopback
    always counts.
    """
    protected = []
    warnings = []
    for entry in ignoreip:
        network = as_network(entry)
        if network is not None:
            protected.append((network, "the jail's ignoreip entry %s" % entry))
        elif HOST_NAME.match(entry):
            resolved = resolve(entry)
            if not resolved:
                warnings.append(
                    "ignoreip entry %r does not resolve on this host, so it protects nothing (for fail2ban "
                    "either)." % entry
                )
            for address in resolved:
                protected.append((ipaddress.ip_network(address), "the jail's ignoreip entry %s (%s)" % (entry, address)))
        else:
            warnings.append("ignoreip entry %r is not an address, network or host name: not checked." % entry)
    for network in LOOPBACK_NETWORKS:
        protected.append((ipaddress.ip_network(network), "loopback (%s)" % network))
    for address, interface in host_addresses:
        network = as_network(address)
        if network is not None:
            protected.append((network, "this host's own address %s on %s" % (address, interface)))
    return protected, warnings


def allowlist_conflicts(addresses, protected):
    """[(address, why)] for every address or network that overlaps a protected network."""
    guards = [((network.version, int(network.network_address), int(network.broadcast_address)), why)
              for network, why in protected]
    conflicts = []
    for address in addresses:
        span = address_span(address)
        if span is None:
            continue
        version, first, last = span
        for (guard_version, guard_first, guard_last), why in guards:
            if version == guard_version and first <= guard_last and last >= guard_first:
                conflicts.append((address, why))
                break
    return conflicts
