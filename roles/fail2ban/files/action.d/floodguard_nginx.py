# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""fail2ban ban action that bans inside NGINX, keyed on the real client behind a load balancer.

Behind a load balancer every packet comes from the balancer, so a firewall ban of the client has no
effect. NGINX knows the real client (real_ip), so the ban has to happen there. The nginx_ratelimit
role (nginx_ratelimit_ban_enabled) gives NGINX a lua_shared_dict of bans, checked on every request
after real_ip, and a management server on a root-only unix socket. This action, run in the fail2ban
server process, sends the bans there in batches: no NGINX reload per ban, ever.

Use it in a jail::

    action = floodguard_nginx.py[name=nginx-req-limit, socket=/run/floodguard-nginx/ban.sock,
                                 statedir=/var/lib/floodguard/nginx-bans, allowlist="127.0.0.0/8 ::1"]

Options: ``name`` (default: the jail's name), ``socket`` (the management socket), ``statedir`` (where
the jail's bans are kept for NGINX to load after a restart: <statedir>/<name>.bans), ``allowlist``
(addresses and networks never sent to NGINX), ``flushdelay`` (default 0.05 s: how long a burst of bans
gathers before it is sent), ``checkinterval`` (default 5 s: how often the action compares NGINX's count
of the jail's bans with its own, and sends them all again if they differ) and ``ticketwait`` (as in
floodguard_nftables.py). The batching core is floodguard_batching.py next to this file. Check the options
of every jail (``fail2ban-client -t`` does not load Python actions)::

    python3 /etc/fail2ban/action.d/floodguard_check.py --check-config

Survival: fail2ban restores its bans from its database after a restart and calls ban() for each; NGINX
keeps the dict over a reload (HUP) and loads the state files at start (init_by_lua) after a restart, or
after a reload that gave it a new, empty dict (a changed size): the bans are back before the first
request, and NGINX's error log says so. Anything else that empties the list (a flush through the socket,
a state file NGINX could not read) is found by the count check every ``checkinterval`` seconds: one
request that costs the same at 10 or 100,000 bans; the action then sends every ban again and logs it
once with what it found.
Elements travel as the hex of the packed address and the prefix length ("cb007107/32"), so that the Lua
side never parses address text.
"""

import http.client
import importlib.util
import ipaddress
import os
import re
import socket
import sys
import tempfile
import time

if "floodguard_batching" not in sys.modules:  # fail2ban loads actions by path: the base is next to this file
    _SPEC = importlib.util.spec_from_file_location("floodguard_batching", os.path.join(os.path.dirname(os.path.abspath(__file__)), "floodguard_batching.py"))
    sys.modules["floodguard_batching"] = importlib.util.module_from_spec(_SPEC)
    _SPEC.loader.exec_module(sys.modules["floodguard_batching"])
batching = sys.modules["floodguard_batching"]
ports = batching.load_sibling("floodguard_ports.py", "floodguard_ports")

NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
PATH_PATTERN = re.compile(r"^/[^\s'\"\\;{}#]*$")
OPTIONS = ("name", "socket", "statedir", "allowlist", "flushdelay", "checkinterval", "ticketwait")
# Elements per request: keeps each request below the management server's body buffer (16m).
CHUNK = 5000
TIMEOUT = 30


class NginxBanConfigError(batching.ConfigError):
    """An action option that cannot work; the message names the option and the fix."""


def parse_allowlist(value):
    networks = []
    for word in ports.split_words(value):
        try:
            networks.append(ipaddress.ip_network(word, strict=False))
        except ValueError:
            raise NginxBanConfigError("allowlist: %r is not an IP address or network (names are not resolved here)" % word) from None
    return networks


class Settings(batching.ActionSettings):
    """The action options, checked."""

    OPTIONS = OPTIONS

    def __init__(self, jail_name, name=None, socket="/run/floodguard-nginx/ban.sock",  # pylint: disable=redefined-outer-name
                 statedir="/var/lib/floodguard/nginx-bans", allowlist="", flushdelay="0.05", checkinterval="5",
                 ticketwait="0.2"):
        self.name = str(name or jail_name)
        if not NAME_PATTERN.match(self.name):
            raise NginxBanConfigError("name: %r must be 1 to 64 letters, digits, '_', '.' or '-'" % self.name)
        for option, value in (("socket", socket), ("statedir", statedir)):
            if not PATH_PATTERN.match(str(value)):
                raise NginxBanConfigError("%s: %r must be an absolute path without spaces or quotes" % (option, value))
        self.socket = str(socket)
        self.statedir = str(statedir)
        self.allowlist = parse_allowlist(allowlist)
        try:
            self.flushdelay = float(flushdelay)
            self.checkinterval = float(checkinterval)
            self.ticketwait = float(ticketwait)
        except ValueError:
            raise NginxBanConfigError("flushdelay, checkinterval and ticketwait must be numbers of seconds (e.g. 0.05, 5, 0.2)") from None
        if not 0 <= self.flushdelay <= 1:
            raise NginxBanConfigError("flushdelay: %r s; bans must reach NGINX fast, use 0 to 1" % flushdelay)
        if not 0.5 <= self.checkinterval <= 3600:
            raise NginxBanConfigError("checkinterval: %r s; use 0.5 to 3600" % checkinterval)
        if not 0 <= self.ticketwait <= 2:
            raise NginxBanConfigError("ticketwait: %r s; use 0 (fail2ban's own waits) or up to 2" % ticketwait)
        self.statefile = os.path.join(self.statedir, "%s.bans" % self.name)

    @classmethod
    def from_options(cls, jail_name, options):
        return cls(jail_name, **cls.known(options))

    def summary(self):
        return "bans of %s via %s, kept in %s" % (self.name, self.socket, self.statefile)


def element_of(ip):
    """Return (element, network) for a ticket's address: element is 'hex-of-packed/prefix'; None if invalid."""
    try:
        network = ipaddress.ip_network(str(ip), strict=False)
    except ValueError:
        return None
    if network.version == 6 and network.prefixlen == 128 and network.network_address.ipv4_mapped:
        network = ipaddress.ip_network(network.network_address.ipv4_mapped)
    return "%s/%d" % (network.network_address.packed.hex(), network.prefixlen), network


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP to NGINX's management server on a unix socket."""

    def __init__(self, path):
        super().__init__("floodguard-ban", timeout=TIMEOUT)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


