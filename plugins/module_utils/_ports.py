# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Port lists of ban rules: port numbers, low:high ranges and service names.

Standard library only, no Ansible: the fail2ban action floodguard_nftables.py loads this same file
inside fail2ban (the role deploys it next to the action as floodguard_ports.py), and the
fail2ban_config filter checks the role's jail ports with it on the controller.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import socket

# Port lists that mean "every port": fail2ban's default (0:65535) and explicit words.
ALL_PORTS = frozenset(("", "0:65535", "1:65535", "all", "any"))
# A name of /etc/services (http, https, ssh, ...).
SERVICE_NAME = re.compile(r"^[a-z][a-z0-9-]*$")
HIGHEST_PORT = 65535


class PortError(ValueError):
    """A port that cannot be one; the message says why."""


def split_words(value):
    """The words of an option value separated by commas and/or white space: 'http, https' -> ['http', 'https']."""
    return [word for word in re.split(r"[\s,]+", str(value).strip()) if word]


def means_all_ports(value):
    """True for the port lists that cover every port (empty, 0:65535, all, any)."""
    return str(value).strip().lower() in ALL_PORTS


def port_number(word, protocol=None, lowest=0):
    """The port of a number or service name.

    With a protocol, a service name is looked up (on the host that writes the rule); without one it
    is only checked to look like a service name and returned as it is.
    """
    word = str(word).strip()
    if word.isdigit():
        number = int(word)
        if not lowest <= number <= HIGHEST_PORT:
            raise PortError("port %r is outside %d-%d" % (word, lowest, HIGHEST_PORT))
        return number
    if protocol is None:
        if SERVICE_NAME.match(word):
            return word
        raise PortError("%r is neither a port number nor a service name" % word)
    try:
        return socket.getservbyname(word, protocol)
    except OSError:
        raise PortError("unknown service name %r for %s; use a port number instead" % (word, protocol)) from None


def port_range(word, protocol=None, lowest=0):
    """(low, high) of one port word: 8443 -> (8443, 8443), 8000:8080 -> (8000, 8080), https -> (443, 443).

    fail2ban writes ranges iptables-style as low:high. Names are resolved as in port_number().
    """
    low_word, separator, high_word = str(word).strip().partition(":")
    low = port_number(low_word, protocol, lowest)
    high = port_number(high_word, protocol, lowest) if separator else low
    if isinstance(low, int) and isinstance(high, int) and low > high:
        raise PortError("range %r is reversed; write it low:high" % word)
    return low, high
