# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to floodguard.shield: lists in module results and diffs, cut at list_limit.

100,000 banned addresses must not flood a job's output: lists stop at list_limit, counts stay exact.
Not a public API: it may change.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.floodguard.shield.plugins.module_utils._addresses import sorted_addresses
from ansible_collections.floodguard.shield.plugins.module_utils._runner import ModuleFailure

# The list_limit option of every module (documented in doc_fragments/fail2ban.py, LIST_LIMIT).
LIST_LIMIT_OPTION = dict(type="int", default=1000)


def check_list_limit(limit):
    """limit, or a ModuleFailure when it is negative."""
    if limit < 0:
        raise ModuleFailure("list_limit is %d: give 0 (list every address) or a positive number." % limit)
    return limit


def limited(items, limit):
    """(the first limit items, whether some were cut); limit 0 keeps them all."""
    if limit and len(items) > limit:
        return items[:limit], True
    return list(items), False


def short_invocation(params, name, limit):
    """The `invocation` Ansible returns with a result (the module's arguments), with the list `name` cut
    to `limit` as the result's lists are: 100,000 addresses would otherwise be most of what a task returns."""
    return {"module_args": dict(params, **{name: limited(params[name], limit)[0]})}


def ban_diff(jail, before, after, added, removed, limit):
    """Diff of the jail's banned addresses: full lists when short, else only what changed."""
    header = {"before_header": "%s: banned before" % jail, "after_header": "%s: banned after" % jail}
    if not limit or (len(before) <= limit and len(after) <= limit):
        header.update(before="".join(line + "\n" for line in before), after="".join(line + "\n" for line in after))
        return header
    note = "# %d addresses banned before and after, not listed\n" % (len(before) - len(removed))
    header.update(before=note + _listing(removed, limit), after=note + _listing(added, limit))
    return header


def _listing(addresses, limit):
    shown, cut = limited(sorted_addresses(addresses), limit)
    more = "# ... and %d more\n" % (len(addresses) - len(shown)) if cut else ""
    return "".join(line + "\n" for line in shown) + more
