# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to floodguard.shield: runs fail2ban-client and parses what it prints.

The fail2ban_status and fail2ban_ban modules stay thin: every command line and every parser lives
here. The parsers are plain functions over the text fail2ban-client prints, unit-tested on output
captured from fail2ban 1.0 (Debian 12) and 1.1 (Debian 13). Not a public API: it may change.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ast
import functools
import ipaddress
import json
import os
import re
import socket

from ansible.module_utils.common.text.converters import to_text

CLIENT = "fail2ban-client"
# fail2ban-client talks to the server over a blocking socket with no timeout of its own, so a big
# batch on a slow action (the stock nftables action runs one nft process per address) just takes
# its time; nothing here cuts it short.
ENVIRONMENT = {"LC_ALL": "C"}

# The argv of one fail2ban-client call stays under this many bytes (see batch_budget).
BATCH_BUDGET_CAP = 256 * 1024
BATCH_BUDGET_FLOOR = 16 * 1024
# Each argv entry costs its bytes, a NUL and a pointer in the new process's stack.
ARGV_ENTRY_OVERHEAD = 1 + 8

# Always protected: banning them cuts the host off from itself.
LOOPBACK_NETWORKS = ("127.0.0.0/8", "::1/128")

SEPARATORS = re.compile(r"[\s,]+")
HOST_NAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$")
TREE_PREFIX = re.compile(r"^[\s|`-]*")
STATUS_LINE = re.compile(r"^[\s|`-]*(?P<key>[A-Za-z][A-Za-z ]*):\t?(?P<value>.*)$")
BAN_WITH_TIME = re.compile(
    r"^(?P<ip>\S+)\s+(?P<start>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) \+ (?P<bantime>-?\d+) = (?P<end>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)$"
)
# `get <jail> banned`: a Python list of quoted addresses, e.g. ['203.0.113.7', '2001:db8::7'].
BANNED_LIST = re.compile(r"^\[(?:'[0-9A-Fa-f.:/]+'(?:, '[0-9A-Fa-f.:/]+')*)?\]$")
QUOTED = re.compile(r"'([^']*)'")
# fail2ban prints this end for a permanent ban (bantime -1).
PERMANENT_END = "9999-12-31 23:59:59"

HOW_TO_START = (
    "Start it with 'systemctl start fail2ban'; if it does not stay up, 'fail2ban-client -t' checks its "
    "configuration and 'journalctl -u fail2ban' shows why."
)


class Fail2banError(Exception):
    """A failure the modules report as is: msg, plus the command that failed when there was one."""

    def __init__(self, msg, cmd=None, rc=None, stdout="", stderr=""):
        super(Fail2banError, self).__init__(msg)
        self.msg = msg
        self.cmd = cmd
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr

    def result(self):
        return dict(msg=self.msg, cmd=self.cmd, rc=self.rc, stdout=self.stdout, stderr=self.stderr)


def shorten_cmd(cmd, keep=8):
    """The argv for a result: a batch of 10,000 addresses is summarised, not echoed."""
    if len(cmd) <= keep + 1:
        return list(cmd)
    return list(cmd[:keep]) + ["... (%d more arguments)" % (len(cmd) - keep)]


def explain_failure(cmd, rc, stdout, stderr):
    """A Fail2banError that says what went wrong and how to fix it."""
    text = "%s\n%s" % (stdout, stderr)
    if "Failed to access socket path" in text or "Is fail2ban running?" in text:
        msg = "The fail2ban server is not running (fail2ban-client cannot reach its socket). " + HOW_TO_START
    elif "Permission denied" in text or "you must be root" in text:
        msg = (
            "Permission denied on fail2ban's socket: fail2ban-client must run as root. "
            "Use become: true (ad hoc: --become)."
        )
    else:
        match = re.search(r"Sorry but the jail '([^']*)' does not exist", text)
        if match:
            msg = "fail2ban has no jail named %r." % match.group(1)
        else:
            last = [line for line in text.splitlines() if line.strip()]
            msg = "fail2ban-client failed (rc=%s): %s" % (rc, last[-1].strip() if last else "no output")
    return Fail2banError(msg, cmd=shorten_cmd(cmd), rc=rc, stdout=stdout, stderr=stderr)


