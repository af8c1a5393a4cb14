# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to floodguard.shield: this host's own addresses, which no ban may cover.

Not a public API: it may change.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible_collections.floodguard.shield.plugins.module_utils._runner import ModuleFailure, find_command, run_argv

IP_MISSING = (
    "The 'ip' command (iproute2) was not found: it is needed to protect this host's own addresses "
    "from a ban. Install iproute2, or set force: true to ban without that check."
)


def parse_host_addresses(stdout):
    """[(address, interface)] of this host from `ip -j address show`."""
    try:
        links = json.loads(stdout)
    except ValueError:
        raise ModuleFailure("Unexpected output from ip -j address show: %r" % stdout[:500], stdout=stdout)
    found = []
    for link in links:
        for info in link.get("addr_info", []):
            if info.get("local"):
                found.append((info["local"], link.get("ifname", "?")))
    return found


def read_host_addresses(module):
    """[(address, interface)] of this host, read with `ip -j address show`."""
    cmd = [find_command(module, "ip", IP_MISSING), "-j", "address", "show"]
    rc, stdout, stderr = run_argv(module, cmd)
    if rc != 0:
        raise ModuleFailure("Could not read this host's addresses with 'ip -j address show'.", cmd=cmd, rc=rc,
                            stdout=stdout, stderr=stderr)
    return parse_host_addresses(stdout)
