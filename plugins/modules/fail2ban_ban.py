#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: fail2ban_ban
short_description: Ban or unban addresses in a fail2ban jail
version_added: 0.1.0
description:
  - Makes sure that addresses are banned (O(state=present)) or not banned (O(state=absent)) in a jail of the
    fail2ban server on the host, with C(fail2ban-client set JAIL banip|unbanip).
  - Reads what the jail bans first and bans or unbans only the difference, so a second run changes nothing
    and reports C(changed=false). Addresses already banned are left alone - their ban is not prolonged.
  - Many addresses go to fail2ban in batches, one C(fail2ban-client) call per batch, never one per address;
    each batch's command line stays well under the kernel's argument-length limit, so 100,000 addresses
    work in one task. A jail of floodguard's actions takes them all in one call (see the notes).
  - Refuses, before changing anything, to ban an address that the jail's C(ignoreip) or this host's own
    addresses (loopback included) cover, because a ban made with C(fail2ban-client) bypasses C(ignoreip)
    - unless O(force=true). The error names the entry that covers each address.
  - Validates every address itself - fail2ban accepts and lists C(not-an-ip) as banned.
author:
  - floodguard developers (@floodguard)
extends_documentation_fragment:
  - floodguard.shield.attributes
  - floodguard.shield.fail2ban
  - floodguard.shield.fail2ban.list_limit
attributes:
  check_mode:
    support: full
    details:
      - Reads the jail, reports what would change (RV(added), RV(removed), RV(banned)) and changes nothing.
  diff_mode:
    support: full
    details:
      - The jail's banned addresses before and after, sorted. When either list is longer than O(list_limit),
        only the added and removed addresses are shown.
options:
  jail:
    description:
      - The fail2ban jail to ban in or unban from, for example V(manual).
      - An unknown jail fails the task with the list of the jails the server has.
    type: str
    required: true
  ips:
    description:
      - The addresses - IPv4, IPv6, or CIDR networks such as V(198.51.100.0/24). An item may hold several
        addresses separated by commas, spaces or new lines (as an AWX survey text field gives them).
      - Addresses are normalised as fail2ban lists them (V(2001:DB8::7) is V(2001:db8::7), V(203.0.113.7/32) is
        V(203.0.113.7)). A network with host bits set, such as V(198.51.100.1/24), is an error.
      - A network is banned only when every action of the jail can ban networks - C(iptables) rules can; the stock
        C(nftables) action cannot (its set has no C(flags interval)), nor can an C(ipset) that is not a C(hash:net);
        a Python action must declare C(supports_networks = True). Otherwise fail2ban would list the network as
        banned while the firewall blocks nothing, so the task fails instead. Unbanning a network always works.
      - Any invalid entry fails the task, naming it, and nothing is changed. An empty list changes nothing.
    type: list
    elements: str
    required: true
  state:
    description:
      - V(present) bans the addresses that are not banned yet; V(absent) unbans those that are banned.
    type: str
    choices: [present, absent]
    default: present
  force:
    description:
      - Ban even addresses that the jail's C(ignoreip) or this host's own addresses cover. Only for the rare case
        where that is really meant - banning the host's own or an allowlisted address can lock the operators out.
      - Unbanning is never refused.
    type: bool
    default: false
  allowlisted:
    description:
      - What to do with addresses to ban that the jail's C(ignoreip) or this host's own addresses cover (and
        O(force=false)). V(fail) refuses the whole task; V(skip) bans the others and returns the skipped ones in
        RV(skipped), for a fleet-wide sync where each host has its own allowlist (playbooks/sync.yml).
    type: str
    choices: [fail, skip]
    default: fail
requirements:
  - C(ip) from iproute2 (to find this host's addresses), unless O(force=true)
notes:
  - C(ignoreip) host names are resolved on the host, as fail2ban resolves them; a name that does not resolve
    protects nothing and is reported in the warnings. C(ignorecommand) is not consulted.
  - fail2ban answers a batch only when its actions have run for every address in it. The stock nftables action
    starts one C(nft) process per address (on a small host about 20 ms per ban and 40 ms per unban, so 10,000
    addresses take minutes); C(fail2ban-client) waits for as long as that takes, and so does this module.
  - O(list_limit) cuts RV(banned), RV(added) and RV(removed); RV(truncated) says when it did. It cuts O(ips) in
    the arguments that ansible-core up to 2.20 returns with the result (C(invocation), shown with C(-vvv)) too.
  - A ban of 1,000 addresses or more takes a bulk path where the jail's actions offer one (RV(bulk)). Where every
    action of the jail is one of floodguard's batching actions (C(floodguard_nftables) and the NGINX and WAF back
    ends) and C(bantime.increment) is off, one call of their C(bulkban) method bans all of them at once. The
    module writes the addresses to a file only its user may write; in fail2ban the back ends write the bans first,
    then fail2ban adds a ticket per address to the jail's ban list, writes them to its database in one
    transaction and logs one summary line. They are fail2ban's own bans, listed by
    C(fail2ban-client get JAIL banned) and M(floodguard.shield.fail2ban_info), restored after a restart and
    lifted at the end of the ban time.
  - Otherwise, where one of the jail's actions has the property C(bulk_window), the batches run with that window
    open, so that fail2ban logs one line per batch instead of one C(Ban) line per address, its main cost per
    ban. The window closes by itself after at most 10 minutes.
