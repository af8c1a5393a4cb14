# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""fail2ban action that mirrors a jail's bans into AWS WAFv2 IP sets, in front of the load balancer.

Add it to a jail after the firewall action, which still bans at once on this host::

    action = floodguard_nftables.py[name=nginx-req-limit, port="http,https"]
             floodguard_wafv2.py[ipsets="floodguard-v4 floodguard-v6", region=eu-west-1]

Options: ``ipsets`` (IP set names, or name:id, IPv4 and IPv6 mixed; new addresses fill them in this
order, 10,000 per set), ``scope`` (REGIONAL for an ALB, CLOUDFRONT), ``region``, ``endpoint`` (a VPC
endpoint; moto in tests), ``profile``, ``allowlist`` (never sent to the edge), ``flushdelay``
(default 1 s: how long bans gather into one update), ``retrymax`` (default 60 s: the longest wait
between attempts while AWS cannot be reached), ``reconciledelay`` (default 5 s after start, when
fail2ban has restored its bans) and ``statedir`` (default /var/lib/fail2ban). Credentials come from
the boto3 chain (on EC2 the instance profile). Needs Debian's python3-boto3. Check the options (and,
with --connect, read the sets) with::

    python3 /etc/fail2ban/action.d/floodguard_check.py floodguard_wafv2.py ipsets=floodguard-v4 region=eu-west-1 [--connect]

