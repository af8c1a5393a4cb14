# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""module_utils/_batches.py: long argument lists split into few calls under the kernel's limit."""

from __future__ import annotations

import ipaddress

from ansible_collections.floodguard.shield.plugins.module_utils import _batches


def test_batch_budget_leaves_room_under_arg_max():
    assert _batches.batch_budget(arg_max=2097152, environ={}) == 256 * 1024
    assert _batches.batch_budget(arg_max=131072, environ={"PATH": "x" * 1000}) == (131072 - 1014) // 2
    assert _batches.batch_budget(arg_max=4096, environ={}) == 16 * 1024


def test_100000_addresses_go_in_few_batches_under_the_budget():
    network = ipaddress.ip_network("198.18.0.0/15")
    addresses = [str(network[i]) for i in range(1, 50001)] + ["2001:db8::%x" % i for i in range(1, 50001)]
    prefix = ["/usr/bin/fail2ban-client", "set", "manual", "banip"]
    budget = _batches.batch_budget()
    found = list(_batches.batches(addresses, prefix, budget))
    assert [address for batch in found for address in batch] == addresses
    assert all(sum(len(arg) + 9 for arg in prefix + batch) <= budget for batch in found)
    # Never one call per address: thousands go in each.
    assert len(found) <= 40
    assert min(len(batch) for batch in found[:-1]) > 3000


def test_nothing_to_do_is_no_batch():
    assert list(_batches.batches([], ["fail2ban-client"], 1024)) == []