class Fail2banClient(object):
    """Runs fail2ban-client through the module, as an argv list, in the C locale."""

    def __init__(self, module):
        self.module = module
        self.path = module.get_bin_path(CLIENT)
        if not self.path:
            raise Fail2banError(
                "fail2ban-client was not found on this host: fail2ban is not installed. Install it "
                "(apt-get install fail2ban, or the floodguard.shield.fail2ban role) and start it."
            )
        self.calls = 0

    def run(self, *args):
        cmd = [self.path] + [to_text(arg) for arg in args]
        self.calls += 1
        rc, stdout, stderr = self.module.run_command(cmd, environ_update=ENVIRONMENT)
        if rc != 0:
            raise explain_failure(cmd, rc, stdout, stderr)
        return stdout

    def version(self):
        return parse_version(self.run("version"))

    def jails(self):
        return parse_jail_list(self.run("status"))

    def require_jail(self, jail):
        """The server's jails; fails naming the ones that exist when jail is not one of them."""
        jails = self.jails()
        if jail not in jails:
            raise Fail2banError(
                "fail2ban has no jail named %r. Its jails: %s. Give one of them, or add the jail to "
                "fail2ban's configuration first." % (jail, ", ".join(jails) if jails else "(none)")
            )
        return jails

    def jail_status(self, jail):
        return parse_jail_status(self.run("status", jail))

    def bans_with_time(self, jail):
        return parse_bans_with_time(self.run("get", jail, "banip", "--with-time"))

    def banned(self, jail):
        return parse_banned(self.run("get", jail, "banned"))

    def jails_banning(self, address):
        return parse_banned_ip(self.run("banned", address))[0]

    def ignoreip(self, jail):
        return parse_ignoreip(self.run("get", jail, "ignoreip"))

    def actions(self, jail):
        return parse_actions(self.run("get", jail, "actions"))

    def action_network_support(self, jail, action):
        """(supported, why) for banning CIDR networks through one action of the jail."""
        properties = parse_action_properties(self.run("get", jail, "actionproperties", action))
        if "actionban" in properties:
            actionban = self.run("get", jail, "action", action, "actionban")
            actionstart = self.run("get", jail, "action", action, "actionstart") if "actionstart" in properties else ""
            return command_action_network_support(actionban, actionstart)
        if "supports_networks" in properties:
            value = self.run("get", jail, "action", action, "supports_networks").strip()
            if value.lower() in ("true", "1", "yes"):
                return True, "the action declares supports_networks"
            return False, "the action declares supports_networks = %s" % value
        return False, "it is a Python action that does not declare supports_networks"

    def change(self, jail, verb, addresses):
        """Ban (verb banip) or unban (unbanip) addresses, one fail2ban-client call per batch."""
        prefix = ["set", jail, verb]
        calls = 0
        done = 0
        for batch in batches(addresses, [self.path] + prefix, batch_budget()):
            try:
                self.run(*(prefix + batch))
            except Fail2banError as exc:
                if done:
                    exc.msg += (
                        " Earlier batches had already passed %d of the %d addresses to '%s'; run the task "
                        "again to finish." % (done, len(addresses), verb)
                    )
                raise
            calls += 1
            done += len(batch)
        return calls


# --- parsers ------------------------------------------------------------------------------------

def unexpected(what, text):
    return Fail2banError("Unexpected output from fail2ban-client %s: %r" % (what, text[:500]), stdout=text)


def parse_version(stdout):
    """'1.0.2' from `fail2ban-client version` (the server's version)."""
    version = stdout.strip()
    if not re.match(r"^\d+(\.\d+)+\S*$", version):
        raise unexpected("version", stdout)
    return version


def parse_jail_list(stdout):
    """Jail names from `fail2ban-client status`, in fail2ban's order."""
    for line in stdout.splitlines():
        match = STATUS_LINE.match(line)
        if match and match.group("key").strip() == "Jail list":
            return [name.strip() for name in match.group("value").split(",") if name.strip()]
    raise unexpected("status", stdout)


def _int(value, what, stdout):
    try:
        return int(value.strip())
    except ValueError:
        raise unexpected(what, stdout)


