# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The AWS edge on real fail2ban, against moto: bans made on a web host appear in the WAFv2 IP sets.

In file order: a flood from web2 through the LB (HAProxy, X-Forwarded-For) is banned on web1 by its real
address and reaches web1's IP set, an unban and an expiry leave it, an address that two hosts (and two
jails of one host) ban stays blocked until the last of them unbans it, 25,000 bans fill three sets, two
hosts writing at once lose nothing, with moto stopped bans go on locally and the sets catch up once it
is back, and the module's own checks (module.yml). Each host writes only its own sets; moto's web ACL
blocks an address found in any of them.
Waits have deadlines; every flood is bounded in requests and seconds (tools/flood.py).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time

import pytest

# The scenarios' shared test helpers: molecule/shared/tests/floodguard_molecule.py.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "tests"))
from floodguard_molecule import DISTRO, docker_host as _docker_host  # noqa: E402  pylint: disable=wrong-import-position
from floodguard_molecule import wait_until as _wait_until  # noqa: E402  pylint: disable=wrong-import-position

SCENARIO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REGION = "eu-west-1"
# As molecule.yml's waf_host_ip_sets.
SETS = {"fg-web1-v4-a": "IPV4", "fg-web1-v4-b": "IPV4", "fg-web1-v4-c": "IPV4", "fg-web1-v6": "IPV6",
        "fg-web2-v4": "IPV4", "fg-web2-v6": "IPV6", "fg-operator-v4": "IPV4", "fg-operator-v6": "IPV6"}
# HAProxy's frontend to web1 alone (molecule/shared/templates/haproxy.cfg.j2).
LB_WEB1_PORT = 8001
JAIL = "nginx-req-limit"
# A ban reaches the edge after flushdelay (0.5 s) and two API calls; fail2ban itself needs a few seconds
# to see a flood on 2 loaded cores.
EDGE_DEADLINE_S = 30


def docker_host(role):
    return _docker_host("waf", role)


@pytest.fixture(scope="module")
def web1():
    return docker_host("web1")


@pytest.fixture(scope="module")
def web2():
    return docker_host("web2")


@pytest.fixture(scope="module")
def lb():
    return docker_host("lb")


@pytest.fixture(scope="module")
def moto():
    return docker_host("moto")


def edge(moto):
    """{set name: [addresses]} as moto holds them."""
    return json.loads(moto.check_output("/opt/moto/bin/python /usr/local/bin/waf_sets.py %s show", REGION))


def at_edge(moto):
    return set(address for addresses in edge(moto).values() for address in addresses)


def blocked(moto):
    """What the web ACL's rule blocks: every address of the sets it references."""
    return set(json.loads(moto.check_output("/opt/moto/bin/python /usr/local/bin/waf_sets.py %s blocked", REGION)))


def ensure_sets(moto):
    specs = " ".join("%s:%s" % item for item in SETS.items())
    return moto.check_output("/opt/moto/bin/python /usr/local/bin/waf_sets.py %s ensure %s" % (REGION, specs))


def banned(host, jail):
    output = host.check_output("fail2ban-client status %s", jail)
    line = [row for row in output.splitlines() if "Banned IP list:" in row][0]
    return set(line.split(":", 1)[1].split())


def wait_until(what, check, deadline_s=EDGE_DEADLINE_S, interval_s=0.2):
    """floodguard_molecule.wait_until with this scenario's deadline; returns the seconds waited."""
    return _wait_until(what, check, deadline_s, interval_s)[1]


def ipv4(host):
    return host.check_output("ip -4 -o addr show dev eth0").split()[3].split("/")[0]


