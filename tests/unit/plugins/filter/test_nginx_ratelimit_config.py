# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""plugins/filter/nginx_ratelimit_config.py: every check of the nginx_ratelimit role, on the role's own defaults."""

from __future__ import annotations

import pathlib

import pytest
import yaml

from ansible_collections.floodguard.shield.plugins.filter import nginx_ratelimit_config as config
from ansible_collections.floodguard.shield.plugins.filter.nginx_ratelimit_config import (
    nginx_ratelimit_problems,
    nginx_ratelimit_warnings,
)

ROLE = pathlib.Path(__file__).resolve().parents[4] / "roles" / "nginx_ratelimit"


def settings(**overrides):
    """The role's defaults and the zone/limit defaults of vars/main.yml, as tasks/validate.yml passes them."""
    values = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    role_vars = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())
    values["nginx_ratelimit_ban_enabled"] = values["nginx_ratelimit_real_ip_enabled"]
    for name in ("__nginx_ratelimit_zone_key_default", "__nginx_ratelimit_zone_size_default",
                 "__nginx_ratelimit_burst_default"):
        values[name] = role_vars[name]
    values.update(overrides)
    return values


def test_the_settings_passed_are_every_variable_the_checks_read():
    passed = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())["__nginx_ratelimit_settings"]
    assert all(value == "{{ %s }}" % name for name, value in passed.items())
    # The checks read nothing else (a missing name would raise KeyError).
    only_passed = {name: value for name, value in settings(nginx_ratelimit_ban_enabled=True).items() if name in passed}
    assert nginx_ratelimit_problems(only_passed) == []
    assert nginx_ratelimit_warnings(only_passed) == []


def test_defaults_are_valid():
    assert nginx_ratelimit_problems(settings()) == []
    assert nginx_ratelimit_warnings(settings()) == []


def test_patterns_accept_and_refuse_what_the_docs_say():
    def matches(pattern, value):
        return pattern.match(value) is not None

    assert matches(config.RATE, "5r/s") and matches(config.RATE, "30r/m")
    for bad in ("5r/x", "0r/s", "5 r/s", "5r/h", "-5r/s"):
        assert not matches(config.RATE, bad), bad
    assert matches(config.SIZE, "20m") and matches(config.SIZE, "512k")
    for bad in ("20q", "20mb", "0m", "-1m", "1g"):
        assert not matches(config.SIZE, bad), bad
    assert matches(config.KEY, "$binary_remote_addr$uri")
    for bad in ("binary_remote_addr", "$a b", "$a;", "$a}"):
        assert not matches(config.KEY, bad), bad
    for good in ("127.0.0.1:8000", "app.internal:8000", "[::1]:8000", "unix:/run/gunicorn.sock"):
        assert matches(config.UPSTREAM, good), good
    for bad in ("127.0.0.1", "http://127.0.0.1:8000", "unix:relative.sock", "host:0", "a b:80"):
        assert not matches(config.UPSTREAM, bad), bad
    for good in ("/api/login", "= /api/login", "^~ /static/", "~ ^/api/v[0-9]+/login$"):
        assert matches(config.LOCATION, good), good
    for bad in ("/a b", "/a;", "= ", "/a{"):
        assert not matches(config.LOCATION, bad), bad
    assert matches(config.HEADER, "X-Forwarded-For")
    assert matches(config.HEADER, "proxy_protocol")
    assert not matches(config.HEADER, "X Forwarded")


