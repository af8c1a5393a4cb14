# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Keeps a jail's bans in the firewall when something else rewrites the firewall.

A restart or reload of nftables.service, ``nft flush ruleset``, ``iptables -F`` or an
``iptables-restore`` of a base ruleset silently removes fail2ban's chains and bans, while fail2ban
keeps listing them. fail2ban's own repair (an action's ``consistencyCheck``, run only when an
address it already banned is caught again, and only against the iptables jump rule) misses a
flushed chain and never repairs a jail without new failures, such as the manual one.

How a change is noticed: every nftables commit, by any process, ends with a netlink NEWGEN message
to the multicast group NFNLGRP_NFTABLES, which names the committing process. A thread blocked on
that socket costs nothing while the firewall is untouched; a commit by another process (iptables on
Debian is iptables-nft, so its flushes and restores are nftables commits too) triggers one check of
the jail, coalesced over ``settle`` seconds. Without the socket (no CAP_NET_ADMIN, legacy iptables)
the check runs every ``interval`` seconds instead.

This file is used in two ways:

* ``NftablesHeal``, started by floodguard_nftables.py for each jail: a ``CommitWatch`` whose check
  compares the jail's chain and sets with the bans fail2ban holds and calls the action's repair;
* as the fail2ban action ``floodguard_watch.py[name=<jail>]`` next to iptables-multiport or
  iptables-allports: it compares ``iptables-save``/``ip6tables-save`` with the bans fail2ban holds
  and restores what is missing through the jail's own ban actions.
