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
the boto3 chain (on EC2 the instance profile). Needs Debian's python3-boto3. Check the options with::

    python3 /etc/fail2ban/action.d/floodguard_wafv2.py ipsets=floodguard-v4 region=eu-west-1

How it works: ban() and unban() only record the wanted state of an address. A flusher thread writes
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
import ipaddress
import json
import os
import re
import sys
import threading
import time
import types
import weakref

from fail2ban.server.actions import ActionBase


def _load_wafv2():
    """The collection's plugins/module_utils/_wafv2.py, which the role installs next to this file."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_wafv2.py")
    spec = importlib.util.spec_from_file_location("floodguard_wafv2_lib", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


wafv2 = _load_wafv2()

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


class WafConfigError(ValueError):
    """An action option that cannot work; the message names the option and the fix."""


def _words(value):
    return [word for word in re.split(r"[\s,]+", str(value or "").strip()) if word]


class Settings:
    """The action options, checked."""

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
        try:
            self.allowlist = [ipaddress.ip_network(word, strict=False) for word in _words(allowlist)]
        except ValueError as error:
            raise WafConfigError("allowlist: %s (names are not resolved here)" % error) from None
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
        return cls(**dict((key, value) for key, value in options.items() if key in OPTIONS))


class WafV2Action(ActionBase):
    """fail2ban Python action: mirror bans into WAFv2 IP sets, written in coalesced batches."""

    supports_networks = True

    def __init__(self, jail, action_name, **options):
        super().__init__(jail, action_name)
        self._settings = self._read_settings(options)
        self._lock = threading.Lock()  # guards _pending and _owned
        # CIDR -> True (wanted in the sets) or False (wanted out); the latest call wins.
        self._pending = {}
        self._owned = set()  # what this host's jail has put into the sets
        self._wakeup = threading.Event()
        self._stopping = False
        self._flusher = None
        self._ip_sets = None
        self._reconcile_at = None
        self._previous = set()
        # The jails of this process (another fail2ban process, another host, has its own).
        self._shared = _process_shared()
        self.syncs = 0
        self.failures = 0

    def _read_settings(self, options):
        try:
            return Settings.from_options(options)
        except WafConfigError as error:
            self._logSys.error("[%s] action %s: %s", self._jail.name, self._name, error)
            raise

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
        self._stopping = False
        self._flusher = threading.Thread(target=self._flush_loop, name="f2b/%s.%s" % (self._jail.name, self._name))
        self._flusher.daemon = True
        self._shared.actions.add(self)
        self._flusher.start()
        self._wakeup.set()

    def stop(self):
        self._shared.actions.discard(self)
        self._stopping = True
        self._wakeup.set()
        if self._flusher is not None:
            self._flusher.join(timeout=self._settings.retrymax + 30)
            self._flusher = None
        with self._lock:
            left = len(self._pending)
        if left:
            self._logSys.warning("[%s] %s: %d edge changes not written yet; the next start reconciles them",
                                 self._jail.name, self._name, left)

    def ban(self, aInfo):  # pylint: disable=invalid-name  # fail2ban's name
        self._want(aInfo["ip"], True)

    def reban(self, aInfo):  # pylint: disable=invalid-name
        self._want(aInfo["ip"], True)

    def unban(self, aInfo):  # pylint: disable=invalid-name
        self._want(aInfo["ip"], False)

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

    def clearAllParams(self):  # pylint: disable=invalid-name
        # fail2ban keeps an action over `fail2ban-client reload` (and then calls reload()) only if it has
        # both this method and reload(); otherwise it flushes the action, which would empty the edge.
        return None

    def reload(self, **options):
        settings = self._read_settings(options)
        if vars(settings) != vars(self._settings):
            self._logSys.info("[%s] %s: applying changed options", self._jail.name, self._name)
            self._settings = settings
            self._ip_sets = None  # other sets, endpoint or region: a new client
            self._wakeup.set()

    # batching

    def _want(self, ip, banned):
        try:
            cidr = wafv2.waf_cidr(str(ip))
        except ValueError:
            self._logSys.error("[%s] %s: %r is not an IP address or network", self._jail.name, self._name, str(ip))
            return
        if banned and wafv2.allowlisted([cidr], self._settings.allowlist):
            self._logSys.warning("[%s] %s: %s is allowlisted: not sent to the edge", self._jail.name, self._name, cidr)
            return
        with self._lock:
            self._pending[cidr] = banned
        self._wakeup.set()

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


def main(argv):
    """Check action options: python3 floodguard_wafv2.py ipsets=a,b region=eu-west-1 [--connect]."""
    connect = "--connect" in argv
    options = {}
    for argument in argv:
        if argument == "--connect":
            continue
        key, separator, value = argument.partition("=")
        if not separator:
            sys.stderr.write("%r is not option=value\n" % argument)
            return 2
        options[key] = value
    try:
        settings = Settings.from_options(options)
        if connect:
            client = wafv2.make_client(region=settings.region, scope=settings.scope, endpoint_url=settings.endpoint,
                                       profile=settings.profile)
            sets = wafv2.IPSets(client, settings.scope, settings.ipsets).read()
            for ip_set in sets:
                sys.stdout.write("%s %s: %d addresses\n" % (ip_set.name, ip_set.version, len(ip_set.addresses)))
    except (WafConfigError, wafv2.WafError) as error:
        sys.stderr.write("floodguard_wafv2: %s\n" % getattr(error, "msg", error))
        return 1
    sys.stdout.write("OK: %s (%s)\n" % (" ".join(settings.ipsets), settings.scope))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
