# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""http.conf.j2 of the floodguard.shield.nginx_ratelimit role: the zone keys, IPv6 clients per address or per prefix;
limits.conf.j2: the workers' open files."""

from __future__ import annotations

import pathlib
import re

import jinja2
import pytest
import yaml

ROLE = pathlib.Path(__file__).resolve().parents[5] / "roles" / "nginx_ratelimit"


def render(template="http.conf.j2", **changes):
    settings = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    role_vars = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())
    settings["__nginx_ratelimit_zone_key_default"] = role_vars["__nginx_ratelimit_zone_key_default"]
    settings["__nginx_ratelimit_zone_size_default"] = role_vars["__nginx_ratelimit_zone_size_default"]
    settings["__nginx_ratelimit_guard_active"] = False
    settings["ansible_managed"] = "Ansible managed"
    settings.update(changes)
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(str(ROLE / "templates")), trim_blocks=True,
                                     undefined=jinja2.StrictUndefined)
    environment.filters["ternary"] = lambda value, yes, no: yes if value else no
    environment.filters["bool"] = bool
    return environment.get_template(template).render(settings)


def zone_keys(text):
    """{zone name: the key its map gives a client that is not allowlisted}."""
    return dict(re.findall(r"map \$floodguard_ratelimit_exempt \$floodguard_ratelimit_key_(\w+) \{\n    1 \"\";\n    default (\S+);", text))


def test_by_default_every_ipv6_address_is_a_client():
    text = render()
    assert zone_keys(text) == {"one": "$binary_remote_addr"}
    assert "$floodguard_ratelimit_client" not in text


@pytest.mark.parametrize("prefix, length", [(64, 8), (48, 6), ("32", 4)])
def test_an_ipv6_prefix_as_the_client_keys_on_its_first_bytes(prefix, length):
    text = render(nginx_ratelimit_ipv6_key_prefix=prefix,
                  nginx_ratelimit_zones=[{"name": "one", "key": "$binary_remote_addr", "rate": "5r/s"},
                                         {"name": "login", "rate": "1r/s"},
                                         {"name": "per_host", "key": "$binary_remote_addr$host", "rate": "9r/s"}],
                  nginx_ratelimit_conn_zones=[{"name": "conn"}])
    # Zones keyed on the address (given or by default) take the prefix; a composite key stays as written.
    assert zone_keys(text) == {"one": "$floodguard_ratelimit_client", "login": "$floodguard_ratelimit_client",
                               "per_host": "$binary_remote_addr$host", "conn": "$floodguard_ratelimit_client"}
    mapping = re.search(r"map \$binary_remote_addr \$floodguard_ratelimit_client \{\n    \"(.+)\" \$1;\n    default \$binary_remote_addr;\n\}",
                        text)
    assert mapping, text
    # The same expression as NGINX's PCRE sees it: 16 bytes keep their first bytes; 4 (IPv4) do not match.
    pattern = re.compile(mapping.group(1)[1:].encode())
    address = bytes(range(250, 256)) + b"\n\x00" + bytes(8)
    assert pattern.match(address).group(1) == address[:length]
    assert pattern.match(bytes([192, 0, 2, 10])) is None


def directives(text):
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def test_limits_conf_raises_the_workers_open_files_by_default():
    assert directives(render("limits.conf.j2")) == ["worker_rlimit_nofile 16384;"]


def test_limits_conf_holds_no_directive_at_zero():
    assert directives(render("limits.conf.j2", nginx_ratelimit_worker_rlimit_nofile=0)) == []