seealso:
  - module: floodguard.shield.fail2ban_info
"""

EXAMPLES = r"""
- name: Ban two addresses in the manual jail
  floodguard.shield.fail2ban_ban:
    jail: manual
    ips:
      - 203.0.113.7
      - 2001:db8::7
  become: true

- name: Lift the ban on one address
  floodguard.shield.fail2ban_ban:
    jail: manual
    ips: [203.0.113.7]
    state: absent
  become: true

- name: Ban a list from a file, one address per line, and show what changed
  floodguard.shield.fail2ban_ban:
    jail: manual
    ips: "{{ lookup('ansible.builtin.file', 'blocklist.txt').splitlines() }}"
  become: true
  register: blocklist

- name: Report
  ansible.builtin.debug:
    msg: "{{ blocklist.added_count }} banned now, {{ blocklist.banned_count }} in the jail"

# Ad hoc, from the controller:
#   ansible web --become -m floodguard.shield.fail2ban_ban -a 'jail=manual ips=203.0.113.7'
#   ansible web --become -m floodguard.shield.fail2ban_ban -a 'jail=manual ips=203.0.113.7,2001:db8::7 state=absent' --check --diff
"""

RETURN = r"""
jail:
  description: The jail acted on.
  returned: always
  type: str
  sample: manual
state:
  description: The state asked for.
  returned: always
  type: str
  sample: present
banned:
  description:
    - The jail's banned addresses after the task (in check mode, as they would be), sorted, at most O(list_limit).
  returned: success
  type: list
  elements: str
  sample: [203.0.113.7, 2001:db8::7]
banned_count:
  description: How many addresses the jail bans after the task (in check mode, would ban).
  returned: success
  type: int
  sample: 2
added:
  description: Addresses this task banned (in check mode, would ban), sorted, at most O(list_limit).
  returned: success
  type: list
  elements: str
  sample: [2001:db8::7]
added_count:
  description: How many addresses this task banned (would ban).
  returned: success
  type: int
  sample: 1
removed:
  description: Addresses this task unbanned (in check mode, would unban), sorted, at most O(list_limit).
  returned: success
  type: list
  elements: str
  sample: []
removed_count:
  description: How many addresses this task unbanned (would unban).
  returned: success
  type: int
  sample: 0
skipped:
  description: Addresses not banned because an allowlist of this host covers them (O(allowlisted=skip)), with the entry that covers each.
  returned: success
  type: list
  elements: str
  sample: ["10.0.0.5 is covered by ignoreip 10.0.0.0/24"]
truncated:
  description: True when O(list_limit) cut RV(banned), RV(added) or RV(removed).
  returned: success
  type: bool
  sample: false
batches:
  description: How many C(fail2ban-client) calls the change took (0 in check mode or without change).
  returned: success
  type: int
  sample: 1
bulk:
  description:
    - True when the bans went through the jail's bulk path in one call (see the module's notes); false otherwise,
      also in check mode.
  returned: success
  type: bool
  sample: false
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.floodguard.shield.plugins.module_utils._addresses import (
    allowlist_conflicts,
    is_network,
    protected_networks,
    shortlist,
    sorted_addresses,
    validate_addresses,
)
from ansible_collections.floodguard.shield.plugins.module_utils._fail2ban_client import Fail2banClient, Fail2banError
from ansible_collections.floodguard.shield.plugins.module_utils._host_addresses import read_host_addresses
from ansible_collections.floodguard.shield.plugins.module_utils._results import (
    LIST_LIMIT_OPTION,
    ban_diff,
    check_list_limit,
    limited,
    short_invocation,
)
from ansible_collections.floodguard.shield.plugins.module_utils._runner import run_module