"""

import ast
import ipaddress
import json
import os
import re
import select
import socket
import sqlite3
import struct
import subprocess
import sys
import threading
import time

try:
    from fail2ban.server.actions import ActionBase
except ImportError:  # loaded by floodguard_nftables.py's --check-config outside fail2ban, or by tests
    ActionBase = object

NETLINK_NETFILTER = 12
NFNLGRP_NFTABLES = 7
SOL_NETLINK = 270
NETLINK_ADD_MEMBERSHIP = 1
SO_RCVBUFFORCE = 33
NFT_MSG_NEWGEN = (10 << 8) | 15  # NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWGEN
NFTA_GEN_PROC_PID = 2
NFTA_GEN_PROC_NAME = 3
NLMSG_HEADER = struct.Struct("=IHHII")
NLA_HEADER = struct.Struct("=HH")
NFGENMSG_SIZE = 4


def commits_in(data):
    """[(pid, process name)] of the NEWGEN messages (one per committed transaction) in a netlink read."""
    commits = []
    offset = 0
    while offset + NLMSG_HEADER.size <= len(data):
        length, kind = NLMSG_HEADER.unpack_from(data, offset)[:2]
        if length < NLMSG_HEADER.size:
            break
        if kind == NFT_MSG_NEWGEN:
            attributes = {}
            position = offset + NLMSG_HEADER.size + NFGENMSG_SIZE
            while position + NLA_HEADER.size <= offset + length:
                attribute_length, attribute_type = NLA_HEADER.unpack_from(data, position)
                if attribute_length < NLA_HEADER.size:
                    break
                attributes[attribute_type & 0x3fff] = data[position + NLA_HEADER.size:position + attribute_length]
                position += (attribute_length + 3) & ~3
            pid = attributes.get(NFTA_GEN_PROC_PID, b"")
            name = attributes.get(NFTA_GEN_PROC_NAME, b"")
            commits.append((struct.unpack(">I", pid)[0] if len(pid) == 4 else 0,
                            name.split(b"\0", 1)[0].decode("ascii", "replace")))
        offset += (length + 3) & ~3
    return commits


def own_thread_names():
    """Process names of this process's threads, as the kernel reports them in a commit.

    The kernel names the committing thread by its pid in the initial pid namespace, which a
    process in a container does not know; its name (comm) is the same in every namespace.
    """
    names = set()
    try:
        for task in os.listdir("/proc/self/task"):
            with open("/proc/self/task/%s/comm" % task, encoding="ascii", errors="replace") as comm:
                names.add(comm.read().strip())
    except OSError:
        pass
    return names


def external(commits):
    """The commits not made by a thread of this process."""
    if not commits:
        return commits
    own = own_thread_names()
    return [(pid, name) for pid, name in commits if name not in own]


class CommitWatch:
    """Calls check(cause) after nftables commits of other processes, or every interval seconds.

    An idle watch on events costs nothing: its thread sleeps in select() until the kernel sends a commit.

    check returns True when the firewall is as it should be; a False result is retried every
    interval seconds until it succeeds, so a repair that failed is not forgotten.
    """

    def __init__(self, check, name, logger, interval=5.0, settle=0.25, events=True):
        self._check = check
        self._name = name
        self._log = logger
        self._interval = interval
        self._settle = settle
        self._stopping = threading.Event()
        self._socket = None
        self._thread = None
        self._wake = None  # a pipe that stop() writes to, to end a wait on the socket at once
        # False: check every interval seconds only, for a back end whose changes are no nftables commits
        # (the NGINX ban list).
        self._events = events

    def start(self):
        try:
            self._socket = self._open() if self._events else None
        except OSError as error:
            self._socket = None
            self._log.warning("%s: cannot watch nftables commits (%s); checking every %s s instead",
                              self._name, error, self._interval)
        self._stopping.clear()
        self._wake = os.pipe()
        self._thread = threading.Thread(target=self._run, name="%s.watch" % self._name)
        self._thread.daemon = True
        self._thread.start()

    def stop(self):
        self._stopping.set()
        if self._wake is not None:
            os.write(self._wake[1], b"x")
        if self._thread is not None:
            self._thread.join(2 * self._interval + 1)
            self._thread = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        if self._wake is not None:
            for end in self._wake:
                os.close(end)
            self._wake = None

    def _receive(self, timeout):
        """The next netlink read, or None after timeout seconds or when stopped."""
        ready = select.select([self._socket, self._wake[0]], [], [], timeout)[0]
        if self._socket not in ready or self._stopping.is_set():
            return None
        return self._socket.recv(1 << 20)

    @staticmethod
    def _open():
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        try:
            sock.bind((0, 0))
            sock.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, NFNLGRP_NFTABLES)
            try:
                # Every set element change is an event too: room for a 100,000-address restore.
                sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 16 << 20)
            except OSError:
                pass
        except OSError:
            sock.close()
            raise
        return sock

    def _run(self):
        healthy = True
        while not self._stopping.is_set():
            cause = self._wait_for_change(healthy)
            if cause is None or self._stopping.is_set():
                continue
            try:
                healthy = bool(self._check(cause))
            except Exception as error:  # pylint: disable=broad-exception-caught  # the watch must survive
                self._log.error("%s: checking the firewall failed: %s", self._name, error)
                healthy = False

    def _wait_for_change(self, healthy):
        """The cause of the next check, or None on timeout while healthy."""
        if self._socket is None:
            self._stopping.wait(self._interval)
            return "periodic check"
        try:
            data = self._receive(self._interval)
        except OSError as error:  # ENOBUFS: events were lost, so look
            return "lost nftables events (%s)" % error.strerror
        if data is None:
            return None if healthy or self._stopping.is_set() else "retry"
        commits = external(commits_in(data))
        if not commits:
            return None
        # Let the rest of a reload (several commits in a row) arrive before looking once.
        deadline = time.monotonic() + self._settle
        while time.monotonic() < deadline:
            try:
                data = self._receive(max(deadline - time.monotonic(), 0.001))
            except OSError:
                break
            if data is None:
                break
            commits.extend(external(commits_in(data)))
        names = sorted(set("%s[%d]" % (name or "?", pid) for pid, name in commits))
        return "nftables changed by %s" % ", ".join(names[:5])


# nftables (floodguard_nftables.py)


NFT_TABLE = "inet floodguard"
# Addresses named in a heal's log line.
SAMPLE_SIZE = 5


def element_text(element):
    """An element of `nft -j list` output as floodguard_nftables.element_of() writes it: '192.0.2.7', '10.0.0.0/8'."""
    if isinstance(element, dict) and "elem" in element:  # an element with a comment or timeout
        element = element["elem"].get("val")
    if isinstance(element, dict) and "prefix" in element:
        return "%s/%d" % (element["prefix"]["addr"], element["prefix"]["len"])
    if isinstance(element, dict) and "range" in element:
        return "%s-%s" % tuple(element["range"])
    return str(element)


def table_state(listing):
    """{'sets': {name: set of elements}, 'chains': set of names, 'references': {chain: set of set names}}
    from `nft -j list table inet floodguard`."""
    state = {"sets": {}, "chains": set(), "references": {}}
    for item in (listing or {}).get("nftables", []):
        if "set" in item:
            state["sets"][item["set"]["name"]] = set(element_text(element) for element in item["set"].get("elem", []))
        elif "chain" in item:
            state["chains"].add(item["chain"]["name"])
        elif "rule" in item:
            found = re.findall(r'"@([^"]+)"', json.dumps(item["rule"].get("expr", [])))
            state["references"].setdefault(item["rule"]["chain"], set()).update(found)
    return state


def drift(settings, state, wanted):
    """(what is wrong, addresses missing) when the kernel does not hold what fail2ban lists; ('', []) if enforced.

    settings: the action's Settings (chain, sets); state: table_state(), or None when the table is
    gone; wanted: {(set key, element)}.
    """
    if state is None:
        return "table %s is gone" % NFT_TABLE, sorted(element for _key, element in wanted)
    problems = []
    if settings.chain not in state["chains"]:
        problems.append("chain %s is gone" % settings.chain)
    elif set(settings.sets.values()) - state["references"].get(settings.chain, set()):
        problems.append("chain %s lost its ban rules" % settings.chain)
    missing = []
    for key, set_name in sorted(settings.sets.items()):
        elements = [element for wanted_key, element in wanted if wanted_key == key]
        if set_name not in state["sets"]:
            problems.append("set %s is gone" % set_name)
            missing.extend(elements)
            continue
        lost = [element for element in elements if element not in state["sets"][set_name]]
        if lost:
            problems.append("%d of %d bans missing from set %s" % (len(lost), len(elements), set_name))
            missing.extend(lost)
    return "; ".join(problems), sorted(missing)


def read_nft_json(command, nftables_module=None):
    """(error text or '', parsed JSON) of one nft listing command, in-process when libnftables is there."""
    if nftables_module is not None:
        context = nftables_module.Nftables()
        context.set_json_output(True)
        rc, output, error = context.cmd(command)
    else:
        try:
            # One command as arguments: with -j, nft would read a file as JSON.
            done = subprocess.run(["nft", "-j"] + command.split(), capture_output=True, text=True,
                                  check=False, env=dict(os.environ, LC_ALL="C"))
        except OSError as error:
            return "cannot run nft: %s (install nftables)" % error, None
        rc, output, error = done.returncode, done.stdout, done.stderr
    if rc:
        return (error or "nft failed with status %d" % rc).strip(), None
    try:
        return "", json.loads(output or "{}")
    except ValueError as error:
        return "nft printed no JSON: %s" % error, None


class NftablesHeal:
    """The watch of one floodguard_nftables.py action: notices and repairs what another process removed.

    action gives: _settings (chain, sets), _apply_lock (held while it writes), _lock and _pending
    (bans recorded, not yet written), element_of, _jail, _logSys, and _repair(locked, flush_sets)
    that recreates chain and sets and loads every ban fail2ban holds.
    """

    def __init__(self, action, nftables_module=None):
        self._action = action
        self._nftables = nftables_module
        self._failing = ""  # the problem of a failed repair, logged once until it is healed
        self._watch = CommitWatch(self.heal, "[%s] %s" % (action._jail.name, action._name), action._logSys)  # pylint: disable=protected-access

    def start(self):
        self._watch.start()

    def stop(self):
        self._watch.stop()

    def drift(self):
        """(what is wrong, addresses missing): the kernel against the bans fail2ban holds."""
        action = self._action
        # Under the writers' lock: a batch taken from _pending but not yet written is in neither place.
        with action._apply_lock:  # pylint: disable=protected-access
            error, listing = read_nft_json("list table %s" % NFT_TABLE, self._nftables)
            with action._lock:  # pylint: disable=protected-access
                waiting = set(action._pending)  # pylint: disable=protected-access
            banned = action._jail.actions.banManager.getBanList()  # pylint: disable=protected-access
        if error and "No such file or directory" not in error:
            return "cannot read %s: %s" % (NFT_TABLE, error), []
        wanted = set()
        for ip in banned:
            target = action.element_of(ip)
            if target is not None and target not in waiting:
                wanted.add(target)
        return drift(action._settings, None if error else table_state(listing), wanted)  # pylint: disable=protected-access

    def settled_drift(self):
        """drift(), read a second time when only some elements seem missing.

        A listing taken while other processes commit can come back short, and a ban that fail2ban
        recorded a moment ago may not have reached the action yet: neither is drift.
        """
        problem, missing = self.drift()
        if missing and all("bans missing from set" in part for part in problem.split("; ")):
            time.sleep(0.2)
            problem, missing = self.drift()
        return problem, missing

    def heal(self, cause):
        """The watch's check: put back what another process removed; True when enforced."""
        action = self._action
        log, jail = action._logSys, action._jail.name  # pylint: disable=protected-access
        problem, missing = self.settled_drift()
        if not problem:
            if self._failing:
                log.warning("[%s] bans enforced again (%s)", jail, cause)
            self._failing = ""
            return True
        started = time.monotonic()
        # Keep the elements still there: a changed set must not go empty while it is refilled.
        action._repair(flush_sets=False, log=False)  # pylint: disable=protected-access
        error = action._repair_error  # pylint: disable=protected-access
        after, _missing = self.settled_drift()
        if after:
            if after != self._failing:
                log.error("[%s] bans not enforced (%s; %s) and the repair failed: %s%s", jail, problem, cause,
                          after, " (%s)" % " ".join(error.split()) if error else "")
            self._failing = after
            return False
        self._failing = ""
        log.warning("[%s] bans were not enforced (%s; %s): restored %d missing bans (e.g. %s) in %.2f s",
                    jail, problem, cause, len(missing), ", ".join(missing[:SAMPLE_SIZE]) or "none",
                    time.monotonic() - started)
        return True