class NginxBanError(RuntimeError):
    """NGINX's management server is unreachable or refused a batch."""


class Management:
    """Requests to the management server: returns NGINX's count of the jail's bans."""

    def __init__(self, settings):
        self.settings = settings

    def request(self, method, operation, elements=()):
        connection = UnixHTTPConnection(self.settings.socket)
        try:
            body = "".join(element + "\n" for element in elements).encode() if method == "POST" else None
            connection.request(method, "/%s?jail=%s" % (operation, self.settings.name), body=body)
            response = connection.getresponse()
            text = response.read().decode(errors="replace").strip()
        except OSError as error:
            raise NginxBanError("cannot reach NGINX's ban socket %s: %s (is NGINX running with nginx_ratelimit_ban_enabled?)"
                                % (self.settings.socket, error)) from None
        finally:
            connection.close()
        if response.status == 507:
            raise NginxBanError("NGINX's ban dictionary is full (%s): raise nginx_ratelimit_ban_dict_size" % text)
        if response.status != 200:
            raise NginxBanError("NGINX refused %s (HTTP %d): %s" % (operation, response.status, text))
        return text

    def count(self):
        return int(self.request("GET", "count").split()[-1])

    def change(self, operation, elements):
        """Add or remove elements in chunks; return NGINX's count afterwards."""
        elements = list(elements)
        answer = ""
        for start in range(0, len(elements), CHUNK):
            answer = self.request("POST", operation, elements[start:start + CHUNK])
        return int(answer.split()[-1]) if answer else None

    def flush(self):
        return int(self.request("POST", "flush").split()[-1])


