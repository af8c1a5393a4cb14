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
import os
import sys
import threading
import time

from fail2ban.server.actions import ActionBase

# A systematic failure must not write thousands of identical lines into the fail2ban log.
MAX_ERRORS_LOGGED = 10


def load_sibling(file_name, module_name):
    """Load a module deployed next to this file, once per process."""
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, os.path.join(os.path.dirname(os.path.abspath(__file__)), file_name))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[module_name] = module
    return module


class ConfigError(ValueError):
    """An action option that cannot work; the message names the option and the fix."""


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

    def _take_pending(self):
        """The pending changes, which the caller now writes; _pending starts empty again."""
        with self._lock:
            pending, self._pending = self._pending, {}
        return pending

    def _shorten_ticket_wait(self):
        """Cap the sleeptime of fail2ban's actions thread at the ``ticketwait`` option.

        That thread looks for the filter's new fail tickets in waits that grow from 0.2 s to 0.8 s
        (Utils.wait_for, up to its sleeptime of 2 s); the loop it shortens only checks a queue and
        the next unban time.
        """
        actions = getattr(self._jail, "actions", None)
        current = getattr(actions, "sleeptime", None)
        ticketwait = self._settings.ticketwait
        if ticketwait and isinstance(current, (int, float)) and current > ticketwait:
            actions.sleeptime = ticketwait
            self._logSys.debug("[%s] %s: actions thread waits at most %s s for new tickets (was %s s)",
                               self._jail.name, self._name, ticketwait, current)

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
            # Let a burst (a banip call with thousands of addresses, a restore) gather into one batch.
            if woken and self._settings.flushdelay and not self._stopping:
                time.sleep(self._settings.flushdelay)
            self._wakeup.clear()
            # Checked after clear(): a stop signalled during the sleep is not lost; stop() handles what is left.
            if self._stopping:
                return
            try:
                if woken:
                    with self._apply_lock:
                        self._flush_pending()
                else:
                    self._idle()
            except Exception as error:  # pylint: disable=broad-exception-caught  # the thread must survive
                self._log_unexpected(error)

    def _log_unexpected(self, error):
        self._logSys.error("[%s] %s: unexpected error writing bans to %s: %s", self._jail.name, self._name, self.backend, error)
