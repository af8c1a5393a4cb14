# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to floodguard.shield: parsers of what fail2ban-client prints.

Plain functions over the text, unit-tested on output captured from fail2ban 1.0 (Debian 12) and
1.1 (Debian 13) by tests/unit/plugins/module_utils/fixtures/capture_fail2ban.py. Not a public API.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ast
import re

from ansible_collections.floodguard.shield.plugins.module_utils._runner import ModuleFailure

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


class UnexpectedOutput(ModuleFailure):
    """fail2ban-client printed something the parser does not know: never guessed at."""

    def __init__(self, what, text):
        super(UnexpectedOutput, self).__init__("Unexpected output from fail2ban-client %s: %r" % (what, text[:500]),
                                               stdout=text)


def parse_version(stdout):
    """'1.0.2' from `fail2ban-client version` (the server's version)."""
    version = stdout.strip()
    if not re.match(r"^\d+(\.\d+)+\S*$", version):
        raise UnexpectedOutput("version", stdout)
    return version


def parse_jail_list(stdout):
    """Jail names from `fail2ban-client status`, in fail2ban's order."""
    for line in stdout.splitlines():
        match = STATUS_LINE.match(line)
        if match and match.group("key").strip() == "Jail list":
            return [name.strip() for name in match.group("value").split(",") if name.strip()]
    raise UnexpectedOutput("status", stdout)


def _int(value, what, stdout):
    try:
        return int(value.strip())
    except ValueError:
        raise UnexpectedOutput(what, stdout)


def parse_jail_status(stdout):
    """Counters, watched files or journal matches, and banned addresses from `status <jail>`."""
    fields = {}
    for line in stdout.splitlines():
        match = STATUS_LINE.match(line)
        if match:
            fields[match.group("key").strip()] = match.group("value").strip()
    required = ("Currently failed", "Total failed", "Currently banned", "Total banned", "Banned IP list")
    if not all(key in fields for key in required):
        raise UnexpectedOutput("status <jail>", stdout)
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
            raise UnexpectedOutput("get <jail> banip --with-time", stdout)
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
        raise UnexpectedOutput(what, stdout)


def parse_banned(stdout):
    """The addresses `get <jail> banned` prints as a Python list, in ban order."""
    text = stdout.strip()
    # Fast path (100,000 addresses: 0.1 s instead of 2 s for literal_eval): a list of plain quoted
    # strings, which is what fail2ban prints for addresses. Anything else goes to literal_eval.
    if BANNED_LIST.match(text):
        return QUOTED.findall(text)
    value = _literal(stdout, "get <jail> banned")
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise UnexpectedOutput("get <jail> banned", stdout)
    return value


def parse_banned_ip(stdout):
    """Per address asked, the jails that ban it, from `banned <ip> ...`."""
    value = _literal(stdout, "banned <ip>")
    if not isinstance(value, list) or not all(isinstance(item, list) for item in value):
        raise UnexpectedOutput("banned <ip>", stdout)
    return value


def _tree_items(stdout, empty_marker, what):
    lines = [line for line in stdout.splitlines() if line.strip()]
    if not lines:
        raise UnexpectedOutput(what, stdout)
    if lines[0].startswith(empty_marker):
        return []
    return [TREE_PREFIX.sub("", line).strip() for line in lines[1:]]


def parse_ignoreip(stdout):
    """The jail's ignoreip entries (addresses, networks, host names) from `get <jail> ignoreip`."""
    return _tree_items(stdout, "No IP address/network is ignored", "get <jail> ignoreip")


def parse_actions(stdout):
    """Action names from `get <jail> actions`: fail2ban's beautifier joins several with ', ' on one line."""
    return [name.strip() for line in _tree_items(stdout, "No actions for jail", "get <jail> actions")
            for name in line.split(",") if name.strip()]


def _action_listing(stdout, what):
    """Names from fail2ban's 'The jail J action A has the following <what>:' listing."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    if not lines or "has the following %s" % what not in lines[0]:
        raise UnexpectedOutput("get <jail> action%s <action>" % what, stdout)
    return [name.strip() for line in lines[1:] for name in line.split(",") if name.strip()]


def parse_action_properties(stdout):
    """Property names from `get <jail> actionproperties <action>`."""
    return _action_listing(stdout, "properties")


def parse_action_methods(stdout):
    """Method names from `get <jail> actionmethods <action>`."""
    return _action_listing(stdout, "methods")


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
