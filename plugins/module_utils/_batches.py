# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to floodguard.shield: splits long argument lists into calls that fit the kernel's limit.

Not a public API: it may change.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

# The argv of one call stays under this many bytes (see batch_budget).
BATCH_BUDGET_CAP = 256 * 1024
BATCH_BUDGET_FLOOR = 16 * 1024
# Each argv entry costs its bytes, a NUL and a pointer in the new process's stack.
ARGV_ENTRY_OVERHEAD = 1 + 8


def batch_budget(arg_max=None, environ=None):
    """Bytes one argv may take.

    Linux limits argv plus environment to ARG_MAX (a quarter of the stack limit, usually 2 MiB).
    Half of what the environment leaves, capped at 256 KiB, is far from that limit and still fits
    about 10,000 IPv4 or 5,000 IPv6 addresses in one call.
    """
    if arg_max is None:
        try:
            arg_max = os.sysconf("SC_ARG_MAX")
        except (ValueError, OSError, AttributeError):
            arg_max = 128 * 1024
    if environ is None:
        environ = os.environ
    environment = sum(len(key) + len(value) + 2 + 8 for key, value in environ.items())
    return max(BATCH_BUDGET_FLOOR, min((arg_max - environment) // 2, BATCH_BUDGET_CAP))


def _argv_bytes(arg):
    return len(arg.encode("utf-8")) + ARGV_ENTRY_OVERHEAD


def batches(items, prefix, budget):
    """Lists of items that, after the argv prefix, stay within budget bytes each."""
    base = sum(_argv_bytes(arg) for arg in prefix)
    batch = []
    size = base
    for item in items:
        cost = _argv_bytes(item)
        if batch and size + cost > budget:
            yield batch
            batch = []
            size = base
        batch.append(item)
        size += cost
    if batch:
        yield batch
