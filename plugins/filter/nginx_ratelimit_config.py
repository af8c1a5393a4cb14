# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the floodguard.shield.nginx_ratelimit role: check its input before anything is written.

The checks return lists of problems (never raise) so that the role can report every mistake at once,
naming the variable, the entry and the fix. Values are read as the role's templates read them (Jinja's
`int`, `string | trim`), so that what passes here is what gets written. Addresses follow the modules'
rules (the ip_addresses filter, module_utils/_addresses.py).
"""

from __future__ import annotations

import json
import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.floodguard.shield.plugins.filter.ip_addresses import ip_addresses

# Shapes of the values the role accepts (NGINX's syntax, minus what would break out of a directive).
ZONE_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")
RATE = re.compile(r"^[1-9][0-9]*r/[sm]$")
SIZE = re.compile(r"^[1-9][0-9]*[kKmM]?$")
KEY = re.compile(r"^[^\s;{}'\"\\#]*\$[^\s;{}'\"\\#]*$")
PATH = re.compile(r"^/[^\s;{}'\"\\#]*[^/\s;{}'\"\\#]$")
DIRECTORY = re.compile(r"^/[^\s;{}'\"\\#]*$")
LOCATION = re.compile(r"^((=|\^~|~|~\*)\s+)?[^\s;{}'\"\\#]+$")
UPSTREAM = re.compile(r"^((\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):([1-9][0-9]{0,4})|unix:/[^\s;{}'\"\\#]+)$")
SERVER_NAME = re.compile(r"^[^;{}'\"\\#]+$")
HEADER = re.compile(r"^([A-Za-z0-9][A-Za-z0-9-]*|proxy_protocol)$")
SITE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# nginx_ratelimit_ipv6_key_prefix: whole bytes of an IPv6 address (http.conf.j2 keys on the first bytes of
# $binary_remote_addr), at most a /32.
IPV6_KEY_PREFIXES = ("32", "40", "48", "56", "64", "128")
# Variables that hold a header a client sends: a zone keyed on one is limited per forged value.
FORGEABLE_KEYS = (
    "$http_x_forwarded_for", "$proxy_add_x_forwarded_for", "$http_x_real_ip", "$http_forwarded",
    "$http_true_client_ip", "$http_cf_connecting_ip", "$http_x_client_ip",
)
# NGINX refuses zones smaller than 32k; it keeps about 8000 client states per megabyte on 64-bit hosts.
MINIMUM_ZONE_BYTES = 32768
STATES_PER_MEGABYTE = 8000
SIZE_UNITS = {"k": 1024, "m": 1048576}
# nginx_ratelimit_worker_connections: fewer than Debian's 768 would only lower its capacity; Linux's
# default fs.nr_open bounds the open files.
WORKER_CONNECTIONS = (512, 524288)
MAX_OPEN_FILES = 1048576


def _int(value):
    """value as Jinja's `int` filter reads it: 0 when it is not a number."""
    try:
        return int(value)
    except (TypeError, ValueError):
        try:
            return int(float(value))
        except (TypeError, ValueError):
            return 0


def _text(value):
    """value as the templates write it (`string | trim`)."""
    return str(value).strip()


def _json(value):
    return json.dumps(value)


def _matches(pattern, value):
    return isinstance(value, str) and pattern.match(value) is not None


def zone_bytes(size):
    """Bytes in a zone size that SIZE matched (e.g. '20m' -> 20971520)."""
    unit = size[-1:].lower()
    if unit in SIZE_UNITS:
        return int(size[:-1]) * SIZE_UNITS[unit]
    return int(size)


def _all_zones(settings):
    """(variable, zone) for every request and connection zone."""
    return [(variable, zone) for variable in ("nginx_ratelimit_zones", "nginx_ratelimit_conn_zones")
            for zone in settings[variable]]


def _zone_size(zone, settings):
    return _text(zone.get("size", settings["__nginx_ratelimit_zone_size_default"]))


