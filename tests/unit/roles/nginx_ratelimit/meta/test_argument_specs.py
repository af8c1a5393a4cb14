# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""floodguard.shield.nginx_ratelimit documents every variable it has, with the default it has."""

from __future__ import annotations

import pathlib

import yaml

ROLE = pathlib.Path(__file__).resolve().parents[5] / "roles" / "nginx_ratelimit"


def _load(relative):
    return yaml.safe_load((ROLE / relative).read_text())


def _options():
    return _load("meta/argument_specs.yml")["argument_specs"]["main"]["options"]


def test_every_default_is_documented_with_the_same_value():
    defaults = _load("defaults/main.yml")
    options = _options()
    assert sorted(defaults) == sorted(options)
    for name, value in defaults.items():
        assert options[name].get("default") == value, name


def test_every_variable_is_prefixed_and_described():
    for name, option in _options().items():
        assert name.startswith("nginx_ratelimit_"), name
        assert option.get("description"), name


def test_suboption_defaults_match_the_role_vars():
    role_vars = _load("vars/main.yml")
    zone = _options()["nginx_ratelimit_zones"]["options"]
    assert zone["key"]["default"] == role_vars["__nginx_ratelimit_zone_key_default"]
    assert zone["size"]["default"] == role_vars["__nginx_ratelimit_zone_size_default"]
    conn_zone = _options()["nginx_ratelimit_conn_zones"]["options"]
    assert conn_zone["key"]["default"] == role_vars["__nginx_ratelimit_zone_key_default"]
    assert conn_zone["size"]["default"] == role_vars["__nginx_ratelimit_zone_size_default"]
    limit = _options()["nginx_ratelimit_limits"]["options"]
    assert limit["burst"]["default"] == role_vars["__nginx_ratelimit_burst_default"]


def test_default_is_the_proven_recipe():
    defaults = _load("defaults/main.yml")
    zone = defaults["nginx_ratelimit_zones"][0]
    assert "limit_req_zone %s zone=%s:%s rate=%s;" % (zone["key"], zone["name"], zone["size"], zone["rate"]) == (
        "limit_req_zone $binary_remote_addr zone=one:20m rate=5r/s;")
    assert defaults["nginx_ratelimit_limits"] == [{"zone": "one", "burst": 5, "nodelay": True}]
    assert defaults["nginx_ratelimit_status"] == 429
    assert defaults["nginx_ratelimit_error_log"] == "/var/log/nginx/error.log"
