# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hosts, addresses and helpers of the lb scenario (see molecule.yml): HAProxy in front of two web hosts."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys

import pytest

# The scenarios' shared test helpers: molecule/shared/tests/floodguard_molecule.py.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "tests"))
from floodguard_molecule import addresses_by_label, docker_host as _docker_host, flood  # noqa: E402  pylint: disable=wrong-import-position
from floodguard_molecule import wait_until as _wait_until  # noqa: E402  pylint: disable=wrong-import-position

JAIL = "nginx-req-limit"
PATH = "/api/ping"
# NGINX's ban back end (nginx_ratelimit role defaults).
BAN_SOCKET = "/run/floodguard-nginx/ban.sock"
BAN_DEADLINE_S = 20
# HAProxy's frontends (molecule/shared/templates/haproxy.cfg.j2): both web hosts, then one port per web host.
LB_ALL, LB_PORT = 80, {"web1": 8001, "web2": 8002}
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


def docker_host(role):
    return _docker_host("lb", role)


@pytest.fixture(scope="session")
def hosts():
    return dict((role, docker_host(role)) for role in ("lb", "web1", "web2", "attacker", "client"))


def main_address(host):
    (address,) = addresses_by_label(host, "eth0")
    return address


def probe(host, url, sources, requests=2):
    """A couple of slow requests from each source, far below the rate."""
    return flood(host, url, sources, requests, 15, concurrency=1, rate=1)["sources"]


def banned(web, jail=JAIL):
    """Addresses fail2ban bans in jail."""
    out = web.check_output("fail2ban-client get %s banned", jail)
    return set(json.loads(out.replace("'", '"')))


def element(address):
    """An address as NGINX's ban back end lists it: hex of the packed address, prefix length."""
    network = ipaddress.ip_network(address)
    return "%s/%d" % (network.network_address.packed.hex(), network.prefixlen)


def nginx_bans(web, jail=JAIL):
    """What NGINX's shared dict holds for jail, read through the root-only management socket."""
    out = web.check_output("curl -sf --unix-socket %s 'http://floodguard-ban/list?jail=%s'", BAN_SOCKET, jail)
    return set(out.split())


def wait_until(what, check, deadline_s=BAN_DEADLINE_S, interval_s=0.5):
    """floodguard_molecule.wait_until with this scenario's ban deadline."""
    return _wait_until(what, check, deadline_s, interval_s)


def run_playbook(name, *arguments):
    """Runs a playbook of this collection against the scenario's inventory, as an operator would."""
    argv = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], os.path.join(REPO, "playbooks", name)]
    argv += list(arguments)
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, "%s failed:\n%s\n%s" % (name, done.stdout[-4000:], done.stderr[-2000:])
    return done.stdout