def _zone_problems(settings):
    problems = []
    zones = _all_zones(settings)
    names = [zone.get("name") for _variable, zone in zones]
    for variable, zone in zones:
        name = zone.get("name")
        if not _matches(ZONE_NAME, name) or names.count(name) != 1:
            problems.append("%s: zone name %s must be 1 to 64 letters, digits or '_' and unique among "
                            "nginx_ratelimit_zones and nginx_ratelimit_conn_zones (NGINX shares zone names between "
                            "limit_req_zone and limit_conn_zone)." % (variable, _json(name)))
        key = zone.get("key", settings["__nginx_ratelimit_zone_key_default"])
        if not _matches(KEY, key) or any(forgeable in key.lower() for forgeable in FORGEABLE_KEYS):
            problems.append("%s (%s): key %s must be NGINX variables without spaces or quotes, e.g. $binary_remote_addr, "
                            "and no header that a client can forge (%s): behind a load balancer or CDN, key on "
                            "$binary_remote_addr and set nginx_ratelimit_real_ip_enabled with nginx_ratelimit_real_ip_from."
                            % (variable, name, _json(key), ", ".join(FORGEABLE_KEYS)))
        size = _zone_size(zone, settings)
        if not SIZE.match(size) or zone_bytes(size) < MINIMUM_ZONE_BYTES:
            problems.append("%s (%s): size %s must be a size of at least 32k (NGINX's minimum), in bytes, k or m, e.g. 20m; "
                            "one megabyte holds about %d clients." % (variable, name, _json(size), STATES_PER_MEGABYTE))
        if variable == "nginx_ratelimit_zones" and not RATE.match(_text(zone.get("rate"))):
            problems.append("nginx_ratelimit_zones (%s): rate %s must be whole requests per second or per minute, "
                            "e.g. 5r/s or 30r/m." % (name, _json(zone.get("rate"))))
        if "clients" in zone and _int(zone["clients"]) < 1:
            problems.append("%s (%s): clients %s must be the number of distinct clients you expect, e.g. 100000, "
                            "or left out." % (variable, name, _json(zone["clients"])))
    return problems


def _limit_places(settings):
    """(name for messages, place) for the site (and snippet), then each location."""
    places = [(None, {"limits": settings["nginx_ratelimit_limits"], "conn_limits": settings["nginx_ratelimit_conn_limits"]})]
    places.extend(("nginx_ratelimit_locations (%s)" % location.get("path"), location)
                  for location in settings["nginx_ratelimit_locations"])
    return places


def _request_limit_problem(limit, place, settings):
    zones = [zone.get("name") for zone in settings["nginx_ratelimit_zones"]]
    burst = _int(limit.get("burst", settings["__nginx_ratelimit_burst_default"]))
    delay = _int(limit.get("delay", 0))
    same_zone = [other for other in place.get("limits", []) if other.get("zone") == limit.get("zone")]
    return not (limit.get("zone") in zones and burst >= 0 and 0 <= delay <= burst
                and not (limit.get("nodelay", False) and "delay" in limit) and len(same_zone) == 1)


def _conn_limit_problem(limit, place, settings):
    zones = [zone.get("name") for zone in settings["nginx_ratelimit_conn_zones"]]
    same_zone = [other for other in place.get("conn_limits", []) if other.get("zone") == limit.get("zone")]
    return not (limit.get("zone") in zones and _int(limit.get("connections")) >= 1 and len(same_zone) == 1)


def _limit_problems(settings):
    problems = []
    request_zones = ", ".join(str(zone.get("name")) for zone in settings["nginx_ratelimit_zones"])
    conn_zones = ", ".join(str(zone.get("name")) for zone in settings["nginx_ratelimit_conn_zones"]) or "none defined"
    for where, place in _limit_places(settings):
        for limit in place.get("limits", []):
            if _request_limit_problem(limit, place, settings):
                problems.append("%s: the limit %s must name a zone of nginx_ratelimit_zones (%s) once per place, with a "
                                "burst of 0 or more and either nodelay: true or a delay from 0 to the burst."
                                % (where or "nginx_ratelimit_limits", _json(limit), request_zones))
        for limit in place.get("conn_limits", []):
            if _conn_limit_problem(limit, place, settings):
                problems.append("%s: the connection limit %s must name a zone of nginx_ratelimit_conn_zones (%s) once per "
                                "place, with connections of 1 or more." % (where or "nginx_ratelimit_conn_limits",
                                                                           _json(limit), conn_zones))
    return problems


