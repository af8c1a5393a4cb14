# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the floodguard.shield.fail2ban role: check its input and normalise its jails.

The checks return lists of problems (never raise) so that the role can report every mistake at once,
naming the variable and the fix, before it writes anything. Only ansible-core and the standard library;
addresses follow the modules' rules (module_utils/_addresses.py).
"""

from __future__ import annotations

import json
import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean
from ansible_collections.floodguard.shield.plugins.module_utils._ports import PortError, port_range

from ansible_collections.floodguard.shield.plugins.module_utils._addresses import network_problem

# fail2ban's own time abbreviations (MyTime.str2seconds), the subset that reads unambiguously.
DURATION = re.compile(r"^\s*(?:\d+(?:\.\d+)?\s*(?:w|d|h|m|s)\s*)+$")
DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(w|d|h|m|s)")
UNIT_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
# iptables chain names hold at most 28 characters and fail2ban prefixes "f2b-".
JAIL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,23}$")
FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
FILTER_REFERENCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(\[[^\n]*\])?$")
OPTION_NAME = re.compile(r"^[a-z][a-z0-9_.]*$")
BACKENDS = ("auto", "polling", "pyinotify", "systemd")
PROTOCOLS = ("tcp", "udp")
# Firewall back ends the role writes ban actions for (fail2ban_banaction, or a jail's action naming one).
BAN_BACKENDS = ("nftables", "iptables-multiport")
BLOCKTYPES = ("drop", "reject")
# Where the role's jails ban: the host firewall, and NGINX (behind a load balancer; the nginx_ratelimit role).
BAN_BACKEND_KINDS = ("firewall", "nginx")
JAIL_KEYS = (
    "name", "enabled", "filter", "logpath", "backend", "journalmatch", "findtime", "maxretry",
    "bantime", "ports", "protocol", "action", "options",
)
# Options the role writes itself from the jail's keys: set them through those keys.
MANAGED_OPTIONS = (
    "enabled", "filter", "logpath", "backend", "journalmatch", "findtime", "maxretry", "bantime",
    "port", "protocol", "action", "banaction", "banaction_allports", "ignoreip", "ignoreself",
)
RESERVED_SECTIONS = ("default", "includes", "definition", "init", "sshd", "recidive")
# Files the role writes itself under filter.d/ and action.d/ (<name>.local).
RESERVED_FILES = {"filter": ("floodguard-manual",), "action": ("iptables",)}


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _whole_number(value):
    """value as an int when it is one (or a string of digits, as -e gives), else None."""
    if _is_int(value):
        return value
    if isinstance(value, str) and re.match(r"^\s*\d+\s*$", value):
        return int(value)
    return None


def _duration_seconds(value):
    """Seconds in a fail2ban duration (int or e.g. "10m", "1h30m", "30d"); -1 means forever; None if invalid."""
    if _is_int(value):
        return value
    if isinstance(value, str):
        text = value.strip()
        if re.match(r"^-?\d+$", text):
            return int(text)
        if DURATION.match(text):
            return int(sum(float(number) * UNIT_SECONDS[unit] for number, unit in DURATION_PART.findall(text)))
    return None


def fail2ban_duration_problem(value, variable, allow_forever=False):
    """An explanation when value is not a positive fail2ban duration, else an empty string."""
    seconds = _duration_seconds(value)
    if seconds is not None and (seconds > 0 or (allow_forever and seconds == -1)):
        return ""
    forever = " or -1 to ban forever" if allow_forever else ""
    return "%s is %r: give a positive number of seconds or a duration such as 300, '10m', '1h30m', '30d'%s." % (
        variable, value, forever)


def fail2ban_seconds(value):
    """Seconds in a duration already checked by fail2ban_duration_problem."""
    seconds = _duration_seconds(value)
    if seconds is None:
        raise AnsibleFilterError("%r is not a fail2ban duration such as 300, '10m' or '30d'" % (value,))
    return seconds


def fail2ban_address_problems(addresses, variable):
    """Explanations for every entry of addresses that is not an IPv4/IPv6 address or CIDR network."""
    if not isinstance(addresses, list):
        return ["%s must be a list of IP addresses or CIDR networks, e.g. ['192.0.2.10', '198.51.100.0/24'], not %s." % (
            variable, type(addresses).__name__)]
    problems = []
    for entry in addresses:
        why = network_problem(entry.strip()) if isinstance(entry, str) else "not a string"
        if why:
            problems.append("%s holds %r, which is not an IP address or CIDR network (%s): write it like 192.0.2.10, "
                            "198.51.100.0/24 or 2001:db8::/32." % (variable, entry, why))
    return problems


def _single_line(value):
    return isinstance(value, str) and value.strip() != "" and "\n" not in value and "\r" not in value


def _port_problem(port):
    # Names are not looked up here: the host's /etc/services decides, when the ban action starts.
    try:
        if not (_is_int(port) or isinstance(port, str)):
            raise PortError("not a number or a string")
        port_range(port, lowest=1)
    except PortError:
        return "%r is not a port: give a number (8443), a range (8000:8080) or a service name from /etc/services (https)" % (port,)
    return ""


def _jail_problems(jail, where):
    problems = []
    name = jail.get("name")
    unknown = sorted(set(jail) - set(JAIL_KEYS))
    if unknown:
        problems.append("%s has unknown keys %s: the keys are %s." % (where, ", ".join(unknown), ", ".join(JAIL_KEYS)))
    if not isinstance(name, str) or not JAIL_NAME.match(name):
        problems.append("%s.name is %r: give 1 to 24 letters, digits, '.', '_' or '-' (no spaces or brackets), "
                        "starting with a letter or digit, e.g. nginx-req-limit." % (where, name))
    elif name.lower() in RESERVED_SECTIONS:
        problems.append("%s.name %r is reserved: the role manages it (fail2ban_sshd_enabled, fail2ban_recidive_enabled); "
                        "pick another name." % (where, name))
    if not isinstance(jail.get("enabled", True), bool):
        problems.append("%s.enabled is %r: give true or false." % (where, jail.get("enabled")))
    if "filter" in jail and not (isinstance(jail["filter"], str) and FILTER_REFERENCE.match(jail["filter"])):
        problems.append("%s.filter is %r: give a filter name from filter.d or fail2ban_filters, optionally with "
                        "parameters, e.g. nginx-limit-req or nginx-limit-req[ngx_limit_req_zones=\"api\"]." % (where, jail["filter"]))
    backend = jail.get("backend", "auto")
    if backend not in BACKENDS:
        problems.append("%s.backend is %r: give one of %s." % (where, backend, ", ".join(BACKENDS)))
    logpaths = jail.get("logpath")
    if logpaths is not None:
        logpaths = logpaths if isinstance(logpaths, list) else [logpaths]
        for path in logpaths:
            if not (_single_line(path) and path.startswith("/")):
                problems.append("%s.logpath holds %r: give absolute paths of log files, e.g. /var/log/nginx/error.log." % (where, path))
    elif backend != "systemd":
        problems.append("%s has no logpath: give the log file(s) to read, or set backend: systemd (with journalmatch) "
                        "to read the journal." % where)
    if "journalmatch" in jail and not _single_line(jail["journalmatch"]):
        problems.append("%s.journalmatch is %r: give one line such as '_SYSTEMD_UNIT=nginx.service'." % (where, jail["journalmatch"]))
    for key in ("findtime", "bantime"):
        if key in jail:
            problem = fail2ban_duration_problem(jail[key], "%s.%s" % (where, key), allow_forever=(key == "bantime"))
            if problem:
                problems.append(problem)
    if "maxretry" in jail and (_whole_number(jail["maxretry"]) or 0) < 1:
        problems.append("%s.maxretry is %r: give a whole number of matches of 1 or more." % (where, jail["maxretry"]))
    ports = jail.get("ports", ["http", "https"])
    if ports != "all":
        if not isinstance(ports, list) or not ports:
            problems.append("%s.ports is %r: give a list of ports, e.g. [http, https, 8443], or 'all'." % (where, ports))
        else:
            for port in ports:
                problem = _port_problem(port)
                if problem:
                    problems.append("%s.ports: %s." % (where, problem))
    if jail.get("protocol", "tcp") not in PROTOCOLS:
        problems.append("%s.protocol is %r: give tcp or udp." % (where, jail.get("protocol")))
    if "action" in jail:
        actions = jail["action"] if isinstance(jail["action"], list) else [jail["action"]]
        if not actions or not all(_single_line(action) for action in actions):
            problems.append("%s.action is %r: give %s (the role writes the jail's own set or chain), a fail2ban action "
                            "such as 'sendmail-whois[dest=ops@example.com]', or a list of them; leave it out to use "
                            "fail2ban_banaction." % (where, jail["action"], " or ".join(BAN_BACKENDS)))
    options = jail.get("options", {})
    if not isinstance(options, dict):
        problems.append("%s.options is %r: give a mapping of extra fail2ban jail options, e.g. {usedns: 'no'}." % (where, options))
    else:
        for key, value in options.items():
            if not (isinstance(key, str) and OPTION_NAME.match(key)) or key in MANAGED_OPTIONS:
                problems.append("%s.options has key %r: give lower-case fail2ban options other than %s (set those "
                                "through the jail's own keys, the allowlist through fail2ban_ignoreip)."
                                % (where, key, ", ".join(MANAGED_OPTIONS)))
            elif not (_is_int(value) or isinstance(value, (str, float, bool))) or "\n" in str(value):
                problems.append("%s.options.%s is %r: give a single-line value." % (where, key, value))
    return problems


def fail2ban_jail_problems(jails, variable="fail2ban_jails", other_names=()):
    """Explanations for everything wrong in a list of jail definitions; empty when they can be written."""
    if not isinstance(jails, list):
        return ["%s must be a list of jails (dicts with at least name and logpath), not %s." % (variable, type(jails).__name__)]
    problems = []
    seen = set(name.lower() for name in other_names)
    for index, jail in enumerate(jails):
        where = "%s[%d]" % (variable, index)
        if not isinstance(jail, dict):
            problems.append("%s is %r: give a dict with at least name and logpath." % (where, jail))
            continue
        if isinstance(jail.get("name"), str):
            where = "%s[%d] (%s)" % (variable, index, jail["name"])
            if jail["name"].lower() in seen:
                problems.append("%s: the name %r is used twice (jail names are also the names of the manual-ban jail "
                                "and of firewall sets): give every jail its own name." % (where, jail["name"]))
            seen.add(jail["name"].lower())
        problems.extend(_jail_problems(jail, where))
    return problems


def fail2ban_file_problems(files, variable, kind):
    """Explanations for everything wrong in fail2ban_filters / fail2ban_actions."""
    if not isinstance(files, list):
        return ["%s must be a list of dicts with name and content, not %s." % (variable, type(files).__name__)]
    problems = []
    for index, item in enumerate(files):
        where = "%s[%d]" % (variable, index)
        if not isinstance(item, dict):
            problems.append("%s is %r: give a dict with name and content." % (where, item))
            continue
        if not (isinstance(item.get("name"), str) and FILE_NAME.match(item["name"])) or str(item.get("name")).endswith((".conf", ".local")):
            problems.append("%s.name is %r: give the %s name without extension (letters, digits, '.', '_', '-'); the role "
                            "writes %s.d/<name>.local." % (where, item.get("name"), kind, kind))
        elif item["name"] in RESERVED_FILES.get(kind, ()):
            problems.append("%s.name %r is the role's own %s.d/%s.local: pick another name." % (where, item["name"], kind, item["name"]))
        state = item.get("state", "present")
        if state not in ("present", "absent"):
            problems.append("%s.state is %r: give present or absent." % (where, state))
        if state == "present" and not (isinstance(item.get("content"), str) and "[Definition]" in item["content"]):
            problems.append("%s.content must be the text of a fail2ban %s file with a [Definition] section." % (where, kind))
    return problems


def fail2ban_problems(settings):
    """Every problem in the role's variables (a dict of them, named as in defaults/main.yml); empty when valid.

    Runs on the controller before the role touches the host, so that bad input changes nothing.
    """
    problems = []
    banaction = settings.get("fail2ban_banaction")
    if banaction not in BAN_BACKENDS:
        problems.append("fail2ban_banaction is %r: give %s." % (banaction, " or ".join(BAN_BACKENDS)))
    blocktype = settings.get("fail2ban_blocktype")
    if blocktype not in BLOCKTYPES:
        problems.append("fail2ban_blocktype is %r: give drop (floods get no answer) or reject." % (blocktype,))
    problems.extend(fail2ban_address_problems(settings.get("fail2ban_ignoreip"), "fail2ban_ignoreip"))

    manual_enabled = settings.get("fail2ban_manual_jail_enabled")
    manual_name = settings.get("fail2ban_manual_jail_name")
    other_names = []
    for variable in ("fail2ban_manual_jail_enabled", "fail2ban_bantime_increment", "fail2ban_recidive_enabled",
                     "fail2ban_sshd_enabled"):
        if not isinstance(settings.get(variable), bool):
            problems.append("%s is %r: give true or false." % (variable, settings.get(variable)))
    if manual_enabled is True:
        if not (isinstance(manual_name, str) and JAIL_NAME.match(manual_name)):
            problems.append("fail2ban_manual_jail_name is %r: give 1 to 24 letters, digits, '.', '_' or '-' (no spaces or "
                            "brackets), e.g. manual." % (manual_name,))
        elif manual_name.lower() in RESERVED_SECTIONS:
            problems.append("fail2ban_manual_jail_name %r is reserved by fail2ban or the role: pick another name, "
                            "e.g. manual." % (manual_name,))
        else:
            other_names.append(manual_name)
        problem = fail2ban_duration_problem(settings.get("fail2ban_manual_bantime"), "fail2ban_manual_bantime",
                                            allow_forever=True)
        if problem:
            problems.append(problem)
    problems.extend(fail2ban_jail_problems(settings.get("fail2ban_jails"), "fail2ban_jails", other_names))

    if settings.get("fail2ban_bantime_increment") is True:
        factor = settings.get("fail2ban_bantime_factor")
        try:
            factor_ok = not isinstance(factor, bool) and float(factor) > 0
        except (TypeError, ValueError):
            factor_ok = False
        if not factor_ok:
            problems.append("fail2ban_bantime_factor is %r: give a positive number, e.g. 1 or 2." % (factor,))
        problem = fail2ban_duration_problem(settings.get("fail2ban_bantime_maxtime"), "fail2ban_bantime_maxtime")
        if problem:
            problems.append(problem)
    if settings.get("fail2ban_recidive_enabled") is True:
        for variable, forever in (("fail2ban_recidive_findtime", False), ("fail2ban_recidive_bantime", True)):
            problem = fail2ban_duration_problem(settings.get(variable), variable, allow_forever=forever)
            if problem:
                problems.append(problem)
        maxretry = _whole_number(settings.get("fail2ban_recidive_maxretry"))
        if maxretry is None or maxretry < 1:
            problems.append("fail2ban_recidive_maxretry is %r: give a whole number of bans of 1 or more."
                            % (settings.get("fail2ban_recidive_maxretry"),))
    dbpurgeage = settings.get("fail2ban_dbpurgeage")
    if dbpurgeage not in ("", None):
        problem = fail2ban_duration_problem(dbpurgeage, "fail2ban_dbpurgeage")
        if problem:
            problems.append(problem + " Leave it empty to keep bans as long as the longest ban time.")
    problems.extend(fail2ban_file_problems(settings.get("fail2ban_filters"), "fail2ban_filters", "filter"))
    problems.extend(fail2ban_file_problems(settings.get("fail2ban_actions"), "fail2ban_actions", "action"))
    problems.extend(_ban_backend_problems(settings))
    problems.extend(_escalation_problems(settings))
    return problems


# Prefix escalation (fail2ban_escalation_*): variable -> (lowest, highest, what it is). The same bounds as the
# action's own check in roles/fail2ban/files/action.d/floodguard_escalate.py, which runs on the host.
ESCALATION_SETTINGS = (
    ("fail2ban_escalation_threshold", 2, 1000000, "banned addresses of one prefix, e.g. 10"),
    ("fail2ban_escalation_window", 1, 31536000, "seconds, e.g. 600"),
    ("fail2ban_escalation_ipv4_prefix", 8, 31, "an IPv4 prefix length, e.g. 24"),
    ("fail2ban_escalation_ipv6_prefix", 16, 127, "an IPv6 prefix length, e.g. 64"),
)


def _escalation_problems(settings):
    """Prefix escalation: its switch, and its numbers when it is on."""
    enabled = settings.get("fail2ban_escalation_enabled", False)
    if not isinstance(enabled, bool):
        return ["fail2ban_escalation_enabled is %r: give true or false." % (enabled,)]
    problems = []
    for variable, low, high, what in ESCALATION_SETTINGS if enabled else ():
        value = settings.get(variable)
        number = _whole_number(value)
        if number is None or not low <= number <= high:
            problems.append("%s is %s: give a whole number from %d to %d (%s), or set fail2ban_escalation_enabled: "
                            "false." % (variable, json.dumps(value), low, high, what))
    return problems


def _ban_backend_problems(settings):
    """Where the jails ban (fail2ban_ban_backends) and the AWS edge (fail2ban_wafv2_*)."""
    problems = []
    backends = settings.get("fail2ban_ban_backends")
    if not (isinstance(backends, list) and backends and all(kind in BAN_BACKEND_KINDS for kind in backends)):
        problems.append("fail2ban_ban_backends is %s: give a list of firewall and/or nginx, e.g. [firewall, nginx] for a "
                        "host reached both directly and through a load balancer (nginx needs the nginx_ratelimit role with "
                        "nginx_ratelimit_ban_enabled)." % json.dumps(backends))
    if boolean(settings.get("fail2ban_wafv2_enabled", False), strict=False) and not settings.get("fail2ban_wafv2_ip_sets"):
        problems.append("fail2ban_wafv2_enabled is true but fail2ban_wafv2_ip_sets is empty: name this host's own WAFv2 IP "
                        "sets (e.g. [floodguard-web1-v4, floodguard-web1-v6]; examples/ec2/waf.yml creates them and "
                        "writes them to host_vars/<host>.yml) or set fail2ban_wafv2_enabled: false.")
    return problems


def fail2ban_dbpurgeage(bantimes, configured=""):
    """Seconds fail2ban's database keeps bans: the configured value, else the longest finite ban time, at least 1d.

    A ban older than dbpurgeage is purged and not restored after a restart, so it must cover every ban time.
    """
    if configured not in ("", None):
        return fail2ban_seconds(configured)
    longest = 86400
    for bantime in bantimes:
        seconds = fail2ban_seconds(bantime)
        if seconds > longest:
            longest = seconds
    return longest


def fail2ban_normalize_jails(jails):
    """The jails with every key filled in, in the form the templates write."""
    result = []
    for jail in jails:
        logpath = jail.get("logpath")
        ports = jail.get("ports", ["http", "https"])
        action = jail.get("action")
        result.append({
            "name": jail["name"],
            "enabled": jail.get("enabled", True),
            "filter": jail.get("filter", jail["name"]),
            "logpath": [] if logpath is None else (logpath if isinstance(logpath, list) else [logpath]),
            "backend": jail.get("backend", "auto"),
            "journalmatch": jail.get("journalmatch"),
            "findtime": jail.get("findtime", 600),
            "maxretry": _whole_number(jail.get("maxretry", 5)),
            "bantime": jail.get("bantime", 600),
            "ports": "all" if ports == "all" else ",".join(str(port).strip() for port in ports),
            "protocol": jail.get("protocol", "tcp"),
            "action": None if action is None else (action if isinstance(action, list) else [action]),
            "options": jail.get("options", {}),
        })
    return result


class FilterModule:
    """Filters of the floodguard.shield.fail2ban role: those its tasks and vars use, each documented."""

    def filters(self):
        return {
            "fail2ban_dbpurgeage": fail2ban_dbpurgeage,
            "fail2ban_normalize_jails": fail2ban_normalize_jails,
            "fail2ban_problems": fail2ban_problems,
        }