# iptables (iptables-multiport, iptables-allports)


def rules_by_chain(save_output):
    """{chain: [rule arguments]} from iptables-save output (lines '-A CHAIN ...')."""
    chains = {}
    for line in save_output.splitlines():
        if line.startswith("-A "):
            parts = line.split()
            chains.setdefault(parts[1], []).append(parts[2:])
    return chains


def banned_sources(rules):
    """Addresses that '-s ADDR' rules of a chain block; /32 and /128 are written as plain addresses."""
    found = set()
    for rule in rules:
        if "-s" in rule and rule.index("-s") + 1 < len(rule) and "RETURN" not in rule:
            address = rule[rule.index("-s") + 1]
            if address.endswith("/32") or address.endswith("/128"):
                address = address.rsplit("/", 1)[0]
            found.add(address)
    return found


class IptablesWatch(ActionBase):
    """fail2ban action next to iptables-multiport/-allports: restores the chain and bans it loses."""

    # It bans nothing itself, so it never stands in the way of a network ban (floodguard.shield.fail2ban_ban).
    supports_networks = True

    def __init__(self, jail, action_name, name=None, interval="5", **_ignored):
        super().__init__(jail, action_name)
        self._chain = "f2b-%s" % (name or jail.name)
        self._watch = CommitWatch(self._check, "[%s] %s" % (jail.name, action_name), self._logSys,
                                  interval=float(interval), settle=0.5)
        self._failing = ""  # the problem of a failed repair, logged once until it is healed

    @property
    def enforced(self):
        """True when iptables holds every ban of the jail (fail2ban-client get JAIL action NAME enforced)."""
        return not self._drift()[0]

    def start(self):
        self._watch.start()

    def stop(self):
        self._watch.stop()

    def clearAllParams(self):  # pylint: disable=invalid-name  # fail2ban's name
        # With reload(), fail2ban keeps the action over `fail2ban-client reload`; without both it
        # removes the action from the jail, and the jail would go unwatched.
        return None

    def reload(self, name=None, interval="5", **_ignored):  # pylint: disable=unused-argument  # the interval stays
        self._chain = "f2b-%s" % (name or self._jail.name)

    def ban(self, aInfo):  # pylint: disable=invalid-name  # the other actions ban
        return None

    def unban(self, aInfo):  # pylint: disable=invalid-name
        return None

    def _firewall_actions(self):
        """The jail's command actions (iptables-multiport ...), which know how to ban."""
        actions = self._jail.actions
        # Command actions have actionban; the Python ones (NGINX, WAF) keep their own bans.
        return [actions[name] for name in list(actions) if actions[name] is not self and hasattr(actions[name], "actionban")]

    def _read(self):
        """({family: (chain and jump present, banned sources)}, error)"""
        state = {}
        for family, program in (("inet4", "iptables-save"), ("inet6", "ip6tables-save")):
            try:
                done = subprocess.run([program, "-t", "filter"], capture_output=True, text=True, check=False,
                                      env=dict(os.environ, LC_ALL="C"))
            except OSError as error:
                return None, "cannot run %s: %s" % (program, error)
            if done.returncode:
                return None, "%s failed: %s" % (program, done.stderr.strip())
            chains = rules_by_chain(done.stdout)
            jump = any(rule[-2:] == ["-j", self._chain] for rules in chains.values() for rule in rules)
            declared = (":%s " % self._chain) in done.stdout
            state[family] = (jump and declared, banned_sources(chains.get(self._chain, [])))
        return state, ""

    def _drift(self):
        """(what is wrong, tickets missing from the firewall); '' when every ban is enforced."""
        state, error = self._read()
        if error:
            return error, []
        tickets = list(self._jail.actions.banManager)
        problems = []
        missing = []
        for ticket in tickets:
            family = "inet6" if ":" in str(ticket.getID()) else "inet4"
            if str(ticket.getID()) not in state[family][1]:
                missing.append(ticket)
        for family, (chained, _sources) in sorted(state.items()):
            if not chained and any(("inet6" if ":" in str(ticket.getID()) else "inet4") == family for ticket in tickets):
                problems.append("chain %s or its jump is gone (%s)" % (self._chain, family))
        if missing:
            problems.append("%d of %d bans missing from chain %s" % (len(missing), len(tickets), self._chain))
        return "; ".join(problems), missing

    def _check(self, cause):
        problem, missing = self._drift()
        if not problem:
            if self._failing:
                self._logSys.warning("[%s] bans enforced again (%s)", self._jail.name, cause)
            self._failing = ""
            return True
        if all("missing from chain" in part for part in problem.split("; ")):
            # fail2ban lists a ban a moment before its iptables command has run, and a second rule for
            # an address would outlive its unban: ban again only what stays missing while fail2ban
            # bans nothing new. Bans in progress commit again, and that commit brings the next look.
            total = self._jail.actions.banManager.getBanTotal()
            time.sleep(1)
            problem, later = self._drift()
            if not problem or self._jail.actions.banManager.getBanTotal() != total:
                return True
            again = set(id(ticket) for ticket in later)
            missing = [ticket for ticket in missing if id(ticket) in again]
        started = time.monotonic()
        actions = self._firewall_actions()
        for action in actions:
            action.consistencyCheck()  # runs actioncheck; a missing chain or jump is recreated (actionstart)
        for ticket in missing:
            info = self._jail.actions._getActionInfo(ticket)  # pylint: disable=protected-access  # fail2ban's own ActionInfo
            for action in actions:
                try:
                    action.reban(info)
                except Exception as error:  # pylint: disable=broad-exception-caught  # one address must not stop the rest
                    self._logSys.error("[%s] cannot ban %s again: %s", self._jail.name, ticket.getID(), error)
        still, _missing = self._drift()
        if still:
            if still != self._failing:
                self._logSys.error("[%s] bans not enforced (%s; %s) and the repair failed: %s", self._jail.name, problem, cause, still)
            self._failing = still
            return False
        self._failing = ""
        self._logSys.warning("[%s] bans were not enforced (%s; %s): restored %d bans in %.2f s",
                             self._jail.name, problem, cause, len(missing), time.monotonic() - started)
        return True