def refuse_unsupported_networks(client, jail, additions):
    """Fails when a network is to be banned through an action that cannot ban networks."""
    networks = [address for address in additions if is_network(address)]
    if not networks:
        return
    for action in client.actions(jail):
        supported, why = client.action_network_support(jail, action)
        if not supported:
            raise Fail2banError(
                "Refusing to ban %d network(s) in jail %r: its action %r cannot ban a network (%s), so fail2ban "
                "would list the network as banned while the firewall blocks nothing: %s. Give the addresses one "
                "by one, or give the jail an action that bans networks (e.g. iptables-multiport). Nothing was changed."
                % (len(networks), jail, action, why, shortlist(networks))
            )


def refuse_allowlisted(module, client, jail, additions, skip=False):
    """Fails when ignoreip or the host's own addresses cover an address to ban; returns (warnings, skipped).

    With skip, the covered addresses are returned as skipped ("address is covered by entry") instead.
    """
    protected, warnings = protected_networks(client.ignoreip(jail), read_host_addresses(module))
    conflicts = allowlist_conflicts(additions, protected)
    if conflicts and skip:
        return warnings, conflicts
    if conflicts:
        raise Fail2banError(
            "Refusing to ban %d address(es) in jail %r that an allowlist covers (a ban made with fail2ban-client "
            "bypasses ignoreip): %s. Remove them from ips, or set force: true if banning them is really meant. "
            "Nothing was changed."
            % (len(conflicts), jail, shortlist(["%s is covered by %s" % conflict for conflict in conflicts]))
        )
    return warnings, []


def verify(jail, state, changes, after):
    """Fails when fail2ban's list does not show the change it acknowledged."""
    after = set(after)
    if state == "present":
        wrong = [address for address in changes if address not in after]
        what = "is still not banned"
    else:
        wrong = [address for address in changes if address in after]
        what = "is still banned"
    if wrong:
        raise Fail2banError(
            "fail2ban accepted the change, but in jail %r %d address(es) %s: %s. See /var/log/fail2ban.log."
            % (jail, len(wrong), what, shortlist(wrong))
        )


def ensure(module):
    params = module.params
    jail = params["jail"]
    state = params["state"]
    list_limit = check_list_limit(params["list_limit"])
    if not jail or not jail.strip():
        raise Fail2banError("jail is empty: give the fail2ban jail to act on, e.g. jail=manual.")
    requested = validate_addresses(params["ips"])

    client = Fail2banClient(module)
    client.require_jail(jail)
    before = client.banned(jail)
    banned_before = set(before)
    if state == "present":
        changes = [address for address in requested if address not in banned_before]
        after = before + changes
    else:
        changes = [address for address in requested if address in banned_before]
        leaving = set(changes)
        after = [address for address in before if address not in leaving]

    warnings = []
    skipped = []
    if state == "present" and changes:
        refuse_unsupported_networks(client, jail, changes)
        if not params["force"]:
            warnings, skipped = refuse_allowlisted(module, client, jail, changes, skip=params["allowlisted"] == "skip")
        if skipped:
            covered = set(address for address, _why in skipped)
            changes = [address for address in changes if address not in covered]
            after = before + changes

    calls, bulk = 0, False
    if changes and not module.check_mode:
        calls, bulk = client.change(jail, "banip" if state == "present" else "unbanip", changes)
        after = client.banned(jail)
        verify(jail, state, changes, after)

    before_sorted = sorted_addresses(before)
    after_sorted = sorted_addresses(after)
    changes_sorted = sorted_addresses(changes)
    banned, banned_cut = limited(after_sorted, list_limit)
    listed_changes, changes_cut = limited(changes_sorted, list_limit)
    result = dict(
        changed=bool(changes),
        jail=jail,
        state=state,
        banned=banned,
        banned_count=len(after),
        added=listed_changes if state == "present" else [],
        added_count=len(changes) if state == "present" else 0,
        removed=listed_changes if state == "absent" else [],
        removed_count=len(changes) if state == "absent" else 0,
        skipped=["%s is covered by %s" % conflict for conflict in skipped],
        truncated=banned_cut or changes_cut,
        batches=calls,
        bulk=bulk,
        invocation=short_invocation(params, "ips", list_limit),
    )
    if module._diff:
        added = changes if state == "present" else []
        removed = changes if state == "absent" else []
        result["diff"] = ban_diff(jail, before_sorted, after_sorted, added, removed, list_limit)
    for warning in warnings:
        module.warn(warning)
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            jail=dict(type="str", required=True),
            ips=dict(type="list", elements="str", required=True),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            force=dict(type="bool", default=False),
            allowlisted=dict(type="str", choices=["fail", "skip"], default="fail"),
            list_limit=LIST_LIMIT_OPTION,
        ),
        supports_check_mode=True,
    )
    run_module(module, ensure)


if __name__ == "__main__":
    main()
