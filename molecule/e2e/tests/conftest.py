# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hosts, addresses and helpers of the e2e scenario: flood from the attacker and client containers,
read fail2ban's bans on the web container, wait with deadlines instead of fixed sleeps."""

from __future__ import annotations

import os
import sys

import pytest

# The scenarios' shared test helpers: molecule/shared/tests/floodguard_molecule.py.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "tests"))
from floodguard_molecule import addresses_by_label, docker_host as _docker_host, flood  # noqa: E402  pylint: disable=wrong-import-position
from floodguard_molecule import wait_until as _wait_until  # noqa: E402  pylint: disable=wrong-import-position

# The jail that bans what NGINX's limit_req rejects (fail2ban role default).
JAIL = "nginx-req-limit"
# The API endpoint behind NGINX's default zone (5 r/s, burst 5).
PATH = "/api/ping"
# Ban waits: fail2ban reads the log, then bans; on 2 loaded cores this takes a few seconds.
BAN_DEADLINE_S = 15


def docker_host(role):
    return _docker_host("e2e", role)


@pytest.fixture(scope="session")
def web():
    return docker_host("web")


@pytest.fixture(scope="session")
def attacker():
    return docker_host("attacker")


@pytest.fixture(scope="session")
def client():
    return docker_host("client")


@pytest.fixture(scope="session")
def url(web):
    (address,) = addresses_by_label(web, "eth0")
    return "http://%s%s" % (address, PATH)


@pytest.fixture(scope="session")
def attacker_addresses(attacker):
    found = addresses_by_label(attacker, "*:flood")
    assert len(found) >= 21, "prepare.yml gives the attacker 21 extra addresses, found %s" % found
    return found


@pytest.fixture(scope="session")
def flood_addresses(attacker_addresses):
    """The 20 addresses of the main flood."""
    return attacker_addresses[:20]


@pytest.fixture(scope="session")
def rotation_address(attacker_addresses):
    """An attacker address kept unused until the flood after logrotate."""
    return attacker_addresses[20]


@pytest.fixture(scope="session")
def client_address(client):
    (address,) = addresses_by_label(client, "eth0")
    return address


@pytest.fixture(scope="session")
def allowlisted_address(client):
    (address,) = addresses_by_label(client, "*:allow")
    return address


def probe(host, url, sources, requests=2, timeout=1.0):
    """A couple of slow, polite requests from each source (below any rate): what a banned address gets."""
    report = flood(host, url, sources, requests, 10, concurrency=1, timeout=timeout)
    return report["sources"]


def jail_status(web, jail=JAIL):
    """fail2ban-client status of a jail as {field: value}, e.g. "Banned IP list", "File list"."""
    out = web.check_output("fail2ban-client status %s", jail)
    fields = {}
    for line in out.splitlines():
        name, colon, value = line.lstrip(" |`-").partition(":")
        if colon:
            fields[name.strip()] = value.strip()
    assert "Banned IP list" in fields, "unexpected fail2ban-client status %s:\n%s" % (jail, out)
    return fields


def banned(web, jail=JAIL):
    """Addresses fail2ban currently bans in jail."""
    return set(jail_status(web, jail)["Banned IP list"].split())


def wait_until(what, check, deadline_s=BAN_DEADLINE_S, interval_s=0.5):
    """floodguard_molecule.wait_until with this scenario's ban deadline."""
    return _wait_until(what, check, deadline_s, interval_s)


def describe(report):
    """One line of figures of a flood report, for the test log."""
    totals = report["totals"]
    return "sent %d: served %d, rejected %d, dropped %d, failed %d, other %d in %.1f s" % (
        totals["sent"], totals["served"], totals["rejected"], totals["dropped"], totals["failed"], totals["other"],
        report["elapsed_s"],
    )
