#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: fail2ban_info
short_description: Read what fail2ban watches and bans
version_added: 0.1.0
description:
  - Reads the state of the fail2ban server on the host with C(fail2ban-client) and returns it as
    structured data - the server version, the jails, and per jail its filter counters, the log files or
    journal matches it watches, its action counters and the banned addresses with ban start and end.
  - Per jail it also says whether the ban back end holds every ban fail2ban lists (RV(jails.enforcement)),
    read from the back end itself - C(nft -j list table inet floodguard), C(iptables-save) and
    C(ip6tables-save), or NGINX's ban list on the nginx_ratelimit role's socket - not from fail2ban.
  - Read-only - it never changes anything and always reports C(changed=false), in check mode too.
  - Formerly C(floodguard.shield.fail2ban_status); that name still works, with a deprecation warning,
    until release 2.0.0.
author:
  - floodguard developers (@floodguard)
extends_documentation_fragment:
  - floodguard.shield.attributes
  - floodguard.shield.attributes.info_module
  - floodguard.shield.fail2ban
  - floodguard.shield.fail2ban.list_limit
options:
  jail:
    description:
      - The jail to report on. Leave it out for every jail.
      - An unknown jail fails the task with the list of the jails the server has.
    type: str
  ip:
    description:
      - Report only on the jails that ban this address (or CIDR network, as banned), and only on its
        ban in each of them. C(banned_in) lists those jails.
      - With O(jail), only that jail is considered.
    type: str
notes:
  - Ban start and end times are the host's local time as fail2ban prints them (C(YYYY-MM-DD HH:MM:SS)).
  - O(list_limit) keeps the most recent bans of each jail; RV(jails.actions.banned_truncated) says when it cut the list.
seealso:
  - module: floodguard.shield.fail2ban_ban
"""

EXAMPLES = r"""
- name: Read every jail
  floodguard.shield.fail2ban_info:
  become: true
  register: fail2ban

- name: Show how many addresses each jail bans
  ansible.builtin.debug:
    msg: "{{ item.key }}: {{ item.value.actions.currently_banned }} banned"
  loop: "{{ fail2ban.jails | dict2items }}"

- name: Which jails ban 203.0.113.7, and until when?
  floodguard.shield.fail2ban_info:
    ip: 203.0.113.7
  become: true
  register: lookup

- name: Report it
  ansible.builtin.debug:
    msg: "{{ lookup.banned_in | join(', ') or 'not banned' }}"

# Ad hoc: ansible web --become -m floodguard.shield.fail2ban_info -a 'jail=nginx-req-limit list_limit=20'
"""

RETURN = r"""
version:
  description: The fail2ban server's version.
  returned: success
  type: str
  sample: 1.0.2
jail_list:
  description: Every jail the server runs, in fail2ban's order.
  returned: success
  type: list
  elements: str
  sample: [manual, nginx-req-limit, sshd]
ip:
  description: The address asked about, normalised as fail2ban lists it.
  returned: when O(ip) is set
  type: str
  sample: 2001:db8::7
banned_in:
  description: The jails (among those asked about) that ban O(ip).
  returned: when O(ip) is set
  type: list
  elements: str
  sample: [manual]