def _location_problems(settings):
    problems = []
    locations = settings["nginx_ratelimit_locations"]
    paths = [" ".join(str(location.get("path")).split()) for location in locations]
    for location in locations:
        path = location.get("path")
        if not (isinstance(path, str) and LOCATION.match(path.strip()) and paths.count(" ".join(path.split())) == 1
                and ("root" not in location or _matches(DIRECTORY, location["root"]))):
            problems.append("nginx_ratelimit_locations (%s): path must be an NGINX location listed once, such as /api/login, "
                            "'= /api/login' or '^~ /static/', and root (if set) an absolute directory without spaces."
                            % _json(path))
    return problems


def _address_problems(settings):
    problems = []
    lists = (("nginx_ratelimit_allowlist", settings["nginx_ratelimit_allowlist"]),
             ("nginx_ratelimit_guard_known_clients", settings["nginx_ratelimit_guard_known_clients"]),
             ("nginx_ratelimit_real_ip_from", [entry for entry in settings["nginx_ratelimit_real_ip_from"] if entry != "unix:"]))
    for variable, addresses in lists:
        if addresses:
            try:
                ip_addresses(addresses, variable=variable)
            except AnsibleFilterError as exc:
                problems.append(str(exc))
    return problems


def _real_ip_problems(settings):
    if not boolean(settings["nginx_ratelimit_real_ip_enabled"], strict=False):
        return []
    trusted = settings["nginx_ratelimit_real_ip_from"]
    header = settings["nginx_ratelimit_real_ip_header"]
    if trusted and not any(str(entry).endswith("/0") for entry in trusted) and _matches(HEADER, header):
        return []
    return ["nginx_ratelimit_real_ip_enabled is true: nginx_ratelimit_real_ip_from must list the networks of your load "
            "balancers or CDN (never a /0, which would let every client forge its address) and nginx_ratelimit_real_ip_header "
            "(%s) must be a header name such as X-Forwarded-For, or proxy_protocol." % _json(header)]


def _port_ok(value):
    return 1 <= _int(value) <= 65535


def _status_ok(value):
    return 400 <= _int(value) <= 599


def _upstream_ok(value):
    return _matches(UPSTREAM, value) and (value.startswith("unix:") or _int(value.split(":")[-1]) <= 65535)


def _worker_connections_ok(value):
    return _whole(value, 0) and (_int(value) == 0 or WORKER_CONNECTIONS[0] <= _int(value) <= WORKER_CONNECTIONS[1])


def _rlimit_ok(settings):
    files = settings["nginx_ratelimit_worker_rlimit_nofile"]
    connections = _int(settings["nginx_ratelimit_worker_connections"])
    return _whole(files, 0) and (_int(files) == 0 or 2 * connections <= _int(files) <= MAX_OPEN_FILES)