def playbook(request, name, extra_vars, timeout=400):
    result = subprocess.run(
        ["ansible-playbook", "-i", request.config.option.ansible_inventory, os.path.join(SCENARIO_DIR, name),
         "-e", json.dumps(extra_vars)],
        capture_output=True, text=True, check=False, timeout=timeout,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    return result.stdout


def test_flood_through_the_lb_banned_locally_appears_in_the_ip_set(web1, web2, lb, moto):
    attacker = ipv4(web2)
    url = "http://%s:%d/api/ping" % (ipv4(lb), LB_WEB1_PORT)
    argv = ["python3", "/usr/local/bin/floodguard-flood", url, "--source", attacker, "--requests", "300",
            "--duration", "20", "--rate", "40", "--concurrency", "4", "--timeout", "1", "--read-timeout", "0.3",
            "--stop-after-drops", "3"]
    report = json.loads(web2.check_output(" ".join(shlex.quote(arg) for arg in argv)))
    assert report["sources"][attacker]["rejected"] > 0, report["sources"]
    # By its real address (X-Forwarded-For), not the LB's: the LB is allowlisted.
    wait_until("web2 banned on web1", lambda: attacker in banned(web1, JAIL))
    assert ipv4(lb) not in banned(web1, JAIL)
    waited = wait_until("web2 in web1's IP set", lambda: attacker + "/32" in edge(moto)["fg-web1-v4-a"])
    assert attacker + "/32" in blocked(moto)
    print("\nlocal ban to the IP set (polled every 0.2 s): %.1f s" % waited)


def test_unban_removes_it_from_the_set(web1, web2, moto):
    attacker = ipv4(web2)
    web1.check_output("fail2ban-client set %s unbanip %s", JAIL, attacker)
    wait_until("web2 out of the IP set", lambda: attacker + "/32" not in at_edge(moto))


def test_expiry_removes_it_from_the_set(web1, moto):
    web1.check_output("fail2ban-client set manual bantime 4")
    try:
        web1.check_output("fail2ban-client set manual banip 198.51.100.77")
        wait_until("the short ban at the edge", lambda: "198.51.100.77/32" in at_edge(moto))
        wait_until("the expired ban out of the set", lambda: "198.51.100.77/32" not in at_edge(moto))
        assert "198.51.100.77" not in banned(web1, "manual")
    finally:
        web1.check_output("fail2ban-client set manual bantime 30d")


def test_an_address_stays_blocked_until_the_last_host_and_jail_unbans_it(web1, web2, moto):
    shared, marker = "203.0.113.60", "203.0.113.61"
    web1.check_output("fail2ban-client set manual banip %s %s", shared, marker)
    web1.check_output("fail2ban-client set %s banip %s", JAIL, shared)
    web2.check_output("fail2ban-client set manual banip %s", shared)
    wait_until("both hosts' bans at the edge", lambda: shared + "/32" in set(edge(moto)["fg-web1-v4-a"])
               & set(edge(moto)["fg-web2-v4"]) and marker + "/32" in edge(moto)["fg-web1-v4-a"])
    # web1's manual jail unbans both; its nginx-req-limit jail still bans the shared one.
    web1.check_output("fail2ban-client set manual unbanip %s %s", shared, marker)
    wait_until("the marker out of web1's set", lambda: marker + "/32" not in edge(moto)["fg-web1-v4-a"])
    assert shared + "/32" in edge(moto)["fg-web1-v4-a"], "another jail of web1 still bans it"
    # web1 unbans it entirely: web2 still bans it, in its own set.
    web1.check_output("fail2ban-client set %s unbanip %s", JAIL, shared)
    wait_until("the shared address out of web1's set", lambda: shared + "/32" not in edge(moto)["fg-web1-v4-a"])
    assert shared + "/32" in edge(moto)["fg-web2-v4"] and shared + "/32" in blocked(moto)
    web2.check_output("fail2ban-client set manual unbanip %s", shared)
    wait_until("unblocked once the last host unbans it", lambda: shared + "/32" not in blocked(moto))


def test_ipv6_bans_land_in_the_ipv6_set_and_leave_it(web1, moto):
    web1.check_output("fail2ban-client set manual banip 2001:db8::60")
    wait_until("the IPv6 ban in web1's IPv6 set", lambda: "2001:db8::60/128" in edge(moto)["fg-web1-v6"])
    web1.check_output("fail2ban-client set manual unbanip 2001:db8::60")
    wait_until("the IPv6 ban out of the set", lambda: "2001:db8::60/128" not in at_edge(moto))


def test_25000_bans_land_in_three_sets(request, moto):
    playbook(request, "fill.yml", {"waf_hosts": "fg-waf-%s-web1" % DISTRO, "waf_count": 25000})
    wait_until("25,000 addresses at the edge", lambda: len(at_edge(moto)) >= 25000, deadline_s=120)
    sizes = dict((name, len(addresses)) for name, addresses in edge(moto).items() if addresses)
    assert sizes == {"fg-web1-v4-a": 10000, "fg-web1-v4-b": 10000, "fg-web1-v4-c": 5000}, sizes
    playbook(request, "fill.yml", {"waf_hosts": "fg-waf-%s-web1" % DISTRO, "waf_count": 25000, "waf_state": "absent"})
    wait_until("the 25,000 out of the sets", lambda: not at_edge(moto), deadline_s=120)


def test_two_hosts_writing_at_once_lose_nothing(request, web1, web2, moto):
    # Both hosts ban 3,000 addresses of their own at the same moment (one play, both hosts in parallel).
    playbook(request, "fill.yml", {"waf_count": 3000, "waf_first_octet": 120})
    expected = set("10.%d.%d.%d/32" % (120 + host, i // 256, i % 256) for host in (0, 1) for i in range(3000))
    wait_until("both hosts' bans at the edge", lambda: expected <= at_edge(moto), deadline_s=60)
    for host in (web1, web2):
        assert len(banned(host, "manual")) == 3000
    playbook(request, "fill.yml", {"waf_count": 3000, "waf_first_octet": 120, "waf_state": "absent"})
    wait_until("both hosts' bans out of the sets", lambda: not at_edge(moto), deadline_s=60)


def test_with_moto_stopped_bans_go_on_and_the_sets_catch_up(web1, moto):
    web1.check_output("fail2ban-client set manual banip 203.0.113.49")
    wait_until("the first ban at the edge", lambda: "203.0.113.49/32" in at_edge(moto))
    moto.check_output("systemctl stop moto")
    try:
        web1.check_output("fail2ban-client set manual banip 203.0.113.50")
        assert "203.0.113.50" in banned(web1, "manual")
        assert "203.0.113.50" in web1.check_output("nft list set inet floodguard f2b-manual-v4")
        time.sleep(3)  # the action fails at least once meanwhile
    finally:
        moto.check_output("systemctl start moto")
    wait_until("moto back", lambda: moto.run("/opt/moto/bin/python /usr/local/bin/waf_sets.py %s show", REGION).rc == 0)
    # moto keeps its sets in memory: create them again, as AWS would still have them.
    ensure_sets(moto)
    waited = wait_until("both bans at the edge again",
                        lambda: {"203.0.113.49/32", "203.0.113.50/32"} <= at_edge(moto), deadline_s=60)
    print("\nedge caught up %.1f s after moto was back" % waited)
    web1.check_output("fail2ban-client set manual unbanip 203.0.113.49 203.0.113.50")
    wait_until("unbanned after the outage", lambda: not at_edge(moto))


def test_the_module_checks_applies_is_idempotent_and_refuses_bad_input(request, moto):
    playbook(request, "module.yml", {})
    assert not at_edge(moto)
