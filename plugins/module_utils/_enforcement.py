# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to floodguard.shield: does the ban back end hold every ban that fail2ban lists?

One reader per back end reads what it blocks for a jail, independently of fail2ban and of the
action's own watch (an alarm must not trust the thing it watches):

* nftables (action floodguard_nftables.py): the sets f2b-<name>-v4/-v6/-v4net/-v6net and the rules
  of chain f2b-<name> in table inet floodguard, from ``nft -j list table inet floodguard``;
* iptables (iptables-multiport, iptables-allports): the ``-s`` rules of chain f2b-<name> and the jump
  to it, from ``iptables-save -t filter`` and ``ip6tables-save -t filter``;
* nginx (action floodguard_nginx.py): NGINX's own list of the jail's bans, ``GET /list?jail=<name>``
  on the root-only management socket of the nginx_ratelimit role.

Commands are argv lists in the C locale; parsers are plain functions, tested on captured output.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import binascii
import ipaddress
import json
import socket

from ansible.module_utils.common.text.converters import to_text

from ansible_collections.floodguard.shield.plugins.module_utils._runner import run_argv

NFT_TABLE = ("inet", "floodguard")
SAMPLE_SIZE = 10
NGINX_TIMEOUT = 10
# fail2ban action name (as `get JAIL actions` lists it) -> back end.
BACKENDS = {
    "floodguard_nftables": "nftables",
    "iptables-multiport": "iptables",
    "iptables-allports": "iptables",
    "floodguard_nginx": "nginx",
}
# Back end -> the action properties its reader needs (fail2ban-client get JAIL action NAME PROPERTY).
PROPERTIES = {
    "nftables": ("chain",),
    "iptables": ("name",),
    "nginx": ("ban_socket", "ban_list"),
}


class BackendState(object):
    """What a back end blocks: a set of normalised networks, or why it cannot say.

    family_problems: {IP version: problem} that matter only when the jail bans an address of that family
    (fail2ban's iptables actions create the ip6tables chain at the first IPv6 ban).
    """

    def __init__(self, blocked=None, problem="", family_problems=None):
        self.blocked = blocked or set()
        self.problem = problem
        self.family_problems = family_problems or {}


def network(text):
    """An address or network as fail2ban and the back ends print it, normalised (None if neither)."""
    try:
        found = ipaddress.ip_network(to_text(text).strip(), strict=False)
    except ValueError:
        return None
    if found.version == 6 and found.prefixlen == 128 and found.network_address.ipv4_mapped:
        return ipaddress.ip_network(found.network_address.ipv4_mapped)
    return found


def nft_element(element):
    """Text of one element of `nft -j list` output: '192.0.2.7', '10.0.0.0/8'."""
    if isinstance(element, dict) and "elem" in element:  # an element with a comment or timeout
        element = element["elem"].get("val")
    if isinstance(element, dict) and "prefix" in element:
        return "%s/%d" % (element["prefix"]["addr"], element["prefix"]["len"])
    return str(element)


def parse_nft_table(stdout):
    """{'sets': {name: [element texts]}, 'chains': {name}, 'references': {chain: {set names}}} from `nft -j list table`."""
    state = {"sets": {}, "chains": set(), "references": {}}
    for item in json.loads(stdout or "{}").get("nftables", []):
        if "set" in item:
            state["sets"][item["set"]["name"]] = [nft_element(element) for element in item["set"].get("elem", [])]
        elif "chain" in item:
            state["chains"].add(item["chain"]["name"])
        elif "rule" in item:
            references = state["references"].setdefault(item["rule"]["chain"], set())
            text = json.dumps(item["rule"].get("expr", []))
            references.update(part.split('"', 1)[0] for part in text.split('"@')[1:])
    return state


def nft_blocked(table, chain):
    """BackendState of a jail's chain in a parse_nft_table() result (None: the table is gone)."""
    if table is None:
        return BackendState(problem="table %s %s is missing" % NFT_TABLE)
    if chain not in table["chains"]:
        return BackendState(problem="chain %s is missing" % chain)
    sets = ["%s-%s" % (chain, suffix) for suffix in ("v4", "v6", "v4net", "v6net")]
    lost = [name for name in sets if name not in table["sets"]]
    if lost:
        return BackendState(problem="set %s is missing" % ", ".join(lost))
    unused = [name for name in sets if name not in table["references"].get(chain, set())]
    if unused:
        return BackendState(problem="chain %s has no rule for set %s" % (chain, ", ".join(unused)))
    blocked = set()
    for name in sets:
        blocked.update(found for found in (network(element) for element in table["sets"][name]) if found is not None)
    return BackendState(blocked=blocked)


def parse_iptables_save(stdout):
    """{'chains': {declared chain names}, 'rules': {chain: [rule argument lists]}} from iptables-save."""
    state = {"chains": set(), "rules": {}}
    for line in stdout.splitlines():
        if line.startswith(":"):
            state["chains"].add(line[1:].split()[0])
        elif line.startswith("-A "):
            parts = line.split()
            state["rules"].setdefault(parts[1], []).append(parts[2:])
    return state


def iptables_blocked(saves, chain):
    """BackendState of a jail's chain in the parse_iptables_save() results of IPv4 and IPv6."""
    blocked = set()
    family_problems = {}
    for family, save in sorted(saves.items()):
        if chain not in save["chains"]:
            family_problems[family] = "chain %s is missing (IPv%d)" % (chain, family)
            continue
        if not any(rule[-2:] == ["-j", chain] for rules in save["rules"].values() for rule in rules):
            family_problems[family] = "no rule jumps to chain %s (IPv%d)" % (chain, family)
            continue
        for rule in save["rules"].get(chain, []):
            if "-s" in rule[:-1] and "RETURN" not in rule:
                found = network(rule[rule.index("-s") + 1])
                if found is not None:
                    blocked.add(found)
    return BackendState(blocked=blocked, family_problems=family_problems)


