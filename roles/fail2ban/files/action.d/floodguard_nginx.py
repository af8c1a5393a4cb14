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
floodguard_nftables.py). Check the options of every jail (``fail2ban-client -t`` does not load Python
actions)::

    python3 /etc/fail2ban/action.d/floodguard_nginx.py --check-config

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

import ast
import http.client
import ipaddress
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time

from fail2ban.server.actions import ActionBase

NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
PATH_PATTERN = re.compile(r"^/[^\s'\"\\;{}#]*$")
OPTIONS = ("name", "socket", "statedir", "allowlist", "flushdelay", "checkinterval", "ticketwait")
# Elements per request: keeps each request below the management server's body buffer (16m).
CHUNK = 5000
TIMEOUT = 30


class NginxBanConfigError(ValueError):
    """An action option that cannot work; the message names the option and the fix."""


def _split_words(value):
    return [word for word in re.split(r"[\s,]+", str(value).strip()) if word]


def parse_allowlist(value):
    networks = []
    for word in _split_words(value):
        try:
            networks.append(ipaddress.ip_network(word, strict=False))
        except ValueError:
            raise NginxBanConfigError("allowlist: %r is not an IP address or network (names are not resolved here)" % word) from None
    return networks


class Settings:
    """The action options, checked."""

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
        return cls(jail_name, **dict((key, value) for key, value in options.items() if key in OPTIONS))

    def __eq__(self, other):
        return isinstance(other, Settings) and vars(self) == vars(other)

    def __ne__(self, other):
        return not self == other


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


class NginxAction(ActionBase):
    """fail2ban Python action: bans in NGINX's shared dict, sent in batches by a flusher thread."""

    # Read by floodguard.shield.fail2ban_ban: CIDR bans work.
    supports_networks = True

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
        super().__init__(jail, action_name)
        self._settings = self._read_settings(options)
        self._management = Management(self._settings)
        self._lock = threading.Lock()  # guards _pending
        self._pending = {}  # element -> True (ban) or False (unban); the latest call wins
        self._banned = set()  # elements this jail has in NGINX (and in its state file)
        self._wakeup = threading.Event()
        self._stopping = False
        self._flusher = None
        self._apply_lock = threading.Lock()  # one writer at a time
        self._errors_logged = 0
        self._failing = ""  # why NGINX lacks bans, logged once until it holds them again

    def _read_settings(self, options):
        try:
            return Settings.from_options(self._jail.name, options)
        except NginxBanConfigError as error:
            self._logSys.error("[%s] action %s: %s", self._jail.name, self._name, error)
            raise

    # fail2ban life cycle

    def start(self):
        self._shorten_ticket_wait()
        with self._apply_lock:
            # fail2ban restores the bans it holds right after start(); clear what a crash may have left.
            self._banned = set()
            self._write_state()
            try:
                self._management.flush()
            except NginxBanError as error:
                self._logSys.warning("[%s] %s: %s; the bans go to %s and NGINX loads them when it starts",
                                     self._jail.name, self._name, error, self._settings.statefile)
        self._stopping = False
        self._flusher = threading.Thread(target=self._flush_loop, name="f2b/%s.%s" % (self._jail.name, self._name))
        self._flusher.daemon = True
        self._flusher.start()

    def _shorten_ticket_wait(self):
        actions = getattr(self._jail, "actions", None)
        current = getattr(actions, "sleeptime", None)
        if self._settings.ticketwait and isinstance(current, (int, float)) and current > self._settings.ticketwait:
            actions.sleeptime = self._settings.ticketwait

    def stop(self):
        self._stopping = True
        self._wakeup.set()
        if self._flusher is not None:
            self._flusher.join()
            self._flusher = None
        self.flush()

    def ban(self, aInfo):  # pylint: disable=invalid-name  # fail2ban's name
        self._want(aInfo["ip"], True)

    def reban(self, aInfo):  # pylint: disable=invalid-name
        self._want(aInfo["ip"], True)

    def unban(self, aInfo):  # pylint: disable=invalid-name
        self._want(aInfo["ip"], False)

    def flush(self):
        """Unban everything of this jail at once (fail2ban-client unban --all, jail stop)."""
        with self._apply_lock:
            with self._lock:
                self._pending.clear()
            self._banned = set()
            self._write_state()
            try:
                self._management.flush()
            except NginxBanError as error:
                self._logSys.error("[%s] %s: %s", self._jail.name, self._name, error)
                return False
        return True

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

    def clearAllParams(self):  # pylint: disable=invalid-name
        # With reload() this keeps the action (and its bans) over `fail2ban-client reload`.
        return None

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

    def _want(self, ip, banned):
        target = element_of(ip)
        if target is None:
            self._logSys.error("[%s] %s: %r is not an IP address or network, so NGINX cannot %s it",
                               self._jail.name, self._name, str(ip), "ban" if banned else "unban")
            return
        element, network = target
        if banned and self._allowlisted(network):
            self._logSys.warning("[%s] %s: %s is allowlisted: not banned in NGINX", self._jail.name, self._name, network)
            return
        with self._lock:
            self._pending[element] = banned
        self._wakeup.set()

    def _allowlisted(self, network):
        return any(network.version == allowed.version and network.subnet_of(allowed) for allowed in self._settings.allowlist)

    def _flush_loop(self):
        while True:
            woken = self._wakeup.wait(self._settings.checkinterval)
            if woken and self._settings.flushdelay and not self._stopping:
                # Let a burst (a banip call with thousands of addresses, a restore) gather into one batch.
                time.sleep(self._settings.flushdelay)
            self._wakeup.clear()
            if self._stopping:
                return
            try:
                if woken:
                    self._flush_pending()
                else:
                    self._check("periodic check")
            except Exception as error:  # pylint: disable=broad-exception-caught  # the thread must survive
                self._log_error("unexpected error sending bans to NGINX: %s" % error)

    def _flush_pending(self):
        with self._apply_lock:
            with self._lock:
                pending, self._pending = self._pending, {}
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
        if self._errors_logged <= 10:
            self._logSys.error("[%s] %s: %s", self._jail.name, self._name, message)


