# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to floodguard.shield: keeps addresses in AWS WAFv2 IP sets.

Shared by the wafv2_ban module (controller) and the fail2ban action floodguard_wafv2.py (hosts, where
the fail2ban role installs this file next to the action). So it imports only the standard library and
botocore: no Ansible. Not a public API: it may change.

AWS shapes the design: an IP set holds at most MAX_ADDRESSES; UpdateIPSet replaces the whole list and
needs the LockToken of a fresh GetIPSet (a stale one fails with WAFOptimisticLockException); Create,
Put and Update calls are limited to about one per second per account and Region.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import random
import time

MAX_ADDRESSES = 10000
SCOPES = ("REGIONAL", "CLOUDFRONT")
# CloudFront's web ACLs and IP sets live in us-east-1 only.
CLOUDFRONT_REGION = "us-east-1"
VERSIONS = {4: "IPV4", 6: "IPV6"}
# Rate limits. WAFv2 reports a call-rate excess as WAFLimitsExceededException too; the other limit it
# stands for (10,000 addresses per set) is never reached here, since plan_changes never fills a set
# beyond it.
THROTTLE_CODES = frozenset((
    "ThrottlingException", "Throttling", "ThrottledException", "TooManyRequestsException",
    "RequestLimitExceeded", "WAFLimitsExceededException", "WAFInternalErrorException",
))
LOCK_CONFLICT = "WAFOptimisticLockException"
UNREACHABLE = "EndpointConnectionError"


class WafError(Exception):
    """A failure reported as is: msg, the AWS error code and the API operation."""

    def __init__(self, msg, code=None, operation=None, retryable=False):
        super(WafError, self).__init__(msg)
        self.msg = msg
        self.code = code
        self.operation = operation
        self.retryable = retryable

    def result(self):
        return dict(msg=self.msg, error_code=self.code, operation=self.operation)


# --- addresses in WAF's form ----------------------------------------------------------------------

def waf_cidr(text):
    """'203.0.113.7' and '203.0.113.7/32' -> '203.0.113.7/32'; '2001:DB8::7' -> '2001:db8::7/128'.

    WAF stores CIDR strings as given, so two spellings of one address must become one string before
    they are compared. Raises ValueError for anything else.
    """
    return str(ipaddress.ip_network(str(text).strip(), strict=False))


def waf_version(cidr):
    """'IPV4' or 'IPV6', as WAF names an IP set's address version."""
    return VERSIONS[ipaddress.ip_network(cidr, strict=False).version]


def cidr_sort_key(cidr):
    network = ipaddress.ip_network(cidr, strict=False)
    return network.version, int(network.network_address), network.prefixlen


def sorted_cidrs(cidrs):
    return sorted(cidrs, key=cidr_sort_key)


def allowlisted(cidrs, allowlist):
    """The CIDRs that overlap a network of allowlist (ipaddress networks): never sent to the edge."""
    refused = []
    for cidr in cidrs:
        network = ipaddress.ip_network(cidr, strict=False)
        if any(network.version == guard.version and network.overlaps(guard) for guard in allowlist):
            refused.append(cidr)
    return refused


# --- the client -----------------------------------------------------------------------------------

def make_client(region=None, scope="REGIONAL", endpoint_url=None, profile=None, access_key=None,
                secret_key=None, session_token=None, timeout=10):
    """A wafv2 client from the usual boto3 chain (instance profile, environment, profile)."""
    if scope not in SCOPES:
        raise WafError("scope must be REGIONAL (an ALB, API Gateway) or CLOUDFRONT, not %r." % scope)
    if scope == "CLOUDFRONT":
        if region and region != CLOUDFRONT_REGION:
            raise WafError("scope CLOUDFRONT needs region %s (CloudFront's IP sets live there), not %s."
                           % (CLOUDFRONT_REGION, region))
        region = CLOUDFRONT_REGION
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise WafError("boto3 is not installed: on Debian apt-get install python3-boto3, elsewhere pip install boto3.",
                       code="MissingLibrary")
    # Retries are ours (lock conflicts need a fresh GetIPSet, throttling a longer backoff).
    config = Config(connect_timeout=timeout, read_timeout=timeout, retries={"total_max_attempts": 1})
    session = boto3.session.Session(profile_name=profile or None, aws_access_key_id=access_key or None,
                                    aws_secret_access_key=secret_key or None,
                                    aws_session_token=session_token or None, region_name=region or None)
    if not session.region_name:
        raise WafError("No AWS region: set region (or AWS_REGION / the profile's region), e.g. eu-west-1.",
                       code="NoRegion")
    return session.client("wafv2", endpoint_url=endpoint_url or None, config=config)