def parse_nginx_list(body):
    """The networks of NGINX's `GET /list?jail=NAME`: one 'hex of the packed network/prefix length' a line."""
    blocked = set()
    for line in body.splitlines():
        packed, _slash, length = line.strip().partition("/")
        try:
            address = ipaddress.ip_address(binascii.unhexlify(packed))
            blocked.add(ipaddress.ip_network("%s/%s" % (address, int(length)), strict=False))
        except (ValueError, TypeError, binascii.Error):
            continue
    return blocked


def http_over_unix_socket(path, request_path, timeout=NGINX_TIMEOUT):
    """(status, body) of a GET on a unix socket (HTTP/1.0: NGINX closes when done)."""
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection.settimeout(timeout)
    try:
        connection.connect(path)
        connection.sendall(("GET %s HTTP/1.0\r\nHost: floodguard-ban\r\n\r\n" % request_path).encode("ascii"))
        chunks = []
        while True:
            chunk = connection.recv(1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        connection.close()
    head, _blank, body = b"".join(chunks).partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].split()
    return int(status_line[1]) if len(status_line) > 1 else 0, to_text(body)


def compare(banned, state, sample_size=SAMPLE_SIZE):
    """The enforcement report of a jail: its banned addresses against what the back end blocks."""
    networks = [(text, network(text)) for text in banned]
    families = set(found.version for _text, found in networks if found is not None)
    problem = state.problem or "; ".join(why for family, why in sorted(state.family_problems.items()) if family in families)
    if problem:
        missing = list(banned)
    else:
        missing = [text for text, found in networks if found not in state.blocked]
    return {
        "enforced": not missing and not problem,
        "missing": len(missing),
        "missing_sample": missing[:sample_size],
        "problem": problem or ("%d of %d bans are not enforced" % (len(missing), len(banned)) if missing else ""),
    }


class Enforcement(object):
    """Reads each back end once per module run and compares jails with it."""

    def __init__(self, module):
        self.module = module
        self._cache = {}

    def _run(self, argv):
        path = self.module.get_bin_path(argv[0])
        if not path:
            return None, "%s is not installed" % argv[0]
        rc, stdout, stderr = run_argv(self.module, [path] + argv[1:])
        if rc != 0:
            return None, "%s failed (rc=%d): %s" % (" ".join(argv), rc, stderr.strip())
        return stdout, ""

    def _nft_table(self):
        if "nft" not in self._cache:
            stdout, error = self._run(["nft", "-j", "list", "table"] + list(NFT_TABLE))
            self._cache["nft"] = (parse_nft_table(stdout) if stdout is not None else None,
                                  "" if "No such file or directory" in error else error)
        return self._cache["nft"]

    def _iptables_saves(self):
        if "iptables" not in self._cache:
            saves = {}
            error = ""
            for family, program in ((4, "iptables-save"), (6, "ip6tables-save")):
                stdout, error = self._run([program, "-t", "filter"])
                if stdout is None:
                    break
                saves[family] = parse_iptables_save(stdout)
            self._cache["iptables"] = (saves, error)
        return self._cache["iptables"]

    def read_nftables(self, chain):
        table, error = self._nft_table()
        return BackendState(problem="cannot read nftables: %s" % error) if error else nft_blocked(table, chain.strip())

    def read_iptables(self, name):
        saves, error = self._iptables_saves()
        return BackendState(problem="cannot read iptables: %s" % error) if error else iptables_blocked(saves, "f2b-" + name.strip())

    def read_nginx(self, ban_socket, ban_list):
        try:
            status, body = http_over_unix_socket(ban_socket.strip(), "/list?jail=%s" % ban_list.strip())
        except (OSError, socket.error) as exc:
            return BackendState(problem="cannot read NGINX's ban list on %s: %s (is NGINX running?)" % (ban_socket.strip(), exc))
        if status != 200:
            return BackendState(problem="NGINX's ban socket answered HTTP %d: %s" % (status, body.strip()))
        return BackendState(blocked=parse_nginx_list(body))

    READERS = {"nftables": "read_nftables", "iptables": "read_iptables", "nginx": "read_nginx"}

    def jail_report(self, client, jail, banned):
        """Report of one jail, with its actions and their properties read through fail2ban-client."""
        return self.jail(client.actions(jail), lambda action, name: client.run("get", jail, "action", action, name), banned)

    def jail(self, actions, action_property, banned):
        """Report of one jail. actions: its action names; action_property(action, name): a property's value."""
        reports = {}
        for action in actions:
            backend = BACKENDS.get(action)
            if backend is None:
                continue
            values = [action_property(action, name) for name in PROPERTIES[backend]]
            report = compare(banned, getattr(self, self.READERS[backend])(*values))
            report["backend"] = backend
            reports[action] = report
        if not reports:
            return {"enforced": None, "backend": None, "missing": 0, "missing_sample": [],
                    "problem": "no ban action floodguard can read (%s)" % (", ".join(actions) or "no actions")}
        # The first action that does not enforce speaks for the jail.
        failing = [report for _name, report in sorted(reports.items()) if not report["enforced"]]
        return failing[0] if failing else sorted(reports.items())[0][1]