Action = IptablesWatch


# At boot: fail2ban.service counts as started only once its restored bans are in the firewall


DATABASE = "/var/lib/fail2ban/fail2ban.sqlite3"
# Action -> the property that is True once its restored bans are enforced. NGINX starts after fail2ban
# and loads the bans from the action's state file, so that file must hold them all.
OWN_ACTIONS = {"floodguard_nftables": "enforced", "floodguard_watch": "enforced", "floodguard_nginx": "saved"}
# Seconds a configured jail may stay missing from a stable jail list before the others go on.
JAIL_START_GRACE = 5


def client(*argv):
    """(rc, stdout) of fail2ban-client."""
    done = subprocess.run(["fail2ban-client"] + list(argv), capture_output=True, text=True, check=False,
                          env=dict(os.environ, LC_ALL="C"))
    return done.returncode, done.stdout.strip()


def listed(stdout):
    """A Python list that fail2ban-client prints (get JAIL banned, get JAIL ignoreip), as strings."""
    try:
        value = ast.literal_eval(stdout)
    except (ValueError, SyntaxError):
        return []
    return [str(item) for item in value] if isinstance(value, (list, tuple)) else []


def tree_items(stdout):
    """The items of a list fail2ban-client prints as a tree (get JAIL ignoreip): '|- 127.0.0.1/8'."""
    return [line.lstrip("|`- \t") for line in stdout.splitlines()[1:] if line.lstrip("|`- \t")]