# (variables, the one problem they give, beginning with)
PROBLEMS = [
    ({"nginx_ratelimit_zones": [{"name": "one", "rate": "5r/x"}]}, 'nginx_ratelimit_zones (one): rate "5r/x" must be'),
    ({"nginx_ratelimit_zones": [{"name": "one", "size": "20q", "rate": "5r/s"}]},
     'nginx_ratelimit_zones (one): size "20q" must be a size of at least 32k'),
    ({"nginx_ratelimit_zones": [{"name": "one", "size": "16k", "rate": "5r/s"}]}, 'nginx_ratelimit_zones (one): size "16k"'),
    ({"nginx_ratelimit_zones": [{"name": "o-ne", "rate": "5r/s"}], "nginx_ratelimit_limits": []},
     'nginx_ratelimit_zones: zone name "o-ne" must be 1 to 64 letters'),
    ({"nginx_ratelimit_zones": [{"name": "one", "rate": "5r/s", "key": "$http_X_Forwarded_For"}]},
     'nginx_ratelimit_zones (one): key "$http_X_Forwarded_For" must be NGINX variables'),
    ({"nginx_ratelimit_zones": [{"name": "one", "rate": "5r/s", "key": "binary_remote_addr"}]},
     'nginx_ratelimit_zones (one): key "binary_remote_addr"'),
    ({"nginx_ratelimit_zones": [{"name": "one", "rate": "5r/s", "clients": 0}]},
     "nginx_ratelimit_zones (one): clients 0 must be the number of distinct clients"),
    ({"nginx_ratelimit_limits": [{"zone": "one", "burst": -1}]},
     'nginx_ratelimit_limits: the limit {"zone": "one", "burst": -1} must name a zone of nginx_ratelimit_zones (one)'),
    ({"nginx_ratelimit_limits": [{"zone": "nope", "burst": 5}]}, 'nginx_ratelimit_limits: the limit {"zone": "nope"'),
    ({"nginx_ratelimit_limits": [{"zone": "one", "burst": 5, "delay": 6}]}, 'nginx_ratelimit_limits: the limit'),
    ({"nginx_ratelimit_limits": [{"zone": "one", "burst": 5, "delay": 2, "nodelay": True}]}, 'nginx_ratelimit_limits: the limit'),
    ({"nginx_ratelimit_conn_limits": [{"zone": "one", "connections": 5}]},
     'nginx_ratelimit_conn_limits: the connection limit {"zone": "one", "connections": 5} must name a zone of '
     "nginx_ratelimit_conn_zones (none defined)"),
    ({"nginx_ratelimit_conn_zones": [{"name": "conn"}], "nginx_ratelimit_conn_limits": [{"zone": "conn", "connections": 0}]},
     "nginx_ratelimit_conn_limits: the connection limit"),
    ({"nginx_ratelimit_locations": [{"path": "/api/login", "limits": [{"zone": "nope"}]}]},
     'nginx_ratelimit_locations (/api/login): the limit {"zone": "nope"}'),
    ({"nginx_ratelimit_locations": [{"path": "/a b"}]}, 'nginx_ratelimit_locations ("/a b"): path must be'),
    ({"nginx_ratelimit_locations": [{"path": "/static/", "root": "srv/static"}]}, 'nginx_ratelimit_locations ("/static/")'),
    ({"nginx_ratelimit_allowlist": ["10.0.0.0/33"]}, "nginx_ratelimit_allowlist holds 1 invalid address(es): '10.0.0.0/33'"),
    ({"nginx_ratelimit_real_ip_from": ["unix:", "proxy.example"]}, "nginx_ratelimit_real_ip_from holds 1 invalid"),
    ({"nginx_ratelimit_real_ip_enabled": True, "nginx_ratelimit_ban_enabled": False, "nginx_ratelimit_real_ip_from": ["0.0.0.0/0"]},
     "nginx_ratelimit_real_ip_enabled is true: nginx_ratelimit_real_ip_from must list"),
    ({"nginx_ratelimit_real_ip_enabled": "yes", "nginx_ratelimit_ban_enabled": False}, "nginx_ratelimit_real_ip_enabled is true"),
    ({"nginx_ratelimit_status": 200}, "nginx_ratelimit_status is 200: give an HTTP error status from 400 to 599"),
    ({"nginx_ratelimit_upstream": "127.0.0.1:70000"}, 'nginx_ratelimit_upstream is "127.0.0.1:70000": give host:port'),
    ({"nginx_ratelimit_server_name": " "}, 'nginx_ratelimit_server_name is " ": give host names'),
    ({"nginx_ratelimit_listen_port": "0"}, 'nginx_ratelimit_listen_port is "0": give a TCP port'),
    ({"nginx_ratelimit_tls_port": 65536}, "nginx_ratelimit_tls_port is 65536: give a TCP port"),
    ({"nginx_ratelimit_tls_certificate": "/etc/ssl/api.pem"}, 'nginx_ratelimit_tls_certificate is "/etc/ssl/api.pem": give'),
    ({"nginx_ratelimit_tls_certificate": "/c.pem", "nginx_ratelimit_tls_certificate_key": "k.pem"},
     'nginx_ratelimit_tls_certificate_key is "k.pem": give the absolute path'),
    ({"nginx_ratelimit_error_log": "/var/log/nginx/"}, 'nginx_ratelimit_error_log is "/var/log/nginx/": give an absolute'),
    ({"nginx_ratelimit_snippet_path": "/etc/nginx/conf.d/limits.conf"}, 'nginx_ratelimit_snippet_path is "/etc/nginx/conf.d/'),
    ({"nginx_ratelimit_site_name": "default"}, 'nginx_ratelimit_site_name is "default": give a file name'),
    ({"nginx_ratelimit_ban_enabled": True, "nginx_ratelimit_ban_status": 302}, "nginx_ratelimit_ban_status is 302: give"),
    ({"nginx_ratelimit_ban_enabled": True, "nginx_ratelimit_ban_dict_size": "1g"}, 'nginx_ratelimit_ban_dict_size is "1g"'),
    ({"nginx_ratelimit_ban_enabled": True, "nginx_ratelimit_ban_socket": "/tmp/ban.sock"},
     'nginx_ratelimit_ban_socket is "/tmp/ban.sock": give an absolute path under /run'),
    ({"nginx_ratelimit_ban_enabled": True, "nginx_ratelimit_ban_state_dir": "bans"}, 'nginx_ratelimit_ban_state_dir is "bans"'),
    ({"nginx_ratelimit_guard_rate": "200r/s"}, 'nginx_ratelimit_guard_rate is "200r/s": give the requests per second'),
    ({"nginx_ratelimit_guard_known_clients": ["192.0.2.1"], "nginx_ratelimit_guard_rate": 50},
     "nginx_ratelimit_guard_rate is 50: give the requests per second"),
    ({"nginx_ratelimit_guard_burst": -1}, "nginx_ratelimit_guard_burst is -1: give a whole number"),
    ({"nginx_ratelimit_guard_known_clients": ["192.0.2.1"], "nginx_ratelimit_guard_connections": 8},
     "nginx_ratelimit_guard_connections is 8: give the requests the upstream takes at once"),
    ({"nginx_ratelimit_guard_known_rate": 0}, "nginx_ratelimit_guard_known_rate is 0: give a whole number"),
    ({"nginx_ratelimit_guard_known_connections": "many"}, 'nginx_ratelimit_guard_known_connections is "many"'),
    ({"nginx_ratelimit_ipv6_key_prefix": 60}, "nginx_ratelimit_ipv6_key_prefix is 60: give 128 (each IPv6 address"),
    ({"nginx_ratelimit_ipv6_key_prefix": "/64"}, 'nginx_ratelimit_ipv6_key_prefix is "/64": give 128'),
    ({"nginx_ratelimit_guard_retry_after": "1s"}, 'nginx_ratelimit_guard_retry_after is "1s": give whole seconds'),
    ({"nginx_ratelimit_guard_error_log": "/var/log/nginx/error.log"},
     'nginx_ratelimit_guard_error_log is "/var/log/nginx/error.log": give an absolute file path without spaces other than'),
    ({"nginx_ratelimit_guard_socket": "/run/guard.sock"}, 'nginx_ratelimit_guard_socket is "/run/guard.sock": give a path'),
    ({"nginx_ratelimit_guard_group": "www data"}, 'nginx_ratelimit_guard_group is "www data": give the group'),
    ({"nginx_ratelimit_guard_known_clients": ["192.0.2.300"]}, "nginx_ratelimit_guard_known_clients holds 1 invalid"),
]