def parse_jail_status(stdout):
    """Counters, watched files or journal matches, and banned addresses from `status <jail>`."""
    fields = {}
    for line in stdout.splitlines():
        match = STATUS_LINE.match(line)
        if match:
            fields[match.group("key").strip()] = match.group("value").strip()
    required = ("Currently failed", "Total failed", "Currently banned", "Total banned", "Banned IP list")
    if not all(key in fields for key in required):
        raise unexpected("status <jail>", stdout)
    journal = fields.get("Journal matches")
    return {
        "filter": {
            "currently_failed": _int(fields["Currently failed"], "status <jail>", stdout),
            "total_failed": _int(fields["Total failed"], "status <jail>", stdout),
            # fail2ban joins the paths with spaces.
            "file_list": fields.get("File list", "").split(),
            # Groups joined by ' + ' are alternatives (OR); the terms of one group all apply (AND).
            "journal_matches": [group.strip() for group in journal.split(" + ")] if journal else [],
        },
        "actions": {
            "currently_banned": _int(fields["Currently banned"], "status <jail>", stdout),
            "total_banned": _int(fields["Total banned"], "status <jail>", stdout),
            "banned": fields["Banned IP list"].split(),
        },
    }


def parse_bans_with_time(stdout):
    """[{ip, ban_start, ban_end, bantime}] from `get <jail> banip --with-time`.

    Times are the host's local time as fail2ban prints them; a permanent ban has bantime -1 and
    ban_end None.
    """
    bans = []
    for line in stdout.splitlines():
        if not line.strip():
            continue
        match = BAN_WITH_TIME.match(line.strip())
        if not match:
            raise unexpected("get <jail> banip --with-time", stdout)
        bantime = int(match.group("bantime"))
        end = match.group("end")
        bans.append({
            "ip": match.group("ip"),
            "ban_start": match.group("start"),
            "ban_end": None if bantime < 0 or end == PERMANENT_END else end,
            "bantime": bantime,
        })
    return bans


def _literal(stdout, what):
    try:
        return ast.literal_eval(stdout.strip())
    except (ValueError, SyntaxError):
        raise unexpected(what, stdout)


def parse_banned(stdout):
    """The addresses `get <jail> banned` prints as a Python list, in ban order."""
    text = stdout.strip()
    # Fast path (100,000 addresses: 0.1 s instead of 2 s for literal_eval): a list of plain quoted
    # strings, which is what fail2ban prints for addresses. Anything else goes to literal_eval.
    if BANNED_LIST.match(text):
        return QUOTED.findall(text)
    value = _literal(stdout, "get <jail> banned")
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise unexpected("get <jail> banned", stdout)
    return value


def parse_banned_ip(stdout):
    """Per address asked, the jails that ban it, from `banned <ip> ...`."""
    value = _literal(stdout, "banned <ip>")
    if not isinstance(value, list) or not all(isinstance(item, list) for item in value):
        raise unexpected("banned <ip>", stdout)
    return value


def _tree_items(stdout, empty_marker, what):
    lines = [line for line in stdout.splitlines() if line.strip()]
    if not lines:
        raise unexpected(what, stdout)
    if lines[0].startswith(empty_marker):
        return []
    return [TREE_PREFIX.sub("", line).strip() for line in lines[1:]]


def parse_ignoreip(stdout):
    """The jail's ignoreip entries (addresses, networks, host names) from `get <jail> ignoreip`."""
    return _tree_items(stdout, "No IP address/network is ignored", "get <jail> ignoreip")


def parse_actions(stdout):
    """Action names from `get <jail> actions`."""
    return _tree_items(stdout, "No actions for jail", "get <jail> actions")