def jail_list(stdout):
    for line in stdout.splitlines():
        if "Jail list:" in line:
            return [name.strip() for name in line.split(":", 1)[1].split(",") if name.strip()]
    return []


def unexpired_bans(database, now):
    """{jail: {address}} of the bans fail2ban restores at start (its table bips).

    Raises sqlite3.Error when the database cannot be read now (fail2ban writes it while it starts).
    """
    found = {}
    if not os.path.exists(database):
        return found
    connection = sqlite3.connect("file:%s?mode=ro" % database, uri=True, timeout=5)
    try:
        rows = connection.execute("SELECT jail, ip FROM bips WHERE bantime < 0 OR timeofban + bantime > ?", (now,)).fetchall()
    finally:
        connection.close()
    for jail, ip in rows:
        found.setdefault(str(jail), set()).add(str(ip))
    return found


def restorable_bans(database, jail_name, now, forbantime=None, max_bantime=None):
    """The addresses of the jail's bans that fail2ban restores at start, in the database's order.

    The selection of fail2ban's Jail.restoreCurrentBans: the query of Fail2BanDb._getCurrentBans
    (forbantime: the jail's bantime unless bantime.increment is on) and getCurrentBans's correction of
    each ban's time to the jail's maximum (max_bantime; None: no maximum). The jail's ignoreip is the
    caller's. Raises sqlite3.Error when the database cannot be read.
    """
    query = "SELECT ip, timeofban, bantime FROM bips WHERE jail = ? AND (timeofban + bantime > ? OR bantime <= -1)"
    arguments = [jail_name, now]
    if forbantime not in (None, -1):
        query += " AND timeofban > ?"
        arguments.append(now - forbantime)
    connection = sqlite3.connect("file:%s?mode=ro" % database, uri=True, timeout=5)
    try:
        rows = connection.execute(query, arguments).fetchall()
    finally:
        connection.close()
    found = []
    for ip, timeofban, bantime in rows:
        if bantime == -2:  # written by a fail2ban older than 0.11: the jail's bantime
            bantime = forbantime if forbantime is not None else -1
        elif max_bantime is not None and max_bantime >= 0 and (bantime == -1 or bantime > max_bantime):
            bantime = max_bantime
        if bantime == -1 or timeofban + bantime > now:
            found.append(str(ip))
    return found