def _site_checks(settings):
    """(variable, ok, fix) for every site setting."""
    certificate = settings["nginx_ratelimit_tls_certificate"]
    certificate_key = settings["nginx_ratelimit_tls_certificate_key"]
    snippet = settings["nginx_ratelimit_snippet_path"]
    server_name = settings["nginx_ratelimit_server_name"]
    site_name = settings["nginx_ratelimit_site_name"]
    return (
        ("nginx_ratelimit_ipv6_key_prefix", _text(settings["nginx_ratelimit_ipv6_key_prefix"]) in IPV6_KEY_PREFIXES,
         "give 128 (each IPv6 address is one client) or 64 (each /64 is one client, so a client rotating through its "
         "/64 shares one limit); 32, 40, 48 and 56 work too."),
        ("nginx_ratelimit_worker_connections", _worker_connections_ok(settings["nginx_ratelimit_worker_connections"]),
         "give the connections per NGINX worker, 0 (leave nginx.conf's value) or %d to %d, e.g. 8192." % WORKER_CONNECTIONS),
        ("nginx_ratelimit_worker_rlimit_nofile", _rlimit_ok(settings),
         "give the open files per NGINX worker, 0 (leave it to systemd's 1024) or at least twice "
         "nginx_ratelimit_worker_connections (a proxied request holds two files) and at most %d, e.g. 16384." % MAX_OPEN_FILES),
        ("nginx_ratelimit_status", _status_ok(settings["nginx_ratelimit_status"]),
         "give an HTTP error status from 400 to 599, e.g. 429 (Too Many Requests) or 503."),
        ("nginx_ratelimit_upstream", _upstream_ok(settings["nginx_ratelimit_upstream"]),
         "give host:port (127.0.0.1:8000, app.internal:8000, [::1]:8000) or a unix socket (unix:/run/gunicorn.sock)."),
        ("nginx_ratelimit_server_name", isinstance(server_name, str) and server_name.strip() != "" and _matches(SERVER_NAME, server_name),
         "give host names separated by spaces, e.g. 'api.example.com www.example.com', or _ for any."),
        ("nginx_ratelimit_listen_port", _port_ok(settings["nginx_ratelimit_listen_port"]), "give a TCP port from 1 to 65535."),
        ("nginx_ratelimit_tls_port", _port_ok(settings["nginx_ratelimit_tls_port"]), "give a TCP port from 1 to 65535."),
        ("nginx_ratelimit_tls_certificate",
         bool(certificate) == bool(certificate_key) and (not certificate or _matches(PATH, certificate)),
         "give the absolute path of the certificate together with nginx_ratelimit_tls_certificate_key, or neither for plain HTTP."),
        ("nginx_ratelimit_tls_certificate_key", not certificate_key or _matches(PATH, certificate_key),
         "give the absolute path of the private key, or leave it empty for plain HTTP."),
        ("nginx_ratelimit_error_log", _matches(PATH, settings["nginx_ratelimit_error_log"]),
         "give an absolute file path without spaces, e.g. /var/log/nginx/error.log."),
        ("nginx_ratelimit_snippet_path",
         _matches(PATH, snippet) and not re.match(r"^/etc/nginx/(conf[.]d|sites-enabled)/", snippet),
         "give an absolute file path outside /etc/nginx/conf.d and sites-enabled (NGINX loads those in the http context, "
         "where limit_req is not allowed), e.g. /etc/nginx/snippets/floodguard-ratelimit.conf."),
        ("nginx_ratelimit_site_name", _matches(SITE_NAME, site_name) and site_name != "default",
         "give a file name (letters, digits, '.', '_', '-') other than default, e.g. floodguard-api."),
    )


def _ban_checks(settings):
    """(variable, ok, fix) for every setting of the ban back end, when it is enabled."""
    if not boolean(settings["nginx_ratelimit_ban_enabled"], strict=False):
        return ()
    socket = settings["nginx_ratelimit_ban_socket"]
    return (
        ("nginx_ratelimit_ban_status", _status_ok(settings["nginx_ratelimit_ban_status"]),
         "give an HTTP error status from 400 to 599, e.g. 403, or 444 to close the connection without an answer."),
        ("nginx_ratelimit_ban_dict_size", SIZE.match(_text(settings["nginx_ratelimit_ban_dict_size"])) is not None,
         "give a size in k or m, e.g. 64m (about 250,000 bans)."),
        ("nginx_ratelimit_ban_socket", _matches(PATH, socket) and socket.startswith("/run/"),
         "give an absolute path under /run without spaces, e.g. /run/floodguard-nginx/ban.sock (its directory becomes root-only)."),
        ("nginx_ratelimit_ban_state_dir", _matches(PATH, settings["nginx_ratelimit_ban_state_dir"]),
         "give an absolute directory path without spaces, e.g. /var/lib/floodguard/nginx-bans."),
    )


def _whole(value, low):
    """value is a whole number (an int or its digits) of at least low."""
    return re.match(r"^[0-9]+$", _text(value)) is not None and int(_text(value)) >= low


