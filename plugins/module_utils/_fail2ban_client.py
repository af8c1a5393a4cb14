# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to floodguard.shield: runs fail2ban-client and explains its failures.

The fail2ban_info and fail2ban_ban modules stay thin: every fail2ban-client command line lives
here, and what it prints goes to _fail2ban_parsers. Not a public API: it may change.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import tempfile

from ansible.module_utils.common.text.converters import to_text

from ansible_collections.floodguard.shield.plugins.module_utils._batches import batch_budget, batches
from ansible_collections.floodguard.shield.plugins.module_utils._fail2ban_parsers import (
    command_action_network_support,
    parse_action_methods,
    parse_action_properties,
    parse_actions,
    parse_banned,
    parse_banned_ip,
    parse_bans_with_time,
    parse_ignoreip,
    parse_jail_list,
    parse_jail_status,
    parse_version,
)
from ansible_collections.floodguard.shield.plugins.module_utils._runner import (
    ModuleFailure,
    find_command,
    run_argv,
    shorten_cmd,
)

CLIENT = "fail2ban-client"
NOT_INSTALLED = (
    "fail2ban-client was not found on this host: fail2ban is not installed. Install it "
    "(apt-get install fail2ban, or the floodguard.shield.fail2ban role) and start it."
)
HOW_TO_START = (
    "Start it with 'systemctl start fail2ban'; if it does not stay up, 'fail2ban-client -t' checks its "
    "configuration and 'journalctl -u fail2ban' shows why."
)


# From this many addresses on, a ban takes a bulk path of the jail's floodguard actions
# (roles/fail2ban/files/action.d/floodguard_batching.py). Where every action of the jail has the method
# BULK_METHOD and bantime.increment is off: one call that bans them all at once (tickets, database, firewall).
# Otherwise, where an action has the property BULK_PROPERTY: the banip batches run with its bulk window
# open, so that fail2ban writes one summary line per batch instead of one "Ban" line per address.
BULK_FROM = 1000
BULK_METHOD = "bulkban"
BULK_PROPERTY = "bulk_window"


def bulk_window_seconds(count):
    """How long the window stays open unless closed: ample for count bans, and closing by itself."""
    return min(600, 60 + count // 1000)


class Fail2banError(ModuleFailure):
    """fail2ban-client failed, or fail2ban's state refuses the request: msg, cmd, rc, stdout, stderr."""


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
    elif re.search(r"^%s refused: " % BULK_METHOD, stdout, re.M):
        reason = re.search(r"^%s refused: (.*)$" % BULK_METHOD, stdout, re.M).group(1).strip()
        msg = "fail2ban refused the bulk ban: %s. Nothing was changed." % reason
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
        self.path = find_command(module, CLIENT, NOT_INSTALLED, error=Fail2banError)

    def run(self, *args):
        # fail2ban-client waits on the server's socket with no timeout of its own, so a big batch on
        # a slow action (the stock nftables action runs one nft process per address) takes its time.
        cmd = [self.path] + [to_text(arg) for arg in args]
        rc, stdout, stderr = run_argv(self.module, cmd)
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

    def increments_ban_time(self, jail):
        return self.run("get", jail, "bantime.increment").strip().lower() in ("true", "1")

    def bulk_ban_action(self, jail, actions):
        """The action whose BULK_METHOD bans for the whole jail at once, or None where it cannot.

        It can where the jail has actions, every one of them has the method (floodguard's batching
        actions, which take a ban without running anything per address) and bantime.increment is off.
        """
        if not actions:
            return None
        for action in actions:
            if BULK_METHOD not in parse_action_methods(self.run("get", jail, "actionmethods", action)):
                return None
        if self.increments_ban_time(jail):
            return None
        return actions[0]

    def bulk_window_action(self, jail, actions):
        """The first of the jail's actions that has a bulk window (BULK_PROPERTY), or None."""
        for action in actions:
            if BULK_PROPERTY in parse_action_properties(self.run("get", jail, "actionproperties", action)):
                return action
        return None

    def set_bulk_window(self, jail, action, seconds):
        self.run("set", jail, "action", action, BULK_PROPERTY, "%d" % seconds)

    def bulk_ban(self, jail, action, addresses):
        """One call of the action's BULK_METHOD with the addresses in a file that only this user may write."""
        handle, path = tempfile.mkstemp(prefix="floodguard-bulk-", suffix=".txt", dir=self.module.tmpdir)
        try:
            with os.fdopen(handle, "w") as addresses_file:
                addresses_file.write("\n".join(addresses) + "\n")
            self.run("set", jail, "action", action, BULK_METHOD, json.dumps({"path": path}))
        finally:
            os.unlink(path)

    def change(self, jail, verb, addresses):
        """Ban (verb banip) or unban (unbanip) addresses: (fail2ban-client calls, True if the bulk path took them).

        A ban of BULK_FROM addresses or more takes the jail's bulk path (bulk_ban_action) in one call, or
        else opens the jail's bulk window for the banip batches and closes it after them, failed or not.
        """
        if verb != "banip" or len(addresses) < BULK_FROM:
            return self._change(jail, verb, addresses), False
        actions = self.actions(jail)
        bulk = self.bulk_ban_action(jail, actions)
        if bulk is not None:
            self.bulk_ban(jail, bulk, addresses)
            return 1, True
        window = self.bulk_window_action(jail, actions)
        if window is None:
            return self._change(jail, verb, addresses), False
        self.set_bulk_window(jail, window, bulk_window_seconds(len(addresses)))
        try:
            return self._change(jail, verb, addresses), False
        finally:
            self.set_bulk_window(jail, window, 0)

    def _change(self, jail, verb, addresses):
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
