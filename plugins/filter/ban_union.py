# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter of playbooks/sync.yml: the union of every host's bans, per jail."""

from __future__ import annotations

import datetime

from ansible.errors import AnsibleFilterError


def _epoch_of(ban_start, date_time):
    """Seconds since the epoch of a ban start in the host's local time, using the host's UTC offset."""
    offset = str(date_time.get("tz_offset", "+0000"))
    sign = -1 if offset.startswith("-") else 1
    delta = datetime.timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5])) * sign
    local = datetime.datetime.strptime(ban_start, "%Y-%m-%d %H:%M:%S")
    return (local - delta).replace(tzinfo=datetime.timezone.utc).timestamp()


def ban_union(states, max_age=0):
    if not isinstance(states, (list, tuple)):
        raise AnsibleFilterError("ban_union: give a list of {host, jails, date_time}, not %s" % type(states).__name__)
    try:
        max_age = int(max_age)
    except (TypeError, ValueError):
        raise AnsibleFilterError("ban_union: max_age=%r is not a number of seconds" % (max_age,)) from None
    union = {}
    for state in states:
        date_time = state.get("date_time") or {}
        now = float(date_time.get("epoch", 0) or 0)
        ages = {}  # ban start text -> age: a flood's bans share a few start seconds
        for jail, info in sorted((state.get("jails") or {}).items()):
            addresses = union.setdefault(jail, set())
            for ban in (info.get("actions") or {}).get("banned") or []:
                start = ban.get("ban_start")
                if max_age and now and start:
                    try:
                        if start not in ages:
                            ages[start] = now - _epoch_of(start, date_time)
                        if ages[start] > max_age:
                            continue
                    except ValueError:
                        raise AnsibleFilterError("ban_union: host %s, jail %s: unreadable ban start %r"
                                                 % (state.get("host"), jail, ban["ban_start"])) from None
                addresses.add(ban["ip"])
    return dict((jail, sorted(addresses)) for jail, addresses in union.items())


def ban_state(host_vars, register):
    """One host's entry for ban_union: its registered fail2ban_status result and its clock."""
    result = host_vars.get(register) or {}
    if result.get("failed") or "jails" not in result:
        raise AnsibleFilterError("ban_union: host %s has no fail2ban_status result in %s (did reading its bans fail?)"
                                 % (host_vars.get("inventory_hostname"), register))
    return {"host": host_vars.get("inventory_hostname"), "jails": result["jails"],
            "date_time": (host_vars.get("ansible_facts") or {}).get("date_time") or {}}


class FilterModule:
    def filters(self):
        return {"ban_union": ban_union, "ban_state": ban_state}