@pytest.mark.parametrize("overrides, beginning", PROBLEMS)
def test_each_mistake_is_one_problem_that_names_the_variable(overrides, beginning):
    problems = nginx_ratelimit_problems(settings(**overrides))
    assert len(problems) == 1, problems
    assert problems[0].startswith(beginning), problems[0]


def test_every_mistake_is_reported_at_once():
    everything = {}
    for overrides, _beginning in PROBLEMS[:3] + PROBLEMS[-6:]:
        everything.update(overrides)
    assert len(nginx_ratelimit_problems(settings(**everything))) >= 6


def test_a_name_or_zone_used_twice_is_a_problem_of_each_entry():
    problems = nginx_ratelimit_problems(settings(nginx_ratelimit_conn_zones=[{"name": "one"}]))
    assert [problem.split(":")[0] for problem in problems] == ["nginx_ratelimit_zones", "nginx_ratelimit_conn_zones"]
    assert all('zone name "one" must be' in problem for problem in problems)
    problems = nginx_ratelimit_problems(settings(nginx_ratelimit_limits=[{"zone": "one"}, {"zone": "one", "burst": 1}]))
    assert len(problems) == 2 and all(problem.startswith("nginx_ratelimit_limits: the limit") for problem in problems)


def test_ban_settings_are_checked_only_when_the_ban_back_end_is_on():
    assert nginx_ratelimit_problems(settings(nginx_ratelimit_ban_status=302)) == []