def ignored(address, ignoreip):
    """True when fail2ban will not restore address: its jail's ignoreip covers it."""
    try:
        target = ipaddress.ip_network(address, strict=False)
    except ValueError:
        return False
    for entry in ignoreip:
        try:
            network = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            continue
        if network.version == target.version and target.subnet_of(network):
            return True
    return False


def restore_pending(jail, restored):
    """What jail still lacks: restored bans fail2ban does not list yet, or its firewall not enforcing them."""
    rc, actions = client("get", jail, "actions")
    if rc:
        return "jail not answering"
    rc, banned = client("get", jail, "banned")
    rc_ignore, ignoreip = client("get", jail, "ignoreip")
    ignore = tree_items(ignoreip) if not rc_ignore else []
    waiting = [ip for ip in restored - set(listed(banned)) if not ignored(ip, ignore)]
    if waiting:
        return "%d restored bans not listed yet" % len(waiting)
    for action, prop in sorted(OWN_ACTIONS.items()):
        if action in actions:
            rc, value = client("get", jail, "action", action, prop)
            if rc or value != "True":
                return "action %s: %s is not true yet" % (action, prop)
    return ""


def save_restored(path, database=DATABASE):
    """ExecStartPre: note the bans fail2ban is about to restore, read before fail2ban opens its database."""
    try:
        bans = unexpired_bans(database, time.time())
    except sqlite3.Error as error:
        sys.stderr.write("floodguard: cannot read %s (%s); the boot wait reads it once fail2ban runs\n" % (database, error))
        return
    temporary = path + ".tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(dict((jail, sorted(ips)) for jail, ips in bans.items()), handle)
    os.replace(temporary, path)