class NginxAction(batching.BatchingAction):
    """fail2ban Python action: bans in NGINX's shared dict, sent in batches by a flusher thread.

    Every ``checkinterval`` seconds without bans to send, the flusher compares NGINX's count of the
    jail's bans with its own (consistencyCheck) and sends them all again when they differ.
    """

    # supports_networks (BatchingAction): CIDR bans work.
    backend = "NGINX"

    # Read by floodguard.shield.fail2ban_info (fail2ban-client get JAIL action NAME PROPERTY): where to
    # read NGINX's list of the jail's bans on its own.
    @property
    def ban_socket(self):
        return self._settings.socket

    @property
    def ban_list(self):
        return self._settings.name

    @property
    def enforced(self):
        """True when NGINX holds as many of the jail's bans as fail2ban sent it, nothing waiting."""
        try:
            return not self._pending and self._management.count() == len(self._banned)
        except NginxBanError:
            return False

    @property
    def saved(self):
        """True when the state file NGINX loads at start holds every ban fail2ban lists (the boot wait reads it)."""
        with self._apply_lock:  # a batch being written is done once the lock is free
            with self._lock:
                if self._pending:
                    return False
            for ip in self._jail.actions.banManager.getBanList():
                target = element_of(ip)
                if target is not None and target[0] not in self._banned and not self._allowlisted(target[1]):
                    return False
        return True

    def __init__(self, jail, action_name, **options):
        super().__init__(jail, action_name, **options)
        self._management = Management(self._settings)
        self._banned = set()  # elements this jail has in NGINX (and in its state file)
        self._errors_logged = 0
        self._failing = ""  # why NGINX lacks bans, logged once until it holds them again

    @classmethod
    def settings_from(cls, jail_name, options):
        return Settings.from_options(jail_name, options)

    # fail2ban life cycle

    def start(self):
        self._shorten_ticket_wait()
        with self._apply_lock:
            # fail2ban restores the bans it holds right after start(); clear what a crash may have left.
            error = self._forget_all()
        if error:
            self._logSys.warning("[%s] %s: %s; the bans go to %s and NGINX loads them when it starts",
                                 self._jail.name, self._name, error, self._settings.statefile)
        self._start_flusher()

    def stop(self):
        self._stop_flusher()
        self.flush()

    def flush(self):
        """Unban everything of this jail at once (fail2ban-client unban --all, jail stop)."""
        with self._apply_lock:
            error = self._forget_all()
        if error:
            self._logSys.error("[%s] %s: %s", self._jail.name, self._name, error)
            return False
        return True

    def _forget_all(self):
        """Drop every ban of this jail: pending, in the state file, in NGINX; the caller holds _apply_lock.

        Returns NGINX's error when it could not be reached (the empty state file stands), else None.
        """
        self._take_pending()
        self._banned = set()
        self._write_state()
        try:
            self._management.flush()
        except NginxBanError as error:
            return error
        return None

    def consistencyCheck(self, beforeRepair=None):  # pylint: disable=invalid-name
        """Called by fail2ban when a banned address keeps failing: does NGINX hold every ban?"""
        try:
            if self._management.count() == len(self._banned):
                return True
        except NginxBanError:
            return False
        if beforeRepair is not None and not beforeRepair():
            return False
        return self._check("a banned address keeps failing")

    def _check(self, cause):
        """Compare NGINX's count of the jail's bans with fail2ban's; send them all again if they differ."""
        try:
            count = self._management.count()
        except NginxBanError as error:
            if str(error) != self._failing:
                self._logSys.error("[%s] %s: bans not enforced in NGINX (%s): %s", self._jail.name, self._name, cause, error)
            self._failing = str(error)
            return False
        with self._apply_lock:
            wanted = len(self._banned)
        if count == wanted:
            if self._failing:
                self._logSys.warning("[%s] %s: NGINX enforces the jail's %d bans again", self._jail.name, self._name, wanted)
            self._failing = ""
            return True
        started = time.monotonic()
        if not self._resync(log=False):
            return False
        self._failing = ""
        self._logSys.warning("[%s] %s: bans were not enforced in NGINX (it held %d of the jail's %d bans: restarted or "
                             "reloaded without its state file, or the list was flushed; %s): sent them again in %.2f s",
                             self._jail.name, self._name, count, wanted, cause, time.monotonic() - started)
        return True

    def reload(self, **options):
        settings = self._read_settings(options)
        if settings == self._settings:
            return
        with self._apply_lock:
            self._settings = settings
            self._management = Management(settings)
        self._shorten_ticket_wait()
        self._resync()

    # batching

    def _target(self, ip, banned):
        target = element_of(ip)
        if target is None:
            self._log_not_an_address(ip, banned)
            return None
        element, network = target
        if banned and self._allowlisted(network):
            self._logSys.warning("[%s] %s: %s is allowlisted: not banned in NGINX", self._jail.name, self._name, network)
            return None
        return element

    def _allowlisted(self, network):
        return any(network.version == allowed.version and network.subnet_of(allowed) for allowed in self._settings.allowlist)

    def _idle_timeout(self):
        return self._settings.checkinterval

    def _idle(self):
        self._check("periodic check")

    def _log_unexpected(self, error):
        self._log_error("unexpected error sending bans to NGINX: %s" % error)

    def _flush_pending(self):
        pending = self._take_pending()
        if not pending:
            return
        added = [element for element, banned in pending.items() if banned and element not in self._banned]
        removed = [element for element, banned in pending.items() if not banned and element in self._banned]
        self._banned.update(added)
        self._banned.difference_update(removed)
        self._write_state()
        try:
            count = None
            if removed:
                count = self._management.change("remove", removed)
            if added:
                count = self._management.change("add", added)
        except NginxBanError as error:
            # NGINX loads the state file when it starts; a running NGINX gets everything at the next check.
            self._log_error(str(error))
            return
        if count is not None and count != len(self._banned):
            self._logSys.warning("[%s] %s: NGINX holds %d bans of this jail, fail2ban %d: sending them all again",
                                 self._jail.name, self._name, count, len(self._banned))
            self._resync(locked=True)
        self._errors_logged = 0

    def _resync(self, locked=False, log=True):
        """Make NGINX hold exactly this jail's bans (after an NGINX restart that lost them, a failed batch)."""
        if not locked:
            with self._apply_lock:
                return self._resync(locked=True, log=log)
        try:
            self._management.flush()
            self._management.change("add", sorted(self._banned))
        except NginxBanError as error:
            self._log_error(str(error))
            return False
        if log:
            self._logSys.warning("[%s] %s: NGINX has the jail's %d bans again", self._jail.name, self._name, len(self._banned))
        return True

    def _write_state(self):
        """Rewrite <statedir>/<name>.bans atomically (root only); NGINX reads it at start."""
        try:
            os.makedirs(self._settings.statedir, mode=0o700, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=self._settings.statedir, prefix=".%s." % self._settings.name)
            with os.fdopen(handle, "w") as state:
                state.write("".join(element + "\n" for element in sorted(self._banned)))
            os.replace(temporary, self._settings.statefile)
        except OSError as error:
            self._log_error("cannot write %s: %s" % (self._settings.statefile, error))

    def _log_error(self, message):
        # A systematic failure (NGINX down during a flood) must not flood the fail2ban log.
        self._errors_logged += 1
        if self._errors_logged <= batching.MAX_ERRORS_LOGGED:
            self._logSys.error("[%s] %s: %s", self._jail.name, self._name, message)


Action = NginxAction