jails:
  description:
    - Per jail reported on (O(jail), every jail, or with O(ip) the jails that ban it), its state.
  returned: success
  type: dict
  sample:
    manual:
      filter:
        currently_failed: 0
        total_failed: 0
        file_list: [/var/log/floodguard-manual.log]
        journal_matches: []
      actions:
        currently_banned: 1
        total_banned: 3
        banned:
          - ip: 203.0.113.7
            ban_start: "2026-11-25 20:41:00"
            ban_end: "2026-12-25 20:41:00"
            bantime: 2592000
        banned_truncated: false
  contains:
    filter:
      description: What the jail's filter watches and has counted.
      type: dict
      contains:
        currently_failed:
          description: Failures the filter currently counts towards a ban.
          type: int
        total_failed:
          description: Failures counted since the jail started.
          type: int
        file_list:
          description: The log files the jail reads (empty for a journal jail).
          type: list
          elements: str
        journal_matches:
          description:
            - The systemd journal matches of a journal (C(backend=systemd)) jail; each item is one
              alternative of the match (fail2ban joins them with C(+)). Empty for a file jail.
          type: list
          elements: str
    actions:
      description: What the jail's actions ban.
      type: dict
      contains:
        currently_banned:
          description: Addresses banned now.
          type: int
        total_banned:
          description: Bans since the jail started.
          type: int
        banned:
          description:
            - The banned addresses with their ban times, oldest first, at most O(list_limit) (the most recent).
            - With O(ip), only that address's ban.
          type: list
          elements: dict
          contains:
            ip:
              description: The banned address or network.
              type: str
            ban_start:
              description: When the ban started (host local time).
              type: str
            ban_end:
              description: When the ban ends (host local time); null for a permanent ban.
              type: str
            bantime:
              description: Length of the ban in seconds; -1 for a permanent ban.
              type: int
        banned_truncated:
          description: True when O(list_limit) cut the list of banned addresses.
          type: bool
    enforcement:
      description:
        - Whether the ban back end holds every ban of the jail, compared with C(fail2ban-client get JAIL banip --with-time).
        - Counts and sample are over all of the jail's bans, whatever O(ip) and O(list_limit) select.
      type: dict
      contains:
        enforced:
          description:
            - True when every ban is enforced; false when some is not (the drift).
            - Null when no action of the jail is a back end this module reads (a custom action).
          type: bool
        backend:
          description: The back end read, C(nftables), C(iptables) or C(nginx); null when none.
          type: str
        missing:
          description: How many banned addresses the back end does not block.
          type: int
        missing_sample:
          description: Up to 10 of them.
          type: list
          elements: str
        problem:
          description: What is wrong (a missing table, chain, set or ban list, or bans missing); empty when enforced.
          type: str
enforced:
  description: False when some jail reported on does not have all its bans enforced (RV(jails.enforcement.enforced) is false).
  returned: success
  type: bool
  sample: true
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.floodguard.shield.plugins.module_utils._addresses import AddressError, normalise_address
from ansible_collections.floodguard.shield.plugins.module_utils._enforcement import Enforcement
from ansible_collections.floodguard.shield.plugins.module_utils._fail2ban_client import Fail2banClient
from ansible_collections.floodguard.shield.plugins.module_utils._results import LIST_LIMIT_OPTION, check_list_limit, limited
from ansible_collections.floodguard.shield.plugins.module_utils._runner import run_module


def read_jail(client, jail, ip, list_limit, enforcement):
    state = client.jail_status(jail)
    bans = client.bans_with_time(jail)
    state["enforcement"] = enforcement.jail_report(client, jail, [ban["ip"] for ban in bans])
    if ip is not None:
        bans = [ban for ban in bans if ban["ip"] == ip]
    # Keep the most recent bans: fail2ban lists the oldest first.
    shown, cut = limited(bans[::-1], list_limit)
    state["actions"]["banned"] = shown[::-1]
    state["actions"]["banned_truncated"] = cut
    return state


def read_info(module):
    jail = module.params["jail"]
    list_limit = check_list_limit(module.params["list_limit"])
    ip = None
    if module.params["ip"] is not None:
        try:
            ip = normalise_address(module.params["ip"].strip())
        except ValueError as exc:
            raise AddressError(
                "ip is %r, not an IP address or CIDR network (%s): give one, e.g. 203.0.113.7 or 2001:db8::7."
                % (module.params["ip"], exc)
            )

    client = Fail2banClient(module)
    result = dict(changed=False, version=client.version())
    if jail is not None:
        result["jail_list"] = client.require_jail(jail)
        selected = [jail]
    else:
        result["jail_list"] = client.jails()
        selected = result["jail_list"]
    if ip is not None:
        banning = client.jails_banning(ip)
        selected = [name for name in selected if name in banning]
        result.update(ip=ip, banned_in=selected)
    enforcement = Enforcement(module)
    result["jails"] = dict((name, read_jail(client, name, ip, list_limit, enforcement)) for name in selected)
    result["enforced"] = all(state["enforcement"]["enforced"] is not False for state in result["jails"].values())
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            jail=dict(type="str"),
            ip=dict(type="str"),
            list_limit=LIST_LIMIT_OPTION,
        ),
        supports_check_mode=True,
    )
    run_module(module, read_info)


if __name__ == "__main__":
    main()