def translate(exc, operation):
    """A WafError for a botocore exception, saying what to do about it."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        error = response.get("Error", {})
        code = error.get("Code") or type(exc).__name__
        message = error.get("Message") or str(exc)
        if code == "WAFNonexistentItemException":
            msg = "%s: the IP set does not exist in this account, Region and scope (%s)." % (operation, message)
        elif code in ("AccessDeniedException", "AccessDenied", "UnrecognizedClientException"):
            msg = ("%s was denied (%s): the credentials need wafv2:GetIPSet, wafv2:UpdateIPSet (and "
                   "wafv2:ListIPSets to find sets by name) on these IP sets." % (operation, message))
        elif code == "WAFLimitsExceededException":
            msg = ("%s: AWS WAF refused the call as over a limit of the account (%s); WAF allows about one update "
                   "per second per account and Region." % (operation, message))
        else:
            msg = "%s failed: %s (%s)." % (operation, message, code)
        return WafError(msg, code=code, operation=operation,
                        retryable=code in THROTTLE_CODES or code == LOCK_CONFLICT)
    name = type(exc).__name__
    if name == "NoCredentialsError":
        return WafError("No AWS credentials: give an instance profile (EC2), AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY "
                        "or a profile.", code="NoCredentials", operation=operation)
    if name in ("EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError", "ConnectionClosedError"):
        return WafError("%s: AWS WAF cannot be reached (%s)." % (operation, exc), code=UNREACHABLE,
                        operation=operation, retryable=True)
    return WafError("%s failed: %s (%s)." % (operation, exc, name), code=name, operation=operation)


class IPSet(object):
    """One IP set as GetIPSet returned it, addresses in WAF's form."""

    def __init__(self, name, set_id, version, addresses, lock_token, arn=None, description=None):
        self.name = name
        self.id = set_id
        self.version = version
        self.addresses = set(addresses)
        self.lock_token = lock_token
        self.arn = arn
        self.description = description

    def summary(self):
        return dict(name=self.name, id=self.id, arn=self.arn, version=self.version, count=len(self.addresses))


def plan_changes(ip_sets, add, remove):
    """{set name: new addresses} for the sets that change, the CIDRs really added and removed.

    Removes from every set; adds only what no set of its version holds, each to the first set with room,
    in the order given. Raises WafError when the sets are too small or lack a version.
    """
    remove = set(remove)
    new = dict((ip_set.name, ip_set.addresses - remove) for ip_set in ip_sets)
    removed = sorted_cidrs(set().union(*[ip_set.addresses & remove for ip_set in ip_sets]) if ip_sets else set())
    present = set().union(*new.values()) if new else set()
    added = []
    missing = {}
    for cidr in sorted_cidrs(set(add) - present - remove):
        version = waf_version(cidr)
        target = next((ip_set for ip_set in ip_sets
                       if ip_set.version == version and len(new[ip_set.name]) < MAX_ADDRESSES), None)
        if target is None:
            missing.setdefault(version, []).append(cidr)
            continue
        new[target.name].add(cidr)
        added.append(cidr)
    if missing:
        problems = []
        for version, cidrs in sorted(missing.items()):
            sets = [ip_set.name for ip_set in ip_sets if ip_set.version == version]
            if sets:
                problems.append("%d %s addresses do not fit: the sets %s hold %d at most each; add another %s set"
                                % (len(cidrs), version, ", ".join(sets), MAX_ADDRESSES, version))
            else:
                problems.append("%d %s addresses (e.g. %s) but no %s set is given; add one" % (
                    len(cidrs), version, cidrs[0], version))
        raise WafError("; ".join(problems) + ". Nothing was changed in the sets that lacked room.", code="IPSetsFull")
    changed = dict((ip_set.name, new[ip_set.name]) for ip_set in ip_sets if new[ip_set.name] != ip_set.addresses)
    return changed, added, removed