def test_allowed_values_at_the_edges():
    assert nginx_ratelimit_problems(settings(
        nginx_ratelimit_zones=[{"name": "one", "rate": "30r/m", "size": "32k", "clients": "100"}],
        nginx_ratelimit_limits=[{"zone": "one", "burst": "5", "delay": 5}],
        nginx_ratelimit_locations=[{"path": "^~ /static/", "root": "/srv/static"}, {"path": "= /api/login"}],
        nginx_ratelimit_upstream="unix:/run/gunicorn.sock", nginx_ratelimit_status="599",
        nginx_ratelimit_real_ip_enabled=True, nginx_ratelimit_ban_enabled=True,
        nginx_ratelimit_real_ip_from=["unix:", "10.0.0.0/8"], nginx_ratelimit_real_ip_header="proxy_protocol",
    )) == []


def test_locations_that_differ_only_in_spaces_are_the_same_location():
    problems = nginx_ratelimit_problems(settings(nginx_ratelimit_locations=[{"path": "= /login"}, {"path": "=  /login"}]))
    assert len(problems) == 2 and all("listed once" in problem for problem in problems)


def test_a_zone_too_small_for_its_clients_is_a_warning_with_the_size_to_give():
    warnings = nginx_ratelimit_warnings(settings(
        nginx_ratelimit_zones=[{"name": "one", "rate": "5r/s", "size": "1m", "clients": 100000}],
        nginx_ratelimit_conn_zones=[{"name": "conn", "size": "20m", "clients": 1000}]))
    assert warnings == [
        "WARNING: nginx_ratelimit_zones (one): size 1m holds about 8000 client states but 100000 clients are expected. "
        "When a zone is full NGINX evicts the oldest states and, failing that, rejects new clients: give it size 13m or more."]


def test_zone_bytes():
    assert config.zone_bytes("32768") == 32768
    assert config.zone_bytes("32k") == config.zone_bytes("32K") == 32768
    assert config.zone_bytes("20m") == 20 * 1048576


def test_guard_settings_are_checked_only_when_the_guard_runs_in_the_role_site():
    assert nginx_ratelimit_problems(settings(nginx_ratelimit_guard_enabled=False, nginx_ratelimit_guard_rate="x")) == []
    assert nginx_ratelimit_problems(settings(nginx_ratelimit_site_enabled=False, nginx_ratelimit_guard_rate="x")) == []


@pytest.mark.parametrize("prefix", [32, "48", 64, " 128 "])
def test_ipv6_key_prefixes_of_whole_bytes_are_accepted(prefix):
    assert nginx_ratelimit_problems(settings(nginx_ratelimit_ipv6_key_prefix=prefix)) == []