How it works: ban() and unban() only record the wanted state of an address (floodguard_batching.py,
shared with the other actions). A flusher thread of its own, which retries, writes
what gathered during ``flushdelay`` with one GetIPSet per set and one UpdateIPSet per set that
changes (the WAF logic is _wafv2.py, the collection's module_util, installed next to this file), so
a burst of 1,000 bans is one update per set. A lock conflict (another writer changed the set) is retried
on a fresh read; throttling gets backoff. While AWS cannot be reached nothing is dropped: the
changes wait in memory and are retried with growing waits up to ``retrymax``.

Ownership: ``ipsets`` are this host's own sets (the web ACL rule blocks an address found in any
host's sets), so an unban or expiry here never removes an address another host still bans. The jails
of one host share its sets: an address leaves them only when no jail of this fail2ban process still
bans it, and the jails' writes are serialised (one lock per process), so one jail's removal cannot
race another's ban of the same address.

What this host put into the sets is kept in ``statedir``/floodguard-wafv2-<jail>.json. At start,
the addresses listed there that fail2ban no longer bans (expired while it was stopped) are removed,
and every ban fail2ban holds is added. When fail2ban stops, the edge keeps the bans (the next start
reconciles them); an unban of everything (``fail2ban-client unban --all``) removes this jail's
addresses from the sets.
"""

import importlib.util
import json
import os
import re
import sys
import threading
import time
import types
import weakref

if "floodguard_batching" not in sys.modules:  # fail2ban loads actions by path: the base is next to this file
    _SPEC = importlib.util.spec_from_file_location("floodguard_batching", os.path.join(os.path.dirname(os.path.abspath(__file__)), "floodguard_batching.py"))
    sys.modules["floodguard_batching"] = importlib.util.module_from_spec(_SPEC)
    _SPEC.loader.exec_module(sys.modules["floodguard_batching"])
batching = sys.modules["floodguard_batching"]
ports = batching.load_sibling("floodguard_ports.py", "floodguard_ports")
# The collection's plugins/module_utils/_wafv2.py, which the role installs next to this file.
wafv2 = batching.load_sibling("_wafv2.py", "floodguard_wafv2_lib")

# fail2ban loads this file once per jail, each time as a fresh module: what the jails of one process
# share lives in sys.modules under this name.
_PROCESS_SHARED = "floodguard_wafv2_process"


def _process_shared():
    """The live actions of this fail2ban process and the lock that serialises their writes."""
    shared = sys.modules.get(_PROCESS_SHARED)
    if shared is None:
        shared = types.ModuleType(_PROCESS_SHARED)
        shared.actions = weakref.WeakSet()
        shared.write_lock = threading.Lock()
        shared = sys.modules.setdefault(_PROCESS_SHARED, shared)
    return shared


OPTIONS = ("ipsets", "scope", "region", "endpoint", "profile", "allowlist", "flushdelay", "retrymax",
           "reconciledelay", "statedir", "attempts")
NAME_PATTERN = re.compile(r"^[\w-]{1,128}(:[0-9a-f-]{1,36})?$")


class WafConfigError(batching.ConfigError):
    """An action option that cannot work; the message names the option and the fix."""


def _words(value):
    return ports.split_words(value or "")


class Settings(batching.ActionSettings):
    """The action options, checked."""

    OPTIONS = OPTIONS

    def __init__(self, ipsets="", scope="REGIONAL", region="", endpoint="", profile="", allowlist="",
                 flushdelay="1", retrymax="60", reconciledelay="5", statedir="/var/lib/fail2ban", attempts="8"):
        self.ipsets = _words(ipsets)
        if not self.ipsets:
            raise WafConfigError('ipsets: empty; name the WAFv2 IP sets, e.g. ipsets="floodguard-v4 floodguard-v6"')
        bad = [name for name in self.ipsets if not NAME_PATTERN.match(name)]
        if bad:
            raise WafConfigError("ipsets: %s not a WAF IP set name (letters, digits, _ and -) or name:id" % ", ".join(bad))
        self.scope = str(scope).strip().upper()
        if self.scope not in wafv2.SCOPES:
            raise WafConfigError("scope: %r; use REGIONAL (ALB) or CLOUDFRONT" % scope)
        self.region = str(region).strip()
        self.endpoint = str(endpoint).strip()
        self.profile = str(profile).strip()
        self.allowlist = batching.parse_allowlist(allowlist, WafConfigError)
        try:
            self.flushdelay = float(flushdelay)
            self.retrymax = float(retrymax)
            self.reconciledelay = float(reconciledelay)
            self.attempts = int(attempts)
        except ValueError:
            raise WafConfigError("flushdelay, retrymax and reconciledelay are seconds (e.g. 1, 60, 5), attempts a count") from None
        if not 0 <= self.flushdelay <= 30 or not 1 <= self.retrymax <= 3600 or self.attempts < 1:
            raise WafConfigError("flushdelay must be 0 to 30 s, retrymax 1 to 3600 s, attempts at least 1")
        self.statedir = str(statedir)

    @classmethod
    def from_options(cls, options):
        return cls(**cls.known(options))

    def summary(self):
        return "%s (%s)" % (" ".join(self.ipsets), self.scope)


def connect_report(settings):
    """One line per IP set, read from AWS: what `floodguard_check.py floodguard_wafv2.py ... --connect` prints."""
    try:
        client = wafv2.make_client(region=settings.region, scope=settings.scope, endpoint_url=settings.endpoint,
                                   profile=settings.profile)
        ip_sets = wafv2.IPSets(client, settings.scope, settings.ipsets).read()
    except wafv2.WafError as error:
        raise WafConfigError("cannot read the IP sets: %s" % error.msg) from None
    return ["%s %s: %d addresses" % (ip_set.name, ip_set.version, len(ip_set.addresses)) for ip_set in ip_sets]


class WafV2Action(batching.BatchingAction):
    """fail2ban Python action: mirror bans into WAFv2 IP sets, written in coalesced batches.

    Its flusher loop is its own: a batch that AWS refuses stays pending and is retried with backoff.
    """

    backend = "the AWS edge"
    # A bulk ban (bulkban) leaves the edge to this action's own flusher and its retries.
    WRITES_IN_CALLER = False

    def __init__(self, jail, action_name, **options):
        super().__init__(jail, action_name, **options)
        # _lock also guards _owned; _pending: CIDR -> True (wanted in the sets) or False (wanted out).
        self._owned = set()  # what this host's jail has put into the sets
        self._ip_sets = None
        self._reconcile_at = None
        self._previous = set()
        # The jails of this process (another fail2ban process, another host, has its own).
        self._shared = _process_shared()
        self.syncs = 0
        self.failures = 0

    @classmethod
    def settings_from(cls, jail_name, options):
        return Settings.from_options(options)

    @property
    def state_file(self):
        return os.path.join(self._settings.statedir, "floodguard-wafv2-%s.json" % self._jail.name)

    def _client(self):
        settings = self._settings
        return wafv2.make_client(region=settings.region, scope=settings.scope, endpoint_url=settings.endpoint,
                                 profile=settings.profile)

    # fail2ban life cycle

    def start(self):
        self._previous = self._load_state()
        self._owned = set(self._previous)
        self._reconcile_at = time.monotonic() + self._settings.reconciledelay
        self._shared.actions.add(self)
        self._start_flusher()
        self._wakeup.set()

    def stop(self):
        self._shared.actions.discard(self)
        self._stop_flusher(timeout=self._settings.retrymax + 30)
        with self._lock:
            left = len(self._pending)
        if left:
            self._logSys.warning("[%s] %s: %d edge changes not written yet; the next start reconciles them",
                                 self._jail.name, self._name, left)

    def flush(self):
        """fail2ban-client unban --all, or a jail stopping: fail2ban unbans everything at once."""
        if not getattr(getattr(self._jail, "actions", None), "active", True):
            # The jail is stopping (fail2ban restarts, or stops): its bans come back at the next
            # start, so the edge keeps them; the reconcile then removes what expired meanwhile.
            return True
        with self._lock:
            for cidr in self._owned:
                self._pending[cidr] = False
            for cidr, wanted in list(self._pending.items()):
                if wanted:
                    self._pending[cidr] = False
        self._wakeup.set()
        return True

    def reload(self, **options):
        settings = self._read_settings(options)
        if settings != self._settings:
            self._logSys.info("[%s] %s: applying changed options", self._jail.name, self._name)
            self._settings = settings
            self._ip_sets = None  # other sets, endpoint or region: a new client
            self._wakeup.set()

    # batching

    def _target(self, ip, banned):
        try:
            cidr = wafv2.waf_cidr(str(ip))
        except ValueError:
            self._log_not_an_address(ip, banned)
            return None
        if banned and wafv2.allowlisted([cidr], self._settings.allowlist):
            self._logSys.warning("[%s] %s: %s is allowlisted: not sent to the edge", self._jail.name, self._name, cidr)
            return None
        return cidr

    def _flush_loop(self):
        wait = None  # None: until woken; else seconds until the next retry
        backoff = 1.0
        while True:
            self._wakeup.wait(wait)
            if self._settings.flushdelay and not self._stopping:
                time.sleep(self._settings.flushdelay)
            self._wakeup.clear()
            if self._reconcile_at is not None:
                delay = self._reconcile_at - time.monotonic()
                if delay > 0 and not self._stopping:
                    wait = delay
                    continue
                self._reconcile()
            try:
                self.sync()
            except wafv2.WafError as error:
                self.failures += 1
                if self._stopping:
                    return
                level = self._logSys.warning if error.retryable else self._logSys.error
                level("[%s] %s: edge not updated, retrying in %.0f s (local bans stand): %s",
                      self._jail.name, self._name, backoff, error.msg)
                wait = backoff
                backoff = min(self._settings.retrymax, backoff * 2)
                continue
            except Exception as error:  # pylint: disable=broad-exception-caught  # the thread must survive
                self.failures += 1
                self._logSys.error("[%s] %s: unexpected error writing to the edge: %s", self._jail.name, self._name, error)
                wait = backoff
                backoff = min(self._settings.retrymax, backoff * 2)
                continue
            backoff = 1.0
            wait = None
            if self._stopping:
                return

    def _reconcile(self):
        """After start: this host's old entries that fail2ban no longer bans leave the sets."""
        self._reconcile_at = None
        banned = set()
        for ip in self._jail.actions.banManager.getBanList():
            try:
                banned.add(wafv2.waf_cidr(str(ip)))
            except ValueError:
                continue
        with self._lock:
            for cidr in banned:
                self._pending.setdefault(cidr, True)
            stale = [cidr for cidr in self._previous - banned if cidr not in self._pending]
            for cidr in stale:
                self._pending[cidr] = False
        self._logSys.info("[%s] %s: reconciling the edge: %d bans, %d expired while stopped",
                          self._jail.name, self._name, len(banned), len(stale))

    def banned_here(self, cidrs, ipsets):
        """The CIDRs of cidrs that this jail has in, or wants in, any of ipsets."""
        if not set(ipsets) & set(self._settings.ipsets):
            return set()
        with self._lock:
            wanted = set(self._owned) | set(cidr for cidr, banned in self._pending.items() if banned)
            wanted -= set(cidr for cidr, banned in self._pending.items() if not banned)
        return wanted & set(cidrs)

    def _banned_by_other_jails(self, cidrs):
        """The CIDRs another jail of this process still bans in the same sets: they stay in them."""
        held = set()
        for action in list(self._shared.actions):
            if action is not self and cidrs:
                held |= action.banned_here(cidrs, self._settings.ipsets)
        return held

    def sync(self):
        """Write the pending changes (one read per set, one update per changed set)."""
        with self._shared.write_lock:
            self._sync()

    def _sync(self):
        with self._lock:
            pending = dict(self._pending)
        if not pending:
            return
        if self._ip_sets is None:
            self._ip_sets = wafv2.IPSets(self._client(), self._settings.scope, self._settings.ipsets,
                                         attempts=self._settings.attempts)
        add = [cidr for cidr, wanted in pending.items() if wanted]
        unbanned = [cidr for cidr, wanted in pending.items() if not wanted]
        kept = self._banned_by_other_jails(unbanned)
        remove = [cidr for cidr in unbanned if cidr not in kept]
        restore = self._ip_sets.lost
        if restore:
            # A set was gone (deleted and recreated): write back everything this host bans.
            add = sorted(set(add) | (self._owned - set(remove)))
        _sets, _before, _after, added, removed = self._ip_sets.apply(add, remove)
        if restore:
            self._ip_sets.lost = False
        with self._lock:
            for cidr, wanted in pending.items():
                if self._pending.get(cidr) == wanted:
                    del self._pending[cidr]
                if wanted:
                    self._owned.add(cidr)
                else:
                    self._owned.discard(cidr)
            owned = sorted(self._owned)
        self.syncs += 1
        self._save_state(owned)
        self._logSys.info("[%s] %s: edge updated, %d added, %d removed, %d kept for other jails (%s)",
                          self._jail.name, self._name, len(added), len(removed), len(kept), self.api_calls_text())

    def api_calls_text(self):
        """'API calls 5: get_ip_set 3, update_ip_set 2' since start (make bench reads it from the log)."""
        calls = self._ip_sets.calls if self._ip_sets is not None else {}
        return "API calls %d: %s" % (sum(calls.values()), ", ".join(
            "%s %d" % item for item in sorted(calls.items())) or "none")

    def _load_state(self):
        try:
            with open(self.state_file) as handle:
                return set(json.load(handle).get("owned", []))
        except (OSError, ValueError):
            return set()

    def _save_state(self, owned):
        temporary = self.state_file + ".tmp"
        try:
            with open(temporary, "w") as handle:
                json.dump({"ipsets": self._settings.ipsets, "owned": owned}, handle)
            os.replace(temporary, self.state_file)
        except OSError as error:
            self._logSys.warning("[%s] %s: cannot save %s: %s", self._jail.name, self._name, self.state_file, error)


Action = WafV2Action