Action = NginxAction


def configured_actions(dump):
    """[(jail, action name, options)] of this action in `fail2ban-client --dump` output."""
    found = []
    for line in dump.splitlines():
        if "addaction" not in line or not line.startswith("["):
            continue
        try:
            command = ast.literal_eval(line)
        except (ValueError, SyntaxError):
            continue
        if len(command) >= 5 and command[0] == "set" and command[2] == "addaction" \
                and os.path.basename(str(command[4])) == os.path.basename(__file__):
            options = json.loads(command[5]) if len(command) > 5 and command[5] else {}
            found.append((command[1], command[3], options))
    return found


def check_configuration(client="fail2ban-client"):
    """Check every jail's options of this action as fail2ban reads them from /etc/fail2ban."""
    done = subprocess.run([client, "--dump"], capture_output=True, text=True, check=False, env=dict(os.environ, LC_ALL="C"))
    if done.returncode:
        sys.stderr.write("fail2ban-client --dump failed (rc=%d): %s\n" % (done.returncode, done.stderr.strip()))
        return 1
    problems = []
    actions = configured_actions(done.stdout)
    for jail, action_name, options in actions:
        try:
            Settings.from_options(jail, options)
        except NginxBanConfigError as error:
            problems.append("jail %s, action %s: %s" % (jail, action_name, error))
    for problem in problems:
        sys.stderr.write("floodguard_nginx: %s\n" % problem)
    if not problems:
        sys.stdout.write("OK: %d jail action(s) checked\n" % len(actions))
    return 1 if problems else 0


if __name__ == "__main__":
    if sys.argv[1:] != ["--check-config"]:
        sys.stderr.write("usage: python3 %s --check-config\n" % sys.argv[0])
        sys.exit(2)
    sys.exit(check_configuration())