def _guard_checks(settings):
    """(variable, ok, fix) for every setting of the upstream guard, when it is enabled (with the role's site)."""
    if not (boolean(settings["nginx_ratelimit_guard_enabled"], strict=False)
            and boolean(settings["nginx_ratelimit_site_enabled"], strict=False)):
        return ()
    known = bool(settings["nginx_ratelimit_guard_known_clients"])
    reserved_rate = _int(settings["nginx_ratelimit_guard_known_rate"]) if known else 0
    reserved_connections = _int(settings["nginx_ratelimit_guard_known_connections"]) if known else 0
    error_log = settings["nginx_ratelimit_guard_error_log"]
    socket = settings["nginx_ratelimit_guard_socket"]
    return (
        ("nginx_ratelimit_guard_rate", _whole(settings["nginx_ratelimit_guard_rate"], reserved_rate + 1),
         "give the requests per second the upstream can answer, a whole number such as 200, above "
         "nginx_ratelimit_guard_known_rate when nginx_ratelimit_guard_known_clients is set."),
        ("nginx_ratelimit_guard_burst", _whole(settings["nginx_ratelimit_guard_burst"], 0),
         "give a whole number of requests, 0 or more, e.g. 100."),
        ("nginx_ratelimit_guard_connections", _whole(settings["nginx_ratelimit_guard_connections"], reserved_connections + 1),
         "give the requests the upstream takes at once, a whole number such as 32, above "
         "nginx_ratelimit_guard_known_connections when nginx_ratelimit_guard_known_clients is set."),
        ("nginx_ratelimit_guard_known_rate", _whole(settings["nginx_ratelimit_guard_known_rate"], 1),
         "give a whole number of requests per second, 1 or more, e.g. 50 (taken from nginx_ratelimit_guard_rate)."),
        ("nginx_ratelimit_guard_known_connections", _whole(settings["nginx_ratelimit_guard_known_connections"], 1),
         "give a whole number of requests in progress, 1 or more, e.g. 8 (taken from nginx_ratelimit_guard_connections)."),
        ("nginx_ratelimit_guard_retry_after", _whole(settings["nginx_ratelimit_guard_retry_after"], 0), "give whole seconds, e.g. 1."),
        ("nginx_ratelimit_guard_error_log", _matches(PATH, error_log) and error_log != settings["nginx_ratelimit_error_log"],
         "give an absolute file path without spaces other than nginx_ratelimit_error_log (fail2ban reads that one; "
         "the guard must never ban), e.g. /var/log/nginx/floodguard-guard.log."),
        ("nginx_ratelimit_guard_socket", _matches(PATH, socket) and re.match(r"^/run/[^/]+/", socket) is not None,
         "give a path in a directory of its own under /run, e.g. /run/floodguard-guard/guard.sock (the directory is "
         "open to nginx_ratelimit_guard_group only)."),
        ("nginx_ratelimit_guard_group", _matches(re.compile(r"^[a-z_][a-z0-9_-]*$"), settings["nginx_ratelimit_guard_group"]),
         "give the group of NGINX's worker processes, e.g. www-data."),
    )


def _setting_problems(checks, settings):
    return ["%s is %s: %s" % (variable, _json(settings[variable]), fix) for variable, ok, fix in checks if not ok]


def nginx_ratelimit_problems(settings):
    """Every problem in the role's variables (a dict of them, named as in defaults/ and vars/main.yml); empty when valid.

    Runs on the controller before the role touches the host, so that bad input changes nothing.
    """
    return (_zone_problems(settings) + _limit_problems(settings) + _location_problems(settings)
            + _address_problems(settings) + _real_ip_problems(settings)
            + _setting_problems(_site_checks(settings), settings) + _setting_problems(_ban_checks(settings), settings)
            + _setting_problems(_guard_checks(settings), settings))


def nginx_ratelimit_warnings(settings):
    """A warning for every zone whose size holds fewer client states than the clients it expects.

    Run after nginx_ratelimit_problems found nothing (sizes are valid then).
    """
    warnings = []
    for variable, zone in _all_zones(settings):
        if "clients" not in zone:
            continue
        size = _zone_size(zone, settings)
        capacity = zone_bytes(size) * STATES_PER_MEGABYTE // SIZE_UNITS["m"]
        clients = _int(zone["clients"])
        if capacity < clients:
            megabytes = (clients + STATES_PER_MEGABYTE - 1) // STATES_PER_MEGABYTE
            warnings.append("WARNING: %s (%s): size %s holds about %d client states but %s clients are expected. When a zone "
                            "is full NGINX evicts the oldest states and, failing that, rejects new clients: give it size "
                            "%dm or more." % (variable, zone.get("name"), size, capacity, zone["clients"], megabytes))
    return warnings


class FilterModule:
    """Filters of the floodguard.shield.nginx_ratelimit role: those its tasks use, each documented."""

    def filters(self):
        return {
            "nginx_ratelimit_problems": nginx_ratelimit_problems,
            "nginx_ratelimit_warnings": nginx_ratelimit_warnings,
        }
