#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: wafv2_ban
short_description: Ban or unban addresses at the AWS edge, in AWS WAFv2 IP sets
version_added: 0.1.0
description:
  - Makes sure that addresses are in (O(state=present)) or not in (O(state=absent)) a group of AWS WAFv2 IP sets,
    so that a web ACL rule that blocks those sets drops the clients in front of the load balancer (REGIONAL) or
    CloudFront (CLOUDFRONT), for every instance at once.
  - Addresses are normalised before they are compared (V(203.0.113.7) and V(203.0.113.7/32) are the same,
    V(2001:DB8::7) is V(2001:db8::7/128)), and only the sets whose list really changes are written.
  - An IP set holds at most 10,000 addresses. O(ip_sets) may name several sets of each address version; new
    addresses go to the first set of their version with room. When all are full the task fails, naming how many
    addresses do not fit, and no set lacking room is written.
  - Give it the operators' own sets (for example C(floodguard-operator-v4), C(floodguard-operator-v6), as
    C(examples/ec2/waf.yml) creates them), not the hosts' ones. Each host's fail2ban mirrors its bans into sets of
    its own, and the web ACL rule blocks an address found in any set, so an operator's unban never undoes a host's
    ban, and a host's unban never undoes the operator's.
  - C(UpdateIPSet) replaces a set's whole list and needs the lock token of a fresh C(GetIPSet). When another
    writer (another operator's run) changed the set in between, AWS answers C(WAFOptimisticLockException); the
    module then reads the sets again and recomputes, so the other writer's change is kept. Throttling is retried
    with exponential backoff.
  - Refuses, before changing anything, addresses that O(allowlist) or loopback cover, unless O(force=true).
  - Why not C(community.aws.wafv2_ip_set) - it compares addresses as strings (V(203.0.113.7) is not
    V(203.0.113.7/32) to it), manages one set (no spreading over several when over 10,000), and does not retry
    on a lock conflict, so it fails when another writer writes the set at the same moment. Use it to
    create the sets (see C(examples/ec2)); use this module to ban and unban.
author:
  - floodguard developers (@floodguard)
extends_documentation_fragment:
  - floodguard.shield.attributes
  - floodguard.shield.fail2ban.list_limit
attributes:
  check_mode:
    support: full
    details:
      - Reads the sets, reports what would change (RV(added), RV(removed)) and writes nothing.
  diff_mode:
    support: full
    details:
      - The addresses of the sets before and after, sorted. When either list is longer than O(list_limit),
        only the added and removed addresses are shown.
options:
  ip_sets:
    description:
      - The IP sets, by name (found with C(ListIPSets)) or as V(NAME:ID) (one API call less). IPv4 and IPv6 sets
        may be mixed; each set's address version is read from AWS. New addresses fill them in this order.
    type: list
    elements: str
    required: true
  scope:
    description:
      - V(REGIONAL) for a web ACL of an ALB (or API Gateway), V(CLOUDFRONT) for CloudFront (region V(us-east-1)).
    type: str
    choices: [REGIONAL, CLOUDFRONT]
    default: REGIONAL
  region:
    description:
      - The AWS Region. Default, the boto3 chain (C(AWS_REGION), C(AWS_DEFAULT_REGION), the profile's region).
    type: str
    aliases: [aws_region]
  endpoint_url:
    description:
      - Another endpoint for the WAFv2 API, for example a VPC endpoint, or C(moto) in tests.
    type: str
  profile:
    description: A profile of the AWS configuration files. Default, the boto3 credential chain.
    type: str
  access_key:
    description: AWS access key id. Default, the boto3 credential chain (instance profile, environment, profile).
    type: str
    aliases: [aws_access_key_id]
  secret_key:
    description: AWS secret access key. Default, the boto3 credential chain.
    type: str
    aliases: [aws_secret_access_key]
  session_token:
    description: AWS session token (temporary credentials).
    type: str
    aliases: [aws_session_token]
  addresses:
    description:
      - IPv4 or IPv6 addresses or CIDR networks. An item may hold several, separated by commas, spaces or new lines
        (as an AWX survey text field gives them). Any invalid entry fails the task, naming it, and nothing is changed.
    type: list
    elements: str
    required: true
    aliases: [ips]
  state:
    description: V(present) adds the addresses that no set holds yet; V(absent) removes them from every set.
    type: str
    choices: [present, absent]
    default: present
  allowlist:
    description:
      - Addresses and networks that must never be banned at the edge (admins, monitoring, the office). Loopback is
        always protected. Give the same list as the fail2ban role's C(fail2ban_ignoreip).
    type: list
    elements: str
    default: []
  force:
    description:
      - Add even addresses that O(allowlist) covers. Banning an allowlisted address at the edge can lock the
        operators out of every instance at once. Removing is never refused.
    type: bool
    default: false
requirements:
  - boto3 and botocore
  - credentials allowed C(wafv2:GetIPSet) and C(wafv2:UpdateIPSet) on the sets, and C(wafv2:ListIPSets) when a set
    is given by name only
notes:
  - "Runs where the AWS credentials are, usually the controller (C(delegate_to: localhost), C(run_once: true))."
  - A change takes from seconds to a few minutes to reach every edge location of AWS WAF.
  - Every failure returns C(msg) and, when AWS answered with an error, C(error_code) (for example
    V(WAFNonexistentItemException)) and C(operation).
seealso:
  - module: floodguard.shield.fail2ban_ban
  - module: community.aws.wafv2_ip_set
"""

EXAMPLES = r"""
- name: Ban two addresses at the edge
  floodguard.shield.wafv2_ban:
    ip_sets: [floodguard-operator-v4, floodguard-operator-v6]
    region: eu-west-1
    addresses:
      - 203.0.113.7
      - 2001:db8::7
  delegate_to: localhost
  run_once: true

- name: Lift an edge ban
  floodguard.shield.wafv2_ban:
    ip_sets: [floodguard-operator-v4, floodguard-operator-v6]
    region: eu-west-1
    addresses: [203.0.113.7/32]
    state: absent
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
added:
  description: The addresses added (CIDR form, sorted), at most O(list_limit).
  returned: always
  type: list
  elements: str
  sample: [203.0.113.7/32]
removed:
  description: The addresses removed (CIDR form, sorted), at most O(list_limit).
  returned: always
  type: list
  elements: str
added_count:
  description: How many addresses were (or in check mode would be) added.
  returned: always
  type: int
removed_count:
  description: How many addresses were (or would be) removed.
  returned: always
  type: int
truncated:
  description: Whether RV(added) or RV(removed) were cut to O(list_limit).
  returned: always
  type: bool
ip_sets:
  description: Each set after the task - name, id, ARN, address version and how many addresses it holds.
  returned: success
  type: list
  elements: dict
  sample: [{name: floodguard-operator-v4, id: 1f2e, arn: "arn:aws:wafv2:...", version: IPV4, count: 1}]
api_calls:
  description: AWS API calls made, by operation (retries included).
  returned: always
  type: dict
  sample: {get_ip_set: 2, update_ip_set: 1}
lock_conflicts:
  description: How many times another writer changed a set between read and write (each retried).
  returned: always
  type: int
error_code:
  description: The AWS error code of a failure, for example V(WAFNonexistentItemException).
  returned: failure
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.floodguard.shield.plugins.module_utils._addresses import (
    allowlist_conflicts,
    as_network,
    protected_networks,
    shortlist,
    validate_addresses,
)
from ansible_collections.floodguard.shield.plugins.module_utils._results import (
    LIST_LIMIT_OPTION,
    ban_diff,
    check_list_limit,
    limited,
)
from ansible_collections.floodguard.shield.plugins.module_utils._runner import ModuleFailure
from ansible_collections.floodguard.shield.plugins.module_utils._wafv2 import (
    IPSets,
    WafError,
    make_client,
    sorted_cidrs,
    waf_cidr,
)


def refuse_allowlisted(addresses, allowlist):
    """Fails, naming each address and the entry covering it, when a ban would hit the allowlist."""
    loopback, _warnings = protected_networks([], [])
    protected = [(as_network(entry), "the allowlist entry %s" % entry) for entry in validate_addresses(allowlist, "allowlist")]
    conflicts = allowlist_conflicts(addresses, protected + loopback)
    if conflicts:
        shown = shortlist("%s (%s)" % pair for pair in conflicts)
        raise WafError("Refusing to ban allowlisted addresses at the edge: %s. Remove them from addresses, or set "
                       "force: true if that is really meant. Nothing was changed." % shown,
                       code="Allowlisted")


def run(module):
    params = module.params
    addresses = validate_addresses(params["addresses"], "addresses")
    limit = check_list_limit(params["list_limit"])
    if params["state"] == "present" and not params["force"]:
        refuse_allowlisted(addresses, params["allowlist"])
    cidrs = [waf_cidr(address) for address in addresses]
    client = make_client(region=params["region"], scope=params["scope"], endpoint_url=params["endpoint_url"],
                         profile=params["profile"], access_key=params["access_key"],
                         secret_key=params["secret_key"], session_token=params["session_token"])
    ip_sets = IPSets(client, params["scope"], params["ip_sets"])
    result = dict(changed=False, added=[], removed=[], added_count=0, removed_count=0, truncated=False,
                  api_calls=ip_sets.calls, lock_conflicts=0)
    try:
        if params["state"] == "present":
            sets, before, after, added, removed = ip_sets.apply(cidrs, [], module.check_mode)
        else:
            sets, before, after, added, removed = ip_sets.apply([], cidrs, module.check_mode)
    except WafError as exc:
        result.update(exc.result(), lock_conflicts=ip_sets.lock_conflicts)
        module.fail_json(**result)
    result["added"], cut_added = limited(added, limit)
    result["removed"], cut_removed = limited(removed, limit)
    result.update(changed=bool(added or removed), added_count=len(added), removed_count=len(removed),
                  truncated=cut_added or cut_removed, lock_conflicts=ip_sets.lock_conflicts,
                  ip_sets=[ip_set.summary() for ip_set in sets])
    if module._diff:
        union_before = sorted_cidrs(set().union(*[cidrs for _name, cidrs in before]))
        union_after = sorted_cidrs(set().union(*[cidrs for _name, cidrs in after]))
        result["diff"] = ban_diff("WAF IP sets " + ", ".join(name for name, _cidrs in before),
                                  union_before, union_after, added, removed, limit)
    module.exit_json(**result)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            ip_sets=dict(type="list", elements="str", required=True),
            scope=dict(type="str", choices=["REGIONAL", "CLOUDFRONT"], default="REGIONAL"),
            region=dict(type="str", aliases=["aws_region"]),
            endpoint_url=dict(type="str"),
            profile=dict(type="str"),
            access_key=dict(type="str", aliases=["aws_access_key_id"], no_log=True),
            secret_key=dict(type="str", aliases=["aws_secret_access_key"], no_log=True),
            session_token=dict(type="str", aliases=["aws_session_token"], no_log=True),
            addresses=dict(type="list", elements="str", required=True, aliases=["ips"]),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            allowlist=dict(type="list", elements="str", default=[]),
            force=dict(type="bool", default=False),
            list_limit=LIST_LIMIT_OPTION,
        ),
        supports_check_mode=True,
    )
    if not module.params["ip_sets"]:
        module.fail_json(msg="ip_sets is empty: name at least one WAFv2 IP set.")
    try:
        run(module)
    except ModuleFailure as exc:
        module.fail_json(**exc.result())
    except WafError as exc:
        module.fail_json(**exc.result())


if __name__ == "__main__":
    main()