class IPSets(object):
    """Several WAFv2 IP sets that together hold one list of addresses (IPv4 and IPv6, 10,000 per set).

    names are IP set names, or "name:id" to save the ListIPSets call. sleep and rand are injectable
    so that the retry waits are testable.
    """

    def __init__(self, client, scope, names, attempts=8, base_delay=1.0, max_delay=20.0,
                 sleep=time.sleep, rand=random.random):
        self.client = client
        self.scope = scope
        self.names = [str(name) for name in names]
        self.attempts = attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.sleep = sleep
        self.rand = rand
        self.calls = {}
        self.lock_conflicts = 0
        self.throttled = 0
        self._refs = None
        # Set when a set was not found: a set recreated under the same name has lost its addresses.
        self.lost = False

    def delay(self, attempt):
        """Exponential backoff with jitter: two hosts throttled together do not retry together."""
        return min(self.max_delay, self.base_delay * (2 ** attempt)) * (0.5 + self.rand() / 2)

    def call(self, operation, **kwargs):
        """One API call; throttling retried with backoff, anything else raised as WafError."""
        method = getattr(self.client, operation)
        for attempt in range(self.attempts):
            self.calls[operation] = self.calls.get(operation, 0) + 1
            try:
                return method(**kwargs)
            except Exception as exc:  # botocore's exception classes are generated per client
                error = exc if isinstance(exc, WafError) else translate(exc, operation)
                if error.code in THROTTLE_CODES and attempt + 1 < self.attempts:
                    self.throttled += 1
                    self.sleep(self.delay(attempt))
                    continue
                raise error
        raise WafError("%s: still throttled after %d attempts." % (operation, self.attempts), operation=operation)

    def refs(self):
        """[(name, id)] of the sets, found by name with ListIPSets when no id is given."""
        if self._refs is None:
            wanted = [name.split(":", 1) if ":" in name else [name, None] for name in self.names]
            if any(set_id is None for _name, set_id in wanted):
                found = self.list_ids()
                unknown = [name for name, set_id in wanted if set_id is None and name not in found]
                if unknown:
                    raise WafError("No %s IP set named %s in this account and Region (it has: %s). Create it first "
                                   "(see examples/ec2) or fix the name." % (
                                       self.scope, ", ".join(unknown), ", ".join(sorted(found)) or "none"),
                                   code="WAFNonexistentItemException", operation="ListIPSets")
                wanted = [[name, set_id or found[name]] for name, set_id in wanted]
            self._refs = [tuple(pair) for pair in wanted]
        return self._refs

    def list_ids(self):
        found = {}
        kwargs = dict(Scope=self.scope, Limit=100)
        while True:
            page = self.call("list_ip_sets", **kwargs)
            for summary in page.get("IPSets", []):
                found[summary["Name"]] = summary["Id"]
            if not page.get("NextMarker") or not page.get("IPSets"):
                return found
            kwargs["NextMarker"] = page["NextMarker"]

    def read(self):
        """Every set, freshly read (each with its own lock token)."""
        sets = []
        for name, set_id in self.refs():
            try:
                answer = self.call("get_ip_set", Name=name, Scope=self.scope, Id=set_id)
            except WafError as exc:
                if exc.code == "WAFNonexistentItemException":
                    self._refs = None  # recreated under its name: find its new id next time
                    self.lost = True
                raise
            body = answer["IPSet"]
            addresses = set()
            for cidr in body.get("Addresses", []):
                try:
                    addresses.add(waf_cidr(cidr))
                except ValueError:  # not ours to judge; left as it is
                    addresses.add(cidr)
            sets.append(IPSet(name, set_id, body.get("IPAddressVersion"), addresses, answer["LockToken"],
                              arn=body.get("ARN"), description=body.get("Description")))
        return sets

    def write(self, ip_set, addresses):
        kwargs = dict(Name=ip_set.name, Scope=self.scope, Id=ip_set.id, Addresses=sorted_cidrs(addresses),
                      LockToken=ip_set.lock_token)
        if ip_set.description:
            kwargs["Description"] = ip_set.description  # UpdateIPSet replaces it too
        self.call("update_ip_set", **kwargs)

    def apply(self, add, remove, check_mode=False):
        """Make the sets hold add and not remove (CIDRs); returns (sets, before, after, added, removed).

        Writes only the sets whose list changes. A lock conflict (another host wrote a set since it
        was read) starts over from a fresh read, so that host's change is kept, not overwritten.
        """
        before = None
        done_added, done_removed = set(), set()
        for attempt in range(self.attempts):
            sets = self.read()
            if before is None:
                before = [(ip_set.name, set(ip_set.addresses)) for ip_set in sets]
            changed, added, removed = plan_changes(sets, add, remove)
            after = [(ip_set.name, changed.get(ip_set.name, ip_set.addresses)) for ip_set in sets]
            if check_mode or not changed:
                return sets, before, after, sorted_cidrs(done_added | set(added)), sorted_cidrs(done_removed | set(removed))
            try:
                for ip_set in sets:
                    if ip_set.name in changed:
                        self.write(ip_set, changed[ip_set.name])
                        done_added |= changed[ip_set.name] - ip_set.addresses
                        done_removed |= ip_set.addresses - changed[ip_set.name]
                        ip_set.addresses = changed[ip_set.name]
            except WafError as exc:
                if exc.code != LOCK_CONFLICT:
                    raise
                self.lock_conflicts += 1
                self.sleep(min(self.max_delay, 0.1 * (2 ** attempt)) * (0.5 + self.rand()))
                continue
            return sets, before, after, sorted_cidrs(done_added), sorted_cidrs(done_removed)
        raise WafError("Other writers kept changing the IP sets: %d lock conflicts in a row (%s). Run again."
                       % (self.attempts, LOCK_CONFLICT), code=LOCK_CONFLICT, operation="update_ip_set")

    def api_calls(self):
        return sum(self.calls.values())