def parse_action_properties(stdout):
    """Property names from `get <jail> actionproperties <action>`."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    if not lines or "has the following properties" not in lines[0]:
        raise unexpected("get <jail> actionproperties <action>", stdout)
    return [name.strip() for line in lines[1:] for name in line.split(",") if name.strip()]


def parse_count(stdout):
    """The number fail2ban-client prints after banip or unbanip."""
    return _int(stdout, "set <jail> banip|unbanip", stdout)


def command_action_network_support(actionban, actionstart):
    """(supported, why) for CIDR bans through a command action, from its ban and start commands.

    nftables takes a network only into a set declared with 'flags interval' (the stock action does
    not: nft rejects the element, while fail2ban still lists the network as banned); an ipset
    takes one only when it is a hash:net; plain iptables rules take any network after -s.
    """
    ban = actionban.lower()
    start = actionstart.lower()
    if "nft" in ban:
        if "interval" in start:
            return True, "its nftables set has flags interval"
        return False, "its nftables set has no 'flags interval', so nft rejects networks"
    if "ipset" in ban:
        if "hash:net" in start:
            return True, "its ipset is a hash:net"
        return False, "its ipset is not a hash:net, so ipset rejects networks"
    if "iptables" in ban:
        return True, "iptables -s takes a network"
    return False, "floodguard cannot tell whether its command (%s) takes a network" % actionban.strip()


def parse_host_addresses(stdout):
    """[(address, interface)] of this host from `ip -j address show`."""
    try:
        links = json.loads(stdout)
    except ValueError:
        raise unexpected("ip -j address show", stdout)
    found = []
    for link in links:
        for info in link.get("addr_info", []):
            if info.get("local"):
                found.append((info["local"], link.get("ifname", "?")))
    return found


# --- addresses ----------------------------------------------------------------------------------

def normalise_address(text):
    """'2001:DB8::7' -> '2001:db8::7', '203.0.113.7/32' -> '203.0.113.7', as fail2ban lists them.

    Raises ValueError for anything that is not an IPv4/IPv6 address or a network without host bits.
    """
    if "/" in text:
        network = ipaddress.ip_network(text, strict=True)
        if network.num_addresses == 1:
            return str(network.network_address)
        return str(network)
    return str(ipaddress.ip_address(text))


def split_addresses(values):
    """Entries of a list whose items may themselves hold several addresses (AWX survey text)."""
    items = []
    for value in values:
        items.extend(item for item in SEPARATORS.split(to_text(value)) if item)
    return items


def validate_addresses(values, variable="ips"):
    """The normalised addresses, in order, without repeats; raises naming every bad entry."""
    result = []
    seen = set()
    bad = []
    for item in split_addresses(values):
        try:
            normalised = normalise_address(item)
        except ValueError as exc:
            bad.append("%r (%s)" % (item, exc))
            continue
        if normalised not in seen:
            seen.add(normalised)
            result.append(normalised)
    if bad:
        shown = bad[:20]
        more = " and %d more" % (len(bad) - len(shown)) if len(bad) > len(shown) else ""
        raise Fail2banError(
            "%s holds %d entr%s that %s not an IP address or CIDR network: %s%s. Give IPv4 or IPv6 "
            "addresses or networks, e.g. 203.0.113.7, 2001:db8::7 or 198.51.100.0/24. Nothing was changed."
            % (variable, len(bad), "y" if len(bad) == 1 else "ies", "is" if len(bad) == 1 else "are",
               "; ".join(shown), more)
        )
    return result


def as_network(text):
    """The network of an address or CIDR string, or None for anything else (e.g. 'not-an-ip')."""
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


@functools.lru_cache(maxsize=1 << 18)
def address_span(text):
    """(IP version, first, last address as integers) of an address or network; None for anything else.

    Integers, computed once per address, because 100,000 addresses are compared against every
    allowlist entry and sorted, and parsing them is the slow part.
    """
    try:
        if "/" in text:
            network = ipaddress.ip_network(text, strict=False)
            return network.version, int(network.network_address), int(network.broadcast_address)
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    return address.version, int(address), int(address)


def sort_key(text):
    """Addresses in numeric order, IPv4 before IPv6, anything unparseable last."""
    span = address_span(text)
    if span is None:
        return (9, 0, 0, text)
    return span + (text,)


def sorted_addresses(addresses):
    return sorted(addresses, key=sort_key)


def is_network(text):
    """True for a normalised network of more than one address (normalise_address drops /32 and /128)."""
    return "/" in text


# --- allowlists ---------------------------------------------------------------------------------

def resolve_host_name(name):
    """The addresses a host name resolves to on this host (as fail2ban resolves ignoreip names)."""
    try:
        infos = socket.getaddrinfo(name, None)
    except (socket.gaierror, UnicodeError):
        return []
    return sorted(set(info[4][0].split("%")[0] for info in infos))


def protected_networks(ignoreip, host_addresses, resolve=resolve_host_name):
    """[(network, why)] that a ban must not cover, and warnings about entries that cannot be checked.

    ignoreip entries may be addresses, networks or host names; names are resolved here, on the
    host, as fail2ban does. host_addresses come from parse_host_addresses; loopback always counts.
    """
    protected = []
    warnings = []
    for entry in ignoreip:
        network = as_network(entry)
        if network is not None:
            protected.append((network, "the jail's ignoreip entry %s" % entry))
        elif HOST_NAME.match(entry):
            resolved = resolve(entry)
            if not resolved:
                warnings.append(
                    "ignoreip entry %r does not resolve on this host, so it protects nothing (for fail2ban "
                    "either)." % entry
                )
            for address in resolved:
                protected.append((ipaddress.ip_network(address), "the jail's ignoreip entry %s (%s)" % (entry, address)))
        else:
            warnings.append("ignoreip entry %r is not an address, network or host name: not checked." % entry)
    for network in LOOPBACK_NETWORKS:
        protected.append((ipaddress.ip_network(network), "loopback (%s)" % network))
    for address, interface in host_addresses:
        network = as_network(address)
        if network is not None:
            protected.append((network, "this host's own address %s on %s" % (address, interface)))
    return protected, warnings


def allowlist_conflicts(addresses, protected):
    """[(address, why)] for every address or network that overlaps a protected network."""
    guards = [((network.version, int(network.network_address), int(network.broadcast_address)), why)
              for network, why in protected]
    conflicts = []
    for address in addresses:
        span = address_span(address)
        if span is None:
            continue
        version, first, last = span
        for (guard_version, guard_first, guard_last), why in guards:
            if version == guard_version and first <= guard_last and last >= guard_first:
                conflicts.append((address, why))
                break
    return conflicts


# --- batches ------------------------------------------------------------------------------------

def batch_budget(arg_max=None, environ=None):
    """Bytes one fail2ban-client argv may take.

    Linux limits argv plus environment to ARG_MAX (a quarter of the stack limit, usually 2 MiB).
    Half of what the environment leaves, capped at 256 KiB, is far from that limit and still fits
    about 10,000 IPv4 or 5,000 IPv6 addresses in one call.
    """
    if arg_max is None:
        try:
            arg_max = os.sysconf("SC_ARG_MAX")
        except (ValueError, OSError, AttributeError):
            arg_max = 128 * 1024
    if environ is None:
        environ = os.environ
    environment = sum(len(key) + len(value) + 2 + 8 for key, value in environ.items())
    return max(BATCH_BUDGET_FLOOR, min((arg_max - environment) // 2, BATCH_BUDGET_CAP))


def _argv_bytes(arg):
    return len(arg.encode("utf-8")) + ARGV_ENTRY_OVERHEAD


def batches(addresses, prefix, budget):
    """Lists of addresses that, after the argv prefix, stay within budget bytes each."""
    base = sum(_argv_bytes(arg) for arg in prefix)
    batch = []
    size = base
    for address in addresses:
        cost = _argv_bytes(address)
        if batch and size + cost > budget:
            yield batch
            batch = []
            size = base
        batch.append(address)
        size += cost
    if batch:
        yield batch


# --- results ------------------------------------------------------------------------------------

def limited(items, limit):
    """(the first limit items, whether some were cut); limit 0 keeps them all."""
    if limit and len(items) > limit:
        return items[:limit], True
    return list(items), False


def ban_diff(jail, before, after, added, removed, limit):
    """Diff of the jail's banned addresses: full lists when short, else only what changed."""
    header = {"before_header": "%s: banned before" % jail, "after_header": "%s: banned after" % jail}
    if not limit or (len(before) <= limit and len(after) <= limit):
        header.update(before="".join(line + "\n" for line in before), after="".join(line + "\n" for line in after))
        return header
    note = "# %d addresses banned before and after, not listed\n" % (len(before) - len(removed))
    header.update(before=note + _listing(removed, limit), after=note + _listing(added, limit))
    return header


def _listing(addresses, limit):
    shown, cut = limited(sorted_addresses(addresses), limit)
    more = "# ... and %d more\n" % (len(addresses) - len(shown)) if cut else ""
    return "".join(line + "\n" for line in shown) + more


# --- the host -----------------------------------------------------------------------------------

def read_host_addresses(module):
    """[(address, interface)] of this host, read with `ip -j address show`."""
    path = module.get_bin_path("ip")
    if not path:
        raise Fail2banError(
            "The 'ip' command (iproute2) was not found: it is needed to protect this host's own addresses "
            "from a ban. Install iproute2, or set force: true to ban without that check."
        )
    cmd = [path, "-j", "address", "show"]
    rc, stdout, stderr = module.run_command(cmd, environ_update=ENVIRONMENT)
    if rc != 0:
        raise Fail2banError("Could not read this host's addresses with 'ip -j address show'.", cmd=cmd, rc=rc,
                            stdout=stdout, stderr=stderr)
    return parse_host_addresses(stdout)
