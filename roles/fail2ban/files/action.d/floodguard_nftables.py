# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""fail2ban ban action that keeps a jail's bans in nftables sets, fast enough for floods.

Use it in a jail (the options are those of the stock nftables action)::

    action = floodguard_nftables.py[port="http,https", protocol=tcp, blocktype=drop]

Options: ``allowlist`` (addresses and networks never blocked, even if banned), ``port``
(names, numbers, low:high ranges; 0:65535 or all = every port), ``protocol``
(tcp, udp, ... or all), ``blocktype`` (drop, reject, reject with ...), ``name`` (names the sets;
default: the jail's name), ``chainpriority`` (default -10, before the filter chains) and
``flushdelay`` (default 0.05 s: how long a burst of bans gathers before it is written; a lone ban
goes after 5 ms), ``ticketwait`` (default 0.02 s, see below; 0 keeps fail2ban's own) and
``sleepinterval`` (default 0.02 s, see below; 0 keeps fail2ban's own 0.2 s).
Twice in one jail (say tcp and udp), each needs its own ``actname=`` and ``name=``. It uses
libnftables (Debian package python3-nftables) and falls back to one ``nft`` run per batch.
Port lists are parsed by floodguard_ports.py next to this file (the collection's
plugins/module_utils/_ports.py); the batching core is floodguard_batching.py. Check options before
starting fail2ban (``fail2ban-client -t`` does not load Python actions) with floodguard_check.py, also
next to this file::

    python3 /etc/fail2ban/action.d/floodguard_check.py --check-config   # every jail, as fail2ban reads them
    python3 /etc/fail2ban/action.d/floodguard_check.py floodguard_nftables.py port=http,https protocol=tcp

Why not the stock nftables action: it runs one ``nft`` process per ban and unban (its measured cost
is in the collection README, "Banning tens of thousands of addresses"), far too slow for 100,000
addresses. This action runs in the fail2ban server process: ban() and unban() only record the wanted state of an address, and a
flusher thread (floodguard_batching.py) writes everything recorded in the last few milliseconds to the
kernel in one nftables transaction (thousands of elements in about 10 ms). fail2ban keeps its own tickets,
database and ``status`` output; only the firewall side is replaced.

Reaction time: fail2ban's actions thread looks for the filter's new fail tickets in waits that grow
from 0.2 s to 0.8 s (Utils.wait_for, up to the thread's sleeptime of 2 s), so a ban started up to
0.8 s after the filter had found the offender. The action caps that thread's sleeptime at
``ticketwait`` when it starts, so the wait is one sleep step at most (a wait longer than a step sleeps
in growing steps: 20, 40, 60 ms ...); the loop it shortens only
checks a queue and the next unban time. Each of fail2ban's waits sleeps in steps of
Utils.DEFAULT_SLEEP_INTERVAL (0.2 s, for the whole process), its log filter's too (pyinotify: blind for a
step after each half-second look); the action sets that step to ``sleepinterval``. The cost is more
wake-ups of fail2ban's idle threads (README, "Reaction time").

Firewall layout, in the shared table ``inet floodguard`` (each jail owns its own names, so one
jail never touches another jail's bans):

* ``f2b-<name>-v4`` / ``f2b-<name>-v6``: hash sets of single addresses (constant cost per element).
* ``f2b-<name>-v4net`` / ``f2b-<name>-v6net``: interval sets for network (CIDR) bans. They are kept
  apart because every change to an interval set makes nft read the whole set first (about
  140 ms per change at 10,000 elements), which single addresses must not pay for.
* chain ``f2b-<name>``: a base chain on the input hook, before the usual filter chains, that
  applies ``blocktype`` to packets from those sets (on ``port``/``protocol`` only).
"""

import importlib.util
import ipaddress
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time

try:
    import nftables
except ImportError:  # the Debian package python3-nftables; without it the nft command is used
    nftables = None


if "floodguard_batching" not in sys.modules:  # fail2ban loads actions by path: the base is next to this file
    _SPEC = importlib.util.spec_from_file_location("floodguard_batching", os.path.join(os.path.dirname(os.path.abspath(__file__)), "floodguard_batching.py"))
    sys.modules["floodguard_batching"] = importlib.util.module_from_spec(_SPEC)
    _SPEC.loader.exec_module(sys.modules["floodguard_batching"])
batching = sys.modules["floodguard_batching"]
ports = batching.load_sibling("floodguard_ports.py", "floodguard_ports")
# The self-healing: a watch of nftables commits that repairs what another process removes.
watch = batching.load_sibling("floodguard_watch.py", "floodguard_watch")

TABLE = "inet floodguard"
PORT_PROTOCOLS = frozenset(("tcp", "udp", "sctp", "dccp", "udplite"))
# nft identifiers allow letters, digits, '_', '-', '.' and '/'; '/' is left out on purpose.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,200}$")
BLOCKTYPE_PATTERN = re.compile(r"^(drop|reject(?: with [a-z0-9 -]+)?)$")
# What a jail may set, as in action = floodguard_nftables.py[port="http,https", ...].
OPTIONS = ("name", "port", "protocol", "blocktype", "chainpriority", "flushdelay", "ticketwait", "sleepinterval",
           "allowlist")
# Elements per nft command: keeps each netlink transaction and its error message small.
CHUNK = 5000
MAX_ERRORS_LOGGED = batching.MAX_ERRORS_LOGGED
# After a restart start() loads the jail's bans from fail2ban's database into the sets at once, before
# fail2ban restores them ticket by ticket (seconds at 100,000). Those fail2ban did not restore are lifted
# once its restore is over: its ticket queue empty and no restored ban for PRELOAD_QUIET_S seconds, or
# PRELOAD_SETTLE_MAX_S seconds after the start.
PRELOAD_QUIET_S = 2.0
PRELOAD_SETTLE_MAX_S = 120.0
PRELOAD_POLL_S = 0.25


class NftablesConfigError(batching.ConfigError):
    """An action option that cannot work; the message names the option and the fix."""


def build_match(port, protocol):
    """Return the nft match for the jail's ports, e.g. 'meta l4proto { tcp } th dport { 80, 443 }'.

    fail2ban writes port ranges as 'low:high' (iptables style) and may use service names;
    both are turned into numbers here so that a typo fails when the jail starts, not at the
    first ban.
    """
    protocols = [word.lower() for word in ports.split_words(protocol)]
    if not protocols:
        raise NftablesConfigError("protocol: empty; use tcp, udp or all")
    if protocols == ["all"]:
        if not ports.means_all_ports(port):
            raise NftablesConfigError("protocol=all blocks every port: set port=all too, or name the protocol")
        return ""
    for name in protocols:
        if name not in PORT_PROTOCOLS:
            raise NftablesConfigError(
                "protocol: %r is not a protocol with ports (%s); use all to block everything" % (name, ", ".join(sorted(PORT_PROTOCOLS))))
    protocol_match = "meta l4proto { %s }" % ", ".join(protocols)
    if ports.means_all_ports(port):
        return protocol_match
    dports = []
    for word in ports.split_words(port):
        try:
            low, high = ports.port_range(word, protocols[0])
        except ports.PortError as error:
            raise NftablesConfigError("port: %s" % error) from None
        dports.append("%d-%d" % (low, high) if ":" in word else str(low))
    return "%s th dport { %s }" % (protocol_match, ", ".join(dports))


def allowlist_by_version(networks):
    """{IP version: [networks as strings]}, merged, since an nft set refuses overlapping intervals."""
    by_version = {}
    for network in networks:
        by_version.setdefault(network.version, []).append(network)
    return dict((version, [str(net) for net in ipaddress.collapse_addresses(nets)]) for version, nets in by_version.items())


class Settings(batching.ActionSettings):
    """The action options, checked; equal settings mean nothing to change on reload."""

    OPTIONS = OPTIONS

    def __init__(self, jail_name, name=None, port="0:65535", protocol="tcp", blocktype="drop",
                 chainpriority="-10", flushdelay="0.05", ticketwait="0.02", sleepinterval="0.02", allowlist=""):
        self.name = str(name or jail_name)
        self.allowlist = allowlist_by_version(batching.parse_allowlist(allowlist, NftablesConfigError))
        if not NAME_PATTERN.match(self.name):
            raise NftablesConfigError(
                "name: %r cannot be part of an nftables set name; use letters, digits, '_', '-' or '.'" % self.name)
        self.match = build_match(port, protocol)
        self.blocktype = " ".join(str(blocktype).split()).lower()
        if not BLOCKTYPE_PATTERN.match(self.blocktype):
            raise NftablesConfigError("blocktype: %r is not drop or reject [with ...]" % blocktype)
        try:
            self.priority = int(chainpriority)
            self.flushdelay = float(flushdelay)
            self.ticketwait = float(ticketwait)
            self.sleepinterval = float(sleepinterval)
        except ValueError:
            raise NftablesConfigError(
                "chainpriority must be an integer (e.g. -10), flushdelay, sleepinterval and ticketwait numbers of seconds "
                "(e.g. 0.05, 0.02, 0.2)") from None
        if not 0 <= self.flushdelay <= 1:
            raise NftablesConfigError("flushdelay: %r s; bans must reach the firewall fast, use 0 to 1" % flushdelay)
        if not 0 <= self.ticketwait <= 2:
            raise NftablesConfigError("ticketwait: %r s; use 0 (fail2ban's own waits) or up to 2" % ticketwait)
        if not (self.sleepinterval == 0 or 0.001 <= self.sleepinterval <= 0.2):
            raise NftablesConfigError("sleepinterval: %r s; use 0 (fail2ban's own 0.2 s) or 0.001 to 0.2" % sleepinterval)
        self.chain = "f2b-%s" % self.name
        # set name by (IP version, is a network)
        self.sets = {
            (4, False): "f2b-%s-v4" % self.name,
            (6, False): "f2b-%s-v6" % self.name,
            (4, True): "f2b-%s-v4net" % self.name,
            (6, True): "f2b-%s-v6net" % self.name,
        }

    @classmethod
    def from_options(cls, jail_name, options):
        # jail.conf's action_ also passes 'chain' (an iptables chain name), which has no use here.
        return cls(jail_name, **cls.known(options))

    def summary(self):
        """What the jail's rule does, e.g. 'meta l4proto { tcp } th dport { 80, 443 } drop'."""
        return " ".join(part for part in (self.match, self.blocktype) if part)

    def create_commands(self, flush_sets):
        """nft commands that create this jail's chain, sets and rules; safe to run again."""
        commands = ["add table %s" % TABLE]
        for (version, network), set_name in sorted(self.sets.items()):
            flags = " flags interval;" if network else ""
            commands.append("add set %s %s { type ipv%d_addr;%s }" % (TABLE, set_name, version, flags))
            if flush_sets:
                commands.append("flush set %s %s" % (TABLE, set_name))
        commands.append("add chain %s %s { type filter hook input priority %d; policy accept; }" % (TABLE, self.chain, self.priority))
        # Rewrite the rules every time so that a changed port or blocktype takes effect.
        commands.append("flush chain %s %s" % (TABLE, self.chain))
        for version, networks in sorted(self.allowlist.items()):
            # Allowed addresses leave this chain before any ban rule, whatever fail2ban was told.
            commands.append("add rule %s %s %s saddr { %s } return" % (TABLE, self.chain, "ip" if version == 4 else "ip6", ", ".join(networks)))
        for (version, _network), set_name in sorted(self.sets.items()):
            address = "ip" if version == 4 else "ip6"
            rule = " ".join(part for part in (self.match, "%s saddr @%s" % (address, set_name), self.blocktype) if part)
            commands.append("add rule %s %s %s" % (TABLE, self.chain, rule))
        return commands

    def remove_commands(self):
        # The chain goes first: its rules reference the sets. The shared table stays, since
        # another jail may be creating its chain in it at this moment.
        return ["delete chain %s %s" % (TABLE, self.chain)] + [
            "delete set %s %s" % (TABLE, set_name) for set_name in sorted(self.sets.values())]


class Nft:
    """Runs nft command text: in-process with libnftables, else through the nft program."""

    def __init__(self):
        self.library = nftables.Nftables() if nftables is not None else None
        self.program = shutil.which("nft") or "/usr/sbin/nft"
        self._lock = threading.Lock()  # one libnftables context must not run two commands at once

    def run(self, text):
        """Run one transaction; return the error text, or '' when it succeeded."""
        with self._lock:
            if self.library is not None:
                rc, _output, error = self.library.cmd(text)
                return (error or "nft failed with status %d" % rc).strip() if rc else ""
            try:
                result = subprocess.run([self.program, "-f", "-"], input=text, capture_output=True, text=True, check=False,
                                        env=dict(os.environ, LC_ALL="C"))
            except OSError as error:
                return "cannot run %s: %s (install nftables)" % (self.program, error)
            return (result.stderr or "nft failed with status %d" % result.returncode).strip() if result.returncode else ""


def element_commands(set_name, elements, banned):
    """nft text that bans (adds) or unbans (deletes) elements of one of the jail's sets."""
    add = "add element %s %s { %s }" % (TABLE, set_name, ", ".join(elements))
    # Adding first makes the delete succeed whether or not the element is there
    # (nft 'destroy' needs nft 1.0.8 and Linux 6.3, newer than Debian 12).
    return add if banned else "%s\ndelete element %s %s { %s }" % (add, TABLE, set_name, ", ".join(elements))


def element_of(ip):
    """Return (set key, element text) for a ticket's address, or None if it is not an address."""
    # Hot path: fail2ban's IPAddr already knows family and prefix (and maps ::ffff:a.b.c.d to
    # IPv4); parsing it again would cost more than the rest of ban().
    if getattr(ip, "isSingle", False) and getattr(ip, "isValid", False):
        return (4 if ip.isIPv4 else 6, False), str(ip)
    try:
        network = ipaddress.ip_network(str(ip), strict=False)
    except ValueError:
        return None
    single = network.num_addresses == 1
    if network.version == 6 and single and network.network_address.ipv4_mapped:
        return (4, False), str(network.network_address.ipv4_mapped)
    return (network.version, not single), str(network.network_address) if single else str(network)


def element_of_text(text):
    """element_of() for an address as fail2ban writes it to its database; plain IPv4 without ipaddress."""
    try:
        if socket.inet_ntop(socket.AF_INET, socket.inet_pton(socket.AF_INET, text)) == text:
            return (4, False), text
    except (OSError, ValueError):
        pass
    return element_of(text)


def coverage_test(networks):
    """A test (key, element) -> True when one of networks covers the element; cheap for single IPv4."""
    ranges = [(network.version, int(network.network_address), int(network.broadcast_address)) for network in networks]

    def covered(key, element):
        version, is_network = key
        if version == 4 and not is_network:
            first = last = struct.unpack("!I", socket.inet_aton(element))[0]
        else:
            network = ipaddress.ip_network(element, strict=False)
            first, last = int(network.network_address), int(network.broadcast_address)
        return any(kind == version and low <= first and last <= high for kind, low, high in ranges)

    return covered


def restore_selection(jail):
    """(database file, forbantime, max_bantime, covered) with which fail2ban restores the jail's bans
    (Jail.restoreCurrentBans; covered: its ignoreip and ignoreself); None when this fail2ban does not tell
    them all, or an ignorecommand decides (then fail2ban's own restore is the only one)."""
    try:
        database = getattr(jail, "database", None)
        if database is None or jail.filter.ignoreCommand:
            return None
        forbantime = None if jail.getBanTimeExtra("increment") else jail.actions.getBanTime()
        max_bantime = jail.getMaxBanTime()
        entries = [str(entry) for entry in jail.filter.getIgnoreIP()]
        if jail.filter.ignoreSelf:
            from fail2ban.server.ipdns import DNSUtils  # pylint: disable=import-outside-toplevel  # inside fail2ban only
            entries.extend(str(address) for address in DNSUtils.getSelfIPs())
        networks = [ipaddress.ip_network(entry, strict=False) for entry in entries]
        return database.filename, forbantime, None if max_bantime == -1 else max_bantime, coverage_test(networks)
    except Exception:  # pylint: disable=broad-exception-caught  # any doubt: fail2ban's own restore only
        return None


def fail_tickets_waiting(jail):
    """True while fail2ban's queue of tickets to ban (the restore's too) is not empty."""
    waiting = getattr(jail, "hasFailTickets", False)
    return bool(waiting() if callable(waiting) else waiting)


class NftablesAction(batching.BatchingAction):
    """fail2ban Python action: ban in nftables sets, written in batches by a flusher thread.

    Life cycle: start() ensures the table (_ensure_table), loads the bans fail2ban is about to restore
    (_preload_restorable) and starts the flusher; stop() stops it, writes what is left and removes the
    jail's chain and sets.
    """

    # supports_networks (BatchingAction): CIDR bans go to the interval sets.
    backend = "nftables"
    element_of = staticmethod(element_of)

    @property
    def chain(self):
        """The jail's chain (fail2ban-client get JAIL action NAME chain), read by the drift report."""
        return self._settings.chain

    @property
    def enforced(self):
        """True when the kernel holds every ban of the jail (fail2ban-client get JAIL action NAME enforced)."""
        return not (self._heal or watch.NftablesHeal(self, nftables)).drift()[0]

    def __init__(self, jail, action_name, **options):
        super().__init__(jail, action_name, **options)
        self._nft = Nft()
        self._heal = None
        self._repair_error = ""
        # Elements start() loaded from fail2ban's database that no restored ban has claimed yet (under _lock).
        self._preloaded = set()
        self._last_claim = None

    @classmethod
    def settings_from(cls, jail_name, options):
        return Settings.from_options(jail_name, options)

    def _read_settings(self, options):
        ignored = sorted(set(options) - set(OPTIONS))
        if ignored:
            self._logSys.debug("[%s] %s: options not used by this action: %s", self._jail.name, self._name, ", ".join(ignored))
        return super()._read_settings(options)

    def _ensure_table(self, flush_sets):
        """Create (or re-create) the jail's chain and sets in the table; return nft's error text or ''."""
        return self._nft.run("\n".join(self._settings.create_commands(flush_sets=flush_sets)))

    # fail2ban life cycle

    def start(self):
        if nftables is None:
            self._logSys.warning("[%s] python3-nftables is not installed: %s runs the nft program once per batch instead",
                                 self._jail.name, self._name)
        self._shorten_ticket_wait()
        with self._apply_lock:
            # A crash may have left elements behind; fail2ban restores the bans it still holds right
            # after start(). Under the lock, so that no ban recorded meanwhile is written before the flush.
            error = self._ensure_table(flush_sets=True)
            preloaded = 0 if error else self._preload_restorable()
        # Started even after an error: then each batch tries to create the chain again and logs why.
        self._start_flusher()
        if preloaded:
            threading.Thread(target=self._settle_preloaded, name="f2b/%s.%s.restore" % (self._jail.name, self._name),
                             daemon=True).start()
        # Heals the jail when another process removes or empties its table, chain or sets.
        self._heal = watch.NftablesHeal(self, nftables)
        self._heal.start()
        if error:
            raise RuntimeError("cannot create nftables chain %s and its sets: %s" % (self._settings.chain, error))

    def stop(self):
        self._forget_preloaded()
        self._bulk_log.stopping = False
        self._log_bulk_bans(kinds=("ban", "restore", "unban"))
        if self._heal is not None:
            self._heal.stop()
            self._heal = None
        self._stop_flusher()
        with self._apply_lock:
            self._flush_pending()
        error = self._nft.run("\n".join(self._settings.remove_commands()))
        if error:
            self._logSys.error("[%s] cannot remove nftables chain %s and its sets: %s", self._jail.name, self._settings.chain, error)

    def flush(self):
        """Unban everything of this jail at once (fail2ban-client unban --all, jail stop)."""
        # At a stop fail2ban logs "Unban" for every ticket next: BulkBanLog sums them up until stop().
        self._bulk_log.stopping = self._jail_stopping()
        self._forget_preloaded()
        with self._apply_lock:
            self._take_pending()
            if self._bulk_log.stopping:
                # stop() removes the sets once fail2ban has gone through every ticket (seconds at 100,000):
                # until then they keep dropping, so that a restart leaves no gap but the new start's.
                return True
            error = self._nft.run("\n".join("flush set %s %s" % (TABLE, name) for name in sorted(self._settings.sets.values())))
        if error:
            self._logSys.error("[%s] cannot flush nftables sets: %s", self._jail.name, error)
            return False
        return True

    def consistencyCheck(self, beforeRepair=None):  # pylint: disable=invalid-name
        """Called by fail2ban when a banned address keeps failing: is our chain still there?

        A firewall reload (nft flush ruleset) drops the table; then rebuild it with every ban
        fail2ban holds, instead of leaving the jail banning into nothing.
        """
        if not self._nft.run("list chain %s %s" % (TABLE, self._settings.chain)):
            return True
        if beforeRepair is not None and not beforeRepair():
            return False
        return self._repair()

    def reload(self, **options):
        settings = self._read_settings(options)
        if settings == self._settings:
            return
        old = self._settings
        self._logSys.info("[%s] %s: applying changed options", self._jail.name, self._name)
        with self._apply_lock:
            self._flush_pending()
            # A base chain's priority cannot change in place: replace the chain, keep the sets.
            self._nft.run("delete chain %s %s" % (TABLE, old.chain))
            self._settings = settings
            error = self._ensure_table(flush_sets=False)
        self._shorten_ticket_wait()
        if error:
            self._logSys.error("[%s] cannot apply changed options to nftables: %s", self._jail.name, error)
        if settings.sets != old.sets:
            self._repair()
            self._nft.run("\n".join(old.remove_commands()[1:]))

    # batching

    def _target(self, ip, banned):
        target = element_of(ip)
        if target is None:
            self._log_not_an_address(ip, banned)
            return None
        if self._preloaded:
            # The preloaded keys come from the database's text: compare in that one form.
            key = element_of_text(str(ip))
            with self._lock:
                if key in self._preloaded:
                    self._preloaded.discard(key)
                    self._last_claim = time.monotonic()
                    if banned:
                        return None  # fail2ban restores a ban that start() put in the set already
        return target

    # the restore after a restart

    def _preload_restorable(self):
        """Put the bans fail2ban is about to restore into the sets in one go; how many. Caller holds _apply_lock.

        fail2ban restores a ban as it makes one, ticket by ticket, which takes seconds for 100,000; the
        firewall holds them all right after start() instead. _settle_preloaded() lifts those it did not restore.
        """
        selection = restore_selection(self._jail)
        if selection is None:
            return 0
        database, forbantime, max_bantime, covered = selection
        started = time.monotonic()
        try:
            addresses = watch.restorable_bans(database, self._jail.name, time.time(), forbantime, max_bantime)
        except watch.sqlite3.Error as error:
            self._logSys.info("[%s] %s: cannot read %s (%s); fail2ban restores the bans itself", self._jail.name,
                              self._name, database, error)
            return 0
        targets = set()
        for text in addresses:
            target = element_of_text(text)
            if target is not None and not covered(*target):
                targets.add(target)
        if not targets:
            return 0
        with self._lock:
            for target in targets:
                self._pending.setdefault(target, True)
            self._preloaded = targets
            self._last_claim = None
        self._flush_pending()
        self._logSys.info("[%s] %s: %d bans from fail2ban's database in nftables in %.2f s, before fail2ban restores them",
                          self._jail.name, self._name, len(targets), time.monotonic() - started)
        return len(targets)

    def _settle_preloaded(self, clock=time.monotonic, pause=time.sleep):
        """Once fail2ban's restore is over, lift the preloaded bans it did not restore."""
        started = clock()
        while not self._stopping:
            pause(PRELOAD_POLL_S)
            with self._lock:
                left, last = len(self._preloaded), self._last_claim
            now = clock()
            if not left or now - started >= PRELOAD_SETTLE_MAX_S or (
                    last is not None and now - last >= PRELOAD_QUIET_S and not fail_tickets_waiting(self._jail)):
                break
        if not self._stopping:
            self._lift_unrestored()

    def _lift_unrestored(self):
        with self._apply_lock:
            with self._lock:
                leftover, self._preloaded = self._preloaded, set()
            listed = set(element_of_text(str(ip)) for ip in self._jail.actions.banManager.getBanList())
            unrestored = leftover - listed
            with self._lock:
                for target in unrestored:
                    self._pending.setdefault(target, False)
            self._flush_pending()
        lifted = sorted(element for _key, element in unrestored)
        if lifted:
            self._logSys.warning("[%s] %s: lifted %d bans loaded from fail2ban's database at start that fail2ban did not "
                                 "restore (e.g. %s)", self._jail.name, self._name, len(lifted), ", ".join(lifted[:5]))
        else:
            self._logSys.info("[%s] %s: fail2ban's restore is over; it restored every ban loaded at start",
                              self._jail.name, self._name)

    def _forget_preloaded(self):
        """Preloaded elements count as not written: after a flush or repair, a restored ban writes its own."""
        with self._lock:
            self._preloaded = set()

    def _flush_pending(self):
        """Write the pending bans and unbans; caller holds _apply_lock."""
        pending = self._take_pending()
        if not pending:
            return
        by_set = {}
        for (key, element), banned in pending.items():
            by_set.setdefault(key, ([], []))[0 if banned else 1].append(element)
        failed = []
        for key, lists in sorted(by_set.items()):
            set_name = self._settings.sets[key]
            for banned, elements in zip((True, False), lists):
                for start in range(0, len(elements), CHUNK):
                    chunk = elements[start:start + CHUNK]
                    if self._nft.run(element_commands(set_name, chunk, banned)):
                        failed.extend((key, element, banned) for element in chunk)
        if failed:
            self._retry_one_by_one(failed)

    def _retry_one_by_one(self, failed):
        # A transaction is all or nothing: find the elements that fail on their own.
        if self._nft.run("list chain %s %s" % (TABLE, self._settings.chain)):
            self._logSys.error("[%s] nftables chain %s is gone (firewall reloaded?): rebuilding it with all current bans",
                               self._jail.name, self._settings.chain)
            self._repair(locked=True)
            return
        errors = 0
        for key, element, banned in failed:
            set_name = self._settings.sets[key]
            error = self._nft.run(element_commands(set_name, [element], banned))
            if error:
                errors += 1
                if errors <= MAX_ERRORS_LOGGED:
                    # e.g. a network that overlaps one already banned ("interval overlaps with an existing one")
                    self._logSys.error("[%s] cannot %s %s in nftables set %s: %s",
                                       self._jail.name, "ban" if banned else "unban", element, set_name, error)
        if errors > MAX_ERRORS_LOGGED:
            self._logSys.error("[%s] %d more addresses could not be changed in nftables (errors as above)",
                               self._jail.name, errors - MAX_ERRORS_LOGGED)

    def _repair(self, locked=False, flush_sets=True, log=True):
        """Recreate chain and sets and load every address fail2ban holds as banned for this jail.

        log=False: the watch (floodguard_watch.NftablesHeal) logs the heal once, with its cause.
        """
        if not locked:
            with self._apply_lock:
                return self._repair(locked=True, flush_sets=flush_sets, log=log)
        self._forget_preloaded()
        error = self._repair_error = self._ensure_table(flush_sets=flush_sets)
        if error:
            if log:
                self._logSys.error("[%s] cannot recreate nftables chain %s: %s", self._jail.name, self._settings.chain, error)
            return False
        banned = self._jail.actions.banManager.getBanList()
        with self._lock:
            for ip in banned:
                target = element_of(ip)
                if target is not None and target not in self._pending:
                    self._pending[target] = True
        self._flush_pending()
        if log:
            self._logSys.warning("[%s] nftables chain %s rebuilt with %d bans", self._jail.name, self._settings.chain, len(banned))
        return True


Action = NftablesAction
