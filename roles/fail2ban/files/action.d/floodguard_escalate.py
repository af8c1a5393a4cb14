# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""fail2ban action that bans a whole prefix once enough of its addresses were banned.

Use it as the last action of a jail::

    action = floodguard_nftables.py[...]
             floodguard_escalate.py[threshold=10, window=600, ipv4prefix=24, ipv6prefix=64, allowlist="192.0.2.7"]

When ``threshold`` different addresses of one IPv4 /``ipv4prefix`` or IPv6 /``ipv6prefix`` were banned
by the jail within ``window`` seconds, the prefix itself is banned through the jail
(``jail.actions.addBannedIP``), for the jail's bantime: every action of the jail (nftables, iptables,
NGINX) enforces it, fail2ban lists it, its database keeps it, and it expires like any ban. A prefix
that holds an address of ``allowlist`` (the role passes fail2ban's ignoreip with the host's own
addresses) or one of this host's addresses is never banned. The action itself blocks nothing.
"""

import importlib.util
import ipaddress
import os
import sys
import threading
import time

from fail2ban.server.actions import ActionBase

if "floodguard_batching" not in sys.modules:  # fail2ban loads actions by path: the base is next to this file
    _SPEC = importlib.util.spec_from_file_location("floodguard_batching", os.path.join(os.path.dirname(os.path.abspath(__file__)), "floodguard_batching.py"))
    sys.modules["floodguard_batching"] = importlib.util.module_from_spec(_SPEC)
    _SPEC.loader.exec_module(sys.modules["floodguard_batching"])
batching = sys.modules["floodguard_batching"]

# How many bans pass between two sweeps of the prefixes whose counts have expired.
SWEEP_EVERY = 1000


class EscalateConfigError(batching.ConfigError):
    """An option of the action is invalid."""


def _whole_number(option, value, low, high):
    try:
        number = int(str(value).strip())
    except ValueError:
        raise EscalateConfigError("%s: %r must be a whole number from %d to %d" % (option, value, low, high)) from None
    if not low <= number <= high:
        raise EscalateConfigError("%s: %r must be a whole number from %d to %d" % (option, value, low, high))
    return number


class Settings(batching.ActionSettings):
    """The action options, checked."""

    OPTIONS = ("threshold", "window", "ipv4prefix", "ipv6prefix", "allowlist")

    def __init__(self, threshold="10", window="600", ipv4prefix="24", ipv6prefix="64", allowlist=""):
        self.threshold = _whole_number("threshold", threshold, 2, 1000000)
        self.window = _whole_number("window", window, 1, 31536000)
        self.prefix = {4: _whole_number("ipv4prefix", ipv4prefix, 8, 31), 6: _whole_number("ipv6prefix", ipv6prefix, 16, 127)}
        self.allowlist = batching.parse_allowlist(allowlist, EscalateConfigError)

    def summary(self):
        """One line for floodguard_check.py."""
        return "prefixes /%d and /%d banned after %d of their addresses within %d s, %d allowlisted networks spared" % (
            self.prefix[4], self.prefix[6], self.threshold, self.window, len(self.allowlist))

    @classmethod
    def from_options(cls, options):
        return cls(**cls.known(options))


def prefix_of(ip, prefixes):
    """The prefix network of a single address (IPv4-mapped IPv6 counts as IPv4); None for a network or a non-address."""
    try:
        network = ipaddress.ip_network(str(ip), strict=False)
    except ValueError:
        return None
    if network.num_addresses != 1:
        return None
    address = network.network_address
    if address.version == 6 and address.ipv4_mapped:
        address = address.ipv4_mapped
    return ipaddress.ip_network("%s/%d" % (address, prefixes[address.version]), strict=False)


class PrefixCounter:
    """Distinct banned addresses per prefix within a sliding window; says when a prefix reaches the threshold."""

    def __init__(self, settings):
        self._settings = settings
        self._seen = {}  # prefix -> {address text: time of its last ban}
        self._since_sweep = 0

    def add(self, prefix, address, now):
        """Records a ban; returns True once the prefix holds threshold addresses banned within the window."""
        cutoff = now - self._settings.window
        addresses = self._seen.setdefault(prefix, {})
        addresses[address] = now
        for old in [key for key, when in addresses.items() if when < cutoff]:
            del addresses[old]
        self._since_sweep += 1
        if self._since_sweep >= SWEEP_EVERY:
            self._sweep(cutoff)
        if len(addresses) < self._settings.threshold:
            return False
        del self._seen[prefix]
        return True

    def _sweep(self, cutoff):
        self._since_sweep = 0
        for prefix in [key for key, addresses in self._seen.items() if max(addresses.values()) < cutoff]:
            del self._seen[prefix]

    def __len__(self):
        return len(self._seen)


def _own_addresses():
    """This host's addresses as fail2ban knows them (its ignoreself); empty where fail2ban cannot tell."""
    try:
        from fail2ban.server.ipdns import DNSUtils  # pylint: disable=import-outside-toplevel
        return [ipaddress.ip_network(str(ip), strict=False) for ip in DNSUtils.getSelfIPs() if str(ip)]
    except Exception:  # pylint: disable=broad-except  # no fail2ban (tests) or an address it could not parse
        return []