def saved_restored(path):
    """The bans save_restored() noted, or None when it noted none."""
    try:
        with open(path, encoding="utf-8") as handle:
            return dict((jail, set(ips)) for jail, ips in json.load(handle).items())
    except (OSError, ValueError):
        return None


def wait_restored(timeout, database=DATABASE, pause=0.2, saved=None):
    """Return 0 once every running jail lists and enforces the bans it restored, 1 after timeout seconds."""
    deadline = time.monotonic() + timeout
    restored = saved_restored(saved) if saved else None
    configured = None
    problem = "fail2ban not answering"
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        if restored is None:
            try:
                restored = unexpired_bans(database, time.time())
            except sqlite3.Error as error:
                # A locked database is no empty one: read it again, never wait for nothing.
                problem = "cannot read %s yet: %s" % (database, error)
                time.sleep(pause)
                continue
        rc, status = client("status")
        if not rc:
            if configured is None:
                rc_dump, dump = client("--dump")
                configured = set(line.split("'")[3] for line in dump.splitlines()
                                 if line.startswith("['add', '")) if not rc_dump else set()
            running = jail_list(status)
            if running != last:
                last, since = running, time.monotonic()
            missing = configured - set(running)
            # A jail that cannot start (fail2ban logs why) must not hold up the others for long.
            if missing and time.monotonic() - since < JAIL_START_GRACE:
                problem = "jails not started yet: %s" % ", ".join(sorted(missing))
            else:
                problems = ["%s: %s" % (jail, why) for jail, why in
                            ((jail, restore_pending(jail, restored.get(jail, set()))) for jail in running) if why]
                if not problems:
                    sys.stdout.write("floodguard: every jail enforces its %d restored bans\n" % sum(map(len, restored.values())))
                    return 0
                problem = "; ".join(problems)
        time.sleep(pause)
    sys.stderr.write("floodguard: fail2ban did not enforce its restored bans within %s s (%s); going on\n" % (timeout, problem))
    return 1


def main(argv):
    """python3 floodguard_watch.py --save-restored FILE              (ExecStartPre of fail2ban.service)
    python3 floodguard_watch.py --wait-restored SECONDS [FILE]    (ExecStartPost)"""
    if len(argv) == 2 and argv[0] == "--save-restored":
        save_restored(argv[1])
        return 0
    if len(argv) in (2, 3) and argv[0] == "--wait-restored":
        wait_restored(float(argv[1]), saved=argv[2] if len(argv) == 3 else None)
        # Never fail the unit: fail2ban runs and keeps banning; the message above is in the journal.
        return 0
    sys.stderr.write("usage: floodguard_watch.py --save-restored FILE | --wait-restored SECONDS [FILE]\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
