# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The batching core of the floodguard fail2ban actions (floodguard_nftables.py, _nginx.py, _wafv2.py).

fail2ban calls ban() and unban() once per address, in its actions thread. Writing each one at once
costs a firewall transaction, an HTTP request or an AWS call per address, far too slow in a flood. The
actions built on BatchingAction only record the wanted state of an address (the latest call wins, which
settles an unban that arrives while its ban is still waiting); a flusher thread writes what gathered in
the last ``flushdelay`` seconds in one batch. fail2ban keeps its own tickets, database and ``status``.

An action subclass gives: ``settings_from(jail_name, options)`` (its checked options; raises ConfigError),
``_target(ip, banned)`` (the key of an address in its pending changes, or None to skip it) and
``_flush_pending()`` (write the pending changes; the caller holds ``_apply_lock``). Optionally
``_idle_timeout()`` and ``_idle()``: a periodic check while nothing is pending.

fail2ban loads actions by path, not from sys.path: the actions load this file, and the files they
share, from their own directory with load_sibling().
"""

import importlib.util
import ipaddress
import logging
import os
import socket
import stat
import sys
import threading
import time

from fail2ban.server.actions import ActionBase
from fail2ban.server.utils import Utils

# A systematic failure must not write thousands of identical lines into the fail2ban log.
MAX_ERRORS_LOGGED = 10
# A lone change (one attacker's ban) is written this long after it arrived; only a burst (more changes
# arriving meanwhile) waits the whole flushdelay, so that it still goes out as one batch.
LONE_CHANGE_WAIT_S = 0.005
# fail2ban's logger of its actions thread (fail2ban/server/actions.py, getLogger(__name__)) and the line it
# writes for every ban (fail2ban 1.0 and 1.1 alike): "[jail] Ban 203.0.113.7".
ACTIONS_LOGGER = "fail2ban.actions"
BAN_LINE = "[%s] %sBan %s"
UNBAN_LINE = "[%s] Unban %s"
# The longest bulk window fail2ban_ban may open; it closes by itself, so a module killed midway leaves
# the per-address lines off for at most this long.
BULK_WINDOW_MAX_S = 600.0
# Addresses the summary line of a bulk ban names.
BULK_SAMPLE = 5
# The largest address file bulkban() reads: 64 MiB holds millions of addresses.
BULK_FILE_MAX_BYTES = 64 << 20


class BulkBanLog(logging.Filter):
    """Replaces fail2ban's per-address lines of one jail by summary lines where they come by the thousand.

    Writing that line is most of fail2ban's cost per ban (measured: 100,000 bans through fail2ban-client
    took 7.6 s of the server's CPU with it, 1.9 s without). Left out, counted and summarised (take()):
    "ban": new bans while the bulk window is open (fail2ban_ban opens it around its banip calls);
    "restore": "Restore Ban" lines (every ban again at each start; the ban's own line is older);
    "unban": "Unban" lines while the jail stops (every ban again; the bans stay in the database).
    Other jails and every other line are logged as before; fail2ban's tickets, database and status
    are untouched.
    """

    KINDS = ("ban", "restore", "unban")

    def __init__(self, jail_name, clock=time.time):
        super().__init__()
        self.jail_name = jail_name
        self.until = 0.0
        self.stopping = False
        self._clock = clock
        self._lock = threading.Lock()
        self._left_out = dict((kind, (0, [])) for kind in self.KINDS)

    def open(self, seconds):
        self.until = self._clock() + seconds

    def close(self):
        self.until = 0.0

    def remaining(self):
        return max(0.0, self.until - self._clock())

    def _kind(self, record):
        args = record.args
        if record.msg == BAN_LINE and isinstance(args, tuple) and len(args) == 3 and args[0] == self.jail_name:
            if args[1]:
                return "restore"
            if self.until and self._clock() < self.until:
                return "ban"
        elif record.msg == UNBAN_LINE and self.stopping and isinstance(args, tuple) and len(args) == 2 \
                and args[0] == self.jail_name:
            return "unban"
        return None

    def filter(self, record):
        kind = self._kind(record)
        if kind is None:
            return True
        with self._lock:
            count, sample = self._left_out[kind]
            if len(sample) < BULK_SAMPLE:
                sample.append(str(record.args[-1]))
            self._left_out[kind] = (count + 1, sample)
        return False

    def take(self, kind="ban"):
        """(lines of this kind left out since the last call, some of their addresses)."""
        with self._lock:
            taken = self._left_out[kind]
            self._left_out[kind] = (0, [])
        return taken


# One filter per jail, shared by the jail's actions (several may be BatchingActions).
_BULK_LOGS = {}
_BULK_LOGS_LOCK = threading.Lock()


def bulk_ban_log(jail_name):
    """The jail's BulkBanLog, installed on fail2ban's actions logger the first time."""
    with _BULK_LOGS_LOCK:
        if jail_name not in _BULK_LOGS:
            _BULK_LOGS[jail_name] = BulkBanLog(jail_name)
            logging.getLogger(ACTIONS_LOGGER).addFilter(_BULK_LOGS[jail_name])
        return _BULK_LOGS[jail_name]


def load_sibling(file_name, module_name):
    """Load a module deployed next to this file, once per process."""
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, os.path.join(os.path.dirname(os.path.abspath(__file__)), file_name))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[module_name] = module
    return module


class BulkBanRefused(ValueError):
    """bulkban() cannot serve this call; it changed nothing. The message names the reason and the fix."""


def read_bulk_file(path):
    """The addresses of fail2ban_ban's bulk file (whitespace-separated), checked to be its own.

    Only fail2ban's own user may have written it: a regular file it owns, that nobody else may write,
    opened without following a symlink. fail2ban's socket is root's alone, so this only keeps a file
    that another user could change from becoming bans.
    """
    try:
        handle = os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK), "rb")
    except (OSError, TypeError) as error:
        raise BulkBanRefused("cannot open the address file %r: %s" % (path, getattr(error, "strerror", error))) from None
    with handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise BulkBanRefused("the address file %r is not a regular file" % path)
        if info.st_uid != os.geteuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise BulkBanRefused("the address file %r must belong to fail2ban's user (uid %d) and be writable by it "
                                 "alone (it is uid %d, mode %o)" % (path, os.geteuid(), info.st_uid, info.st_mode & 0o7777))
        if info.st_size > BULK_FILE_MAX_BYTES:
            raise BulkBanRefused("the address file %r holds %d bytes, more than %d: ban in several calls"
                                 % (path, info.st_size, BULK_FILE_MAX_BYTES))
        data = handle.read(BULK_FILE_MAX_BYTES + 1)
    try:
        return data.decode("ascii").split()
    except UnicodeDecodeError:
        raise BulkBanRefused("the address file %r holds text that is not ASCII: addresses only" % path) from None


def is_address(text):
    """True for an IPv4 or IPv6 address, or a network without host bits (the forms fail2ban_ban sends)."""
    try:
        socket.inet_pton(socket.AF_INET, text)
        return True
    except OSError:
        pass
    try:
        ipaddress.ip_network(text, strict=True)
    except ValueError:
        return False
    return True


def increments_ban_time(jail):
    """True when the jail's bantime.increment is on: fail2ban then sets each ban's time as it bans it."""
    value = jail.getBanTimeExtra("increment") if hasattr(jail, "getBanTimeExtra") else None
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def write_bans(database, jail, tickets):
    """fail2ban's own addBan for every ticket, in one database transaction instead of one per ban.

    addBan is wrapped by fail2ban's commitandrollback (its lock, then a transaction); its inner function
    runs here with one cursor under that same lock. Without it (another fail2ban), one addBan per ticket.
    """
    inner = getattr(type(database).addBan, "__wrapped__", None)
    lock, connection = getattr(database, "_lock", None), getattr(database, "_db", None)
    if inner is None or lock is None or connection is None:
        for ticket in tickets:
            database.addBan(jail, ticket)
        return
    with lock:
        with connection:
            cursor = connection.cursor()
            try:
                for ticket in tickets:
                    inner(database, cursor, jail, ticket)
            finally:
                cursor.close()


class ConfigError(ValueError):
    """An action option that cannot work; the message names the option and the fix."""


def parse_allowlist(value, error_class):
    """The networks (ipaddress) of an action's ``allowlist`` option: what no ban of it may ever block.

    `fail2ban-client set <jail> banip` does not consult the jail's ignoreip, so every ban back end keeps
    the operators' own addresses out itself. Names are not resolved: a ban must never wait on DNS.
    """
    networks = []
    for word in load_sibling("floodguard_ports.py", "floodguard_ports").split_words(value or ""):
        try:
            networks.append(ipaddress.ip_network(word, strict=False))
        except ValueError:
            raise error_class("allowlist: %r is not an IP address or network (names are not resolved here)" % word) from None
    return networks


class ActionSettings:
    """An action's options, checked (by the subclass's constructor); equal settings mean nothing to change on reload."""

    # The options a jail may set; fail2ban passes others too (jail.conf's action_ passes 'chain').
    OPTIONS = ()

    @classmethod
    def known(cls, options):
        """The options of this action among those fail2ban passes."""
        return dict((key, value) for key, value in options.items() if key in cls.OPTIONS)

    def __eq__(self, other):
        return type(other) is type(self) and vars(self) == vars(other)

    def __ne__(self, other):
        return not self == other

    __hash__ = None


class BatchingAction(ActionBase):
    """A fail2ban Python action whose bans and unbans are written in batches by a flusher thread."""

    # Read by floodguard.shield.fail2ban_ban (fail2ban-client get JAIL action NAME supports_networks).
    supports_networks = True
    # Where the bans go, for log messages.
    backend = "the ban back end"
    # bulkban() has the back end write in fail2ban's calling thread (_flush_pending); False: its own flusher
    # writes (an action whose writes retry with backoff, which a fail2ban command must not wait for).
    WRITES_IN_CALLER = True

    @property
    def bulk_window(self):
        """Seconds left of the bulk-ban window (fail2ban-client get JAIL action NAME bulk_window)."""
        return round(self._bulk_log.remaining(), 3)

    @bulk_window.setter
    def bulk_window(self, seconds):
        """fail2ban_ban opens the window (set JAIL action NAME bulk_window 60) and closes it (... 0)."""
        try:
            seconds = float(seconds)
        except (TypeError, ValueError):
            raise ValueError("bulk_window: %r is not a number of seconds" % (seconds,)) from None
        if seconds > 0:
            self._bulk_log.open(min(seconds, BULK_WINDOW_MAX_S))
        else:
            self._bulk_log.close()
            self._log_bulk_bans()

    def __init__(self, jail, action_name, **options):
        # The second argument must not be called 'name': 'name' is an option of the actions, and
        # fail2ban passes the action name positionally and the options as keywords.
        super().__init__(jail, action_name)
        self._settings = self._read_settings(options)
        self._lock = threading.Lock()  # guards _pending
        # key -> True to be banned, False to be unbanned; the latest call wins.
        self._pending = {}
        self._wakeup = threading.Event()
        self._stopping = False
        self._flusher = None
        self._apply_lock = threading.Lock()  # one writer at a time: the flusher, flush(), stop(), reload()
        self._bulk_log = bulk_ban_log(self._jail.name)

    # what an action gives

    @classmethod
    def settings_from(cls, jail_name, options):
        """The action's options, checked; raises ConfigError naming the option and the fix."""
        raise NotImplementedError

    def _target(self, ip, banned):
        """The key of ip in _pending, or None when it is not to be written (logged by the action)."""
        raise NotImplementedError

    def _flush_pending(self):
        """Write the pending bans and unbans; the caller holds _apply_lock."""
        raise NotImplementedError

    def _idle_timeout(self):
        """Seconds between calls of _idle() while nothing is pending; None: no periodic check."""
        return None

    def _idle(self):
        """The periodic check (see _idle_timeout)."""

    # fail2ban's calls

    def ban(self, aInfo):  # pylint: disable=invalid-name  # fail2ban's name
        self._want(aInfo["ip"], True)

    def reban(self, aInfo):  # pylint: disable=invalid-name
        self._want(aInfo["ip"], True)

    def unban(self, aInfo):  # pylint: disable=invalid-name
        self._want(aInfo["ip"], False)

    def clearAllParams(self):  # pylint: disable=invalid-name
        # fail2ban keeps an action over `fail2ban-client reload` (and then calls reload()) only if
        # it has both this method and reload(); otherwise it unbans everything with the action and
        # removes it from the jail.
        return None

    def bulkban(self, path):
        """fail2ban_ban's bulk path: bans every address of the file at `path` in this action's jail at once.

        Called as `fail2ban-client set JAIL action NAME bulkban '{"path": FILE}'`. It does what fail2ban's
        banip does for each address (a ticket in the jail's ban list, the ban in every action of the jail, a
        row in fail2ban's database), with one summary line in the log and one database transaction instead
        of a line and a transaction per ban; `get JAIL banned`, a restart's restore and the unban at the end
        of the ban time treat these bans as any other. Returns how many addresses were newly banned.
        Refused with a ValueError (nothing changed) where the jail's bans must go one by one, or the file
        is not fit: fail2ban sends the error to fail2ban-client pickled, so its class must be one that
        fail2ban-client knows.
        """
        try:
            return self._bulk_ban(path)
        except BulkBanRefused as refusal:
            raise ValueError("bulkban refused: %s" % refusal) from None

    def _bulk_ban(self, path):
        members = self._bulk_members()
        addresses = read_bulk_file(path)
        bad = [address for address in addresses if not is_address(address)]
        if bad:
            raise BulkBanRefused("%d entr%s of %r %s not an IP address or network (e.g. %s): nothing was banned"
                                 % (len(bad), "y" if len(bad) == 1 else "ies", path, "is" if len(bad) == 1 else "are",
                                    ", ".join(bad[:BULK_SAMPLE])))
        # fail2ban's own classes, imported here: the refusals above need none of them.
        from fail2ban.server.ipdns import IPAddr  # pylint: disable=import-outside-toplevel
        from fail2ban.server.mytime import MyTime  # pylint: disable=import-outside-toplevel
        from fail2ban.server.ticket import BanTicket  # pylint: disable=import-outside-toplevel

        ips = [IPAddr(address) for address in addresses]
        # The back ends first, written in this thread before any ticket exists: fail2ban never lists one of
        # these bans that the firewall (or NGINX) does not enforce yet; the edge (WAF) follows from its own
        # flusher, as for any ban. An address already banned is written again, which changes nothing.
        for action in members:
            action._write_all(ips)  # pylint: disable=protected-access  # the same class
        actions = self._jail.actions
        now = MyTime.time()
        tickets = []
        for ip in ips:
            ticket = BanTicket(ip, now)
            if actions.banManager.addBanTicket(ticket):
                ticket.banned = True
                if actions.banEpoch:
                    ticket.banEpoch = actions.banEpoch
                tickets.append(ticket)
        # Last, as fail2ban's own ban does (its observer writes the database after the actions); the call
        # returns once the bans are in the database, so a restart right after it restores them.
        if self._jail.database is not None and tickets:
            write_bans(self._jail.database, self._jail, tickets)
        self._log_summary("ban", len(tickets), [str(ticket.getID()) for ticket in tickets[:BULK_SAMPLE]])
        return len(tickets)

    def _bulk_members(self):
        """The jail's actions, when bulkban() may ban for all of them; raises BulkBanRefused otherwise."""
        if increments_ban_time(self._jail):
            raise BulkBanRefused("jail %s has bantime.increment on, so fail2ban sets each ban's time as it bans it: "
                                 "ban with 'fail2ban-client set %s banip'" % (self._jail.name, self._jail.name))
        actions = self._jail.actions
        others = [name for name in actions if not isinstance(actions[name], BatchingAction)]
        if others:
            raise BulkBanRefused("jail %s has actions that take bans one by one (%s): ban with 'fail2ban-client set %s "
                                 "banip'" % (self._jail.name, ", ".join(others), self._jail.name))
        return [actions[name] for name in actions]

    # the batching core

    def _read_settings(self, options):
        try:
            return self.settings_from(self._jail.name, options)
        except ConfigError as error:
            self._logSys.error("[%s] action %s: %s", self._jail.name, self._name, error)
            raise

    def _log_not_an_address(self, ip, banned):
        self._logSys.error("[%s] %s: %r is not an IP address or network, so %s cannot %s it",
                           self._jail.name, self._name, str(ip), self.backend, "ban" if banned else "unban")

    def _want(self, ip, banned):
        target = self._target(ip, banned)
        if target is None:
            return
        with self._lock:
            self._pending[target] = banned
        self._wakeup.set()

    def _write_all(self, ips):
        """Ban many addresses now, in the caller's thread: what the flusher would write, without its wait.
        An action that writes only in its own flusher (WRITES_IN_CALLER False) gets them as pending changes."""
        targets = [target for target in (self._target(ip, True) for ip in ips) if target is not None]
        with self._lock:
            for target in targets:
                self._pending[target] = True
        if not self.WRITES_IN_CALLER:
            self._wakeup.set()
            return
        try:
            with self._apply_lock:
                self._flush_pending()
        except Exception as error:  # pylint: disable=broad-exception-caught  # as the flusher: fail2ban still lists them
            self._log_unexpected(error)

    def _take_pending(self):
        """The pending changes, which the caller now writes; _pending starts empty again."""
        with self._lock:
            pending, self._pending = self._pending, {}
        return pending

    def _shorten_ticket_wait(self):
        """Cap the sleeptime of fail2ban's actions thread at the ``ticketwait`` option, and fail2ban's
        sleep step (Utils.DEFAULT_SLEEP_INTERVAL) at the ``sleepinterval`` option.

        That thread looks for the filter's new fail tickets in waits that grow from 0.2 s to 0.8 s
        (Utils.wait_for, up to its sleeptime of 2 s); the loop it shortens only checks a queue and
        the next unban time. Each sleep of Utils.wait_for is a multiple of the sleep step (0.2 s), so
        even a capped wait is one 0.2 s step: the step sets the reaction time. The step is fail2ban's
        own for the whole process (its filters' waits too): the smallest of the actions' wins.
        """
        actions = getattr(self._jail, "actions", None)
        current = getattr(actions, "sleeptime", None)
        ticketwait = self._settings.ticketwait
        if ticketwait and isinstance(current, (int, float)) and current > ticketwait:
            actions.sleeptime = ticketwait
            self._logSys.debug("[%s] %s: actions thread waits at most %s s for new tickets (was %s s)",
                               self._jail.name, self._name, ticketwait, current)
        interval = getattr(self._settings, "sleepinterval", 0)
        if interval and Utils.DEFAULT_SLEEP_INTERVAL > interval:
            self._logSys.debug("[%s] %s: fail2ban's waits sleep in steps of %s s (were %s s)",
                               self._jail.name, self._name, interval, Utils.DEFAULT_SLEEP_INTERVAL)
            Utils.DEFAULT_SLEEP_INTERVAL = interval

    def _gather(self):
        """Sleep until the pending changes are one batch: LONE_CHANGE_WAIT_S for a lone change, the
        whole flushdelay when more arrived meanwhile (a banip call with thousands of addresses, a restore)."""
        flushdelay = self._settings.flushdelay
        first = min(LONE_CHANGE_WAIT_S, flushdelay)
        time.sleep(first)
        with self._lock:
            burst = len(self._pending) > 1
        if burst and flushdelay > first and not self._stopping:
            time.sleep(flushdelay - first)

    def _start_flusher(self):
        self._stopping = False
        self._flusher = threading.Thread(target=self._flush_loop, name="f2b/%s.%s" % (self._jail.name, self._name))
        self._flusher.daemon = True
        self._flusher.start()

    def _stop_flusher(self, timeout=None):
        """Stop the flusher thread; what is still pending stays in _pending."""
        self._stopping = True
        self._wakeup.set()
        if self._flusher is not None:
            self._flusher.join(timeout)
            self._flusher = None

    def _flush_loop(self):
        while True:
            woken = self._wakeup.wait(self._idle_timeout())
            if woken and self._settings.flushdelay and not self._stopping:
                self._gather()
            self._wakeup.clear()
            # Checked after clear(): a stop signalled during the sleep is not lost; stop() handles what is left.
            if self._stopping:
                return
            try:
                if woken:
                    with self._apply_lock:
                        self._flush_pending()
                    self._log_bulk_bans()
                else:
                    self._idle()
            except Exception as error:  # pylint: disable=broad-exception-caught  # the thread must survive
                self._log_unexpected(error)

    # The summary lines of what BulkBanLog left out, by kind (private: fail2ban lists public attributes as properties).
    _BULK_SUMMARIES = (
        ("ban", "Ban %d addresses in bulk (fail2ban_ban; one line for all, fail2ban-client get %s banned lists each)"),
        ("restore", "Restore Ban %d addresses (one line for all, fail2ban-client get %s banned lists each)"),
        ("unban", "Unban %d addresses as the jail stops (one line for all; %s's bans stay in the database)"),
    )

    def _log_bulk_bans(self, kinds=("ban", "restore")):
        """The summary lines of the lines BulkBanLog left out since the last ones."""
        for kind in kinds:
            self._log_summary(kind, *self._bulk_log.take(kind))

    def _log_summary(self, kind, count, sample):
        """One summary line for `count` bans of a kind (_BULK_SUMMARIES) that got no line of their own."""
        if not count:
            return
        text = dict(self._BULK_SUMMARIES)[kind]
        # fail2ban's NOTICE level (25), the level of its own "Ban" lines.
        self._logSys.log(getattr(logging, "NOTICE", 25), "[%s] " + text + ": %s%s", self._jail.name, count,
                         self._jail.name, ", ".join(sample), ", ..." if count > len(sample) else "")

    def _jail_stopping(self):
        """True once fail2ban's actions thread of the jail has stopped (it then unbans every ticket)."""
        return getattr(getattr(self._jail, "actions", None), "active", True) is False

    def _log_unexpected(self, error):
        self._logSys.error("[%s] %s: unexpected error writing bans to %s: %s", self._jail.name, self._name, self.backend, error)