class EscalateAction(ActionBase):
    """fail2ban Python action: ban a prefix through the jail when enough of its addresses were banned."""

    def __init__(self, jail, action_name, **options):
        super().__init__(jail, action_name)
        try:
            self._settings = self.settings_from(jail.name, options)
        except EscalateConfigError as error:
            self._logSys.error("[%s] action %s: %s", self._jail.name, self._name, error)
            raise
        self._lock = threading.Lock()
        self._counter = PrefixCounter(self._settings)
        self._protected = list(self._settings.allowlist)

    @classmethod
    def settings_from(cls, jail_name, options):  # pylint: disable=unused-argument  # floodguard_check.py's interface
        return Settings.from_options(options)

    def start(self):
        self._protected = list(self._settings.allowlist) + _own_addresses()

    def stop(self):
        with self._lock:
            self._counter = PrefixCounter(self._settings)

    def clearAllParams(self):  # pylint: disable=invalid-name  # fail2ban's name
        """fail2ban keeps an action over `fail2ban-client reload` only if it has this and reload(): without them it
        removes the action from the jail at the first reload, and the jail stops escalating."""
        return None

    def reload(self, **options):
        settings = self.settings_from(self._jail.name, options)
        if settings == self._settings:
            return
        self._logSys.info("[%s] %s: applying changed options", self._jail.name, self._name)
        with self._lock:
            self._settings = settings
            self._counter = PrefixCounter(settings)
        self.start()

    def ban(self, aInfo):  # pylint: disable=invalid-name  # fail2ban's name
        if aInfo.get("restored"):
            return  # bans restored at start-up are old; a prefix ban is restored by itself
        prefix = prefix_of(aInfo["ip"], self._settings.prefix)
        if prefix is None:
            return
        with self._lock:
            reached = self._counter.add(prefix, str(aInfo["ip"]), time.time())
        if not reached:
            return
        protected = [str(network) for network in self._protected if network.version == prefix.version and network.overlaps(prefix)]
        if protected:
            self._logSys.warning("[%s] %d addresses of %s were banned, but it holds allowlisted %s: only the addresses stay banned",
                                 self._jail.name, self._settings.threshold, prefix, ", ".join(protected))
            return
        self._logSys.warning("[%s] %d addresses of %s banned within %d s: banning %s", self._jail.name,
                             self._settings.threshold, prefix, self._settings.window, prefix)
        # Through the jail, so that every action enforces it and fail2ban lists and keeps it.
        self._jail.actions.addBannedIP(str(prefix))

    def unban(self, aInfo):  # pylint: disable=invalid-name
        """Nothing to undo: the prefix ban is the jail's own ticket and expires with it."""


Action = EscalateAction
