"""Botnet-scale floods against the whole defence: upstream guard, fail2ban at scale, prefix escalation.

The web host runs the demo API behind nginx_ratelimit (per-client 5r/s burst 1, and the upstream guard
of molecule.yml: 60 requests/s in total, 20 of them kept for the known client) and fail2ban (the
default jail, with prefix escalation). The attacker sends from addresses on its loopback that the web
host routes back to it (prepare.yml); its own address is the legitimate, known client. The upstream's
load is counted where it lands: gunicorn's access log. Tests run in file order.
"""

import collections
import datetime
import ipaddress
import json
import os
import re
import sys
import time

import pytest
from testinfra.utils.ansible_runner import AnsibleRunner

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "tests"))
from floodguard_molecule import docker_host, wait_until  # noqa: E402  pylint: disable=wrong-import-position

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
JAIL = "nginx-req-limit"
FILTER = "/etc/fail2ban/filter.d/nginx-limit-req.conf"
GUARD_LOG = "/var/log/nginx/floodguard-guard.log"
TOOL = "python3 /usr/local/bin/botnet_flood.py"
# molecule.yml: the guard's cap. In any one second limit_req lets through at most rate + burst + 1 per
# zone (public: 40/s, known: 20/s, burst 20 each); one request of slack for the clock's rounding.
GUARD_RATE, GUARD_BURST = 60, 20
CAP_PER_SECOND = GUARD_RATE + 2 * (GUARD_BURST + 1) + 1
GUNICORN_TIME = re.compile(r"\[(\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\] \"GET ")


@pytest.fixture(scope="module")
def web():
    return docker_host("botnet", "web")


@pytest.fixture(scope="module")
def attacker():
    return docker_host("botnet", "attacker")


@pytest.fixture(scope="module")
def variables():
    runner = AnsibleRunner(INVENTORY)
    return runner.get_variables(runner.get_hosts("attacker")[0])


def _address(host, command):
    return host.check_output(command + " | awk '{print $4}' | cut -d/ -f1 | head -n1")


@pytest.fixture(scope="module")
def target(web):
    return _address(web, "ip -4 -o addr show dev eth0")


@pytest.fixture(scope="module")
def target_v6(web):
    return _address(web, "ip -6 -o addr show scope global | grep ' fd00:b07:'")


@pytest.fixture(scope="module")
def legit(attacker):
    return _address(attacker, "ip -4 -o addr show dev eth0")


def flood(attacker, target, *arguments):
    """Runs the flood tool on the attacker and returns its JSON summary."""
    return json.loads(attacker.check_output("%s %s %s" % (TOOL, target, " ".join(arguments))))


def banned(web):
    """The addresses and networks the jail lists."""
    out = web.check_output("fail2ban-client get %s banip" % JAIL)
    return set(out.split())


def upstream_per_second(web, since):
    """Requests gunicorn answered, per second of its own clock, since a Unix time."""
    out = web.check_output("journalctl -u floodguard-demo-api -o cat --since @%d --no-pager" % int(since))
    counts = collections.Counter()
    for stamp in GUNICORN_TIME.findall(out):
        moment = datetime.datetime.strptime(stamp, "%d/%b/%Y:%H:%M:%S %z").timestamp()
        if moment >= int(since):
            counts[int(moment)] += 1
    return counts


def addresses(spec):
    start, count, step = (spec + ",1").split(",")[:3]
    return [str(ipaddress.ip_address(start) + index * int(step)) for index in range(int(count))]


def test_addresses_under_the_rate_are_held_at_the_cap_and_never_banned(web, attacker, target, legit, variables):
    before = time.time()
    # 2,000 addresses, 3 requests each, 3.3 s apart (0.3/s each, far under 5r/s): 600 requests/s in
    # total, 10 times the guard's 60/s.
    result = flood(attacker, target, "--sources", variables["botnet_under_rate"], "--every", "3.3", "--requests", "3",
                   "--concurrency", "400", "--timeout", "3", "--duration", "40", "--legit", legit, "--legit-after", "1")
    print("under the rate: %s" % json.dumps({key: value for key, value in result.items() if key != "legit"}))
    statuses = result["statuses"]
    # The guard answered the excess at once with 503 and Retry-After; the per-client limits never fired.
    assert statuses.get("503", 0) > 0, statuses
    assert result["retry_after"] == statuses["503"], result
    assert "429" not in statuses, statuses
    assert statuses.get("failed", 0) == 0 and statuses.get("dropped", 0) == 0, statuses
    # What passed was answered in normal time: no queue in front of the upstream.
    assert result["latency_2xx_ms"]["p99"] < 1000, result["latency_2xx_ms"]
    # The upstream got at most the cap.
    per_second = upstream_per_second(web, before)
    assert per_second and max(per_second.values()) <= CAP_PER_SECOND, sorted(per_second.items())
    # The known client kept its reserved share.
    assert result["legit"]["2xx"] == result["legit"]["sent"] > 0, result["legit"]
    # No address of that flood is banned, and the guard's rejections cannot feed a ban.
    under = set(addresses(variables["botnet_under_rate"]))
    assert not banned(web) & under
    guard_lines = int(web.check_output("grep -c 'limiting' %s || true" % GUARD_LOG))
    assert guard_lines > 0
    matched = web.check_output("fail2ban-regex %s %s | grep '^Lines:'" % (GUARD_LOG, FILTER))
    assert re.search(r"Lines: \d+ lines, 0 ignored, 0 matched", matched), matched


def test_a_flooding_prefix_is_banned_whole_but_never_one_that_holds_an_allowlisted_address(web, attacker, target, target_v6, variables):
    for spec, address in ((variables["botnet_prefix_v4"], target), (variables["botnet_prefix_allowlisted"], target),
                          (variables["botnet_prefix_v6"], target_v6)):
        flood(attacker, address, "--sources", spec, "--burst", "4", "--parallel", "--spread", "1", "--timeout", "2", "--duration", "20")
    prefix_v4 = str(ipaddress.ip_network(variables["botnet_prefix_v4"].split(",")[0] + "/24", strict=False))
    prefix_v6 = str(ipaddress.ip_network(variables["botnet_prefix_v6"].split(",")[0] + "/64", strict=False))
    allowlisted_prefix = str(ipaddress.ip_network(variables["botnet_allowlisted_address"] + "/24", strict=False))
    def both_banned():
        now = banned(web)
        return now if {prefix_v4, prefix_v6} <= now else None

    try:
        listed, _waited = wait_until("%s and %s banned" % (prefix_v4, prefix_v6), both_banned, 20)
    except AssertionError as error:
        raise AssertionError("%s; listed: %s; fail2ban log: %s" % (
            error, sorted(banned(web))[:20], web.check_output("tail -n 40 /var/log/fail2ban.log"))) from None
    assert allowlisted_prefix not in listed
    # The prefix ban is enforced: a new address of it gets no connection at all, and the firewall holds it.
    for probe, address in ((variables["botnet_probe_v4"], target), (variables["botnet_probe_v6"], target_v6)):
        result = flood(attacker, address, "--sources", probe + ",1", "--burst", "1", "--timeout", "1", "--duration", "5")
        assert result["statuses"] == {"dropped": 1}, (probe, result)
    web.run_expect([0], "nft get element inet floodguard f2b-%s-v4net '{ %s }'" % (JAIL, variables["botnet_probe_v4"]))
    web.run_expect([0], "nft get element inet floodguard f2b-%s-v6net '{ %s }'" % (JAIL, variables["botnet_probe_v6"]))
    # The allowlisted address inside a flooding /24 still passes.
    result = flood(attacker, target, "--sources", variables["botnet_allowlisted_address"] + ",1", "--burst", "1",
                   "--timeout", "2", "--duration", "5")
    assert result["statuses"] == {"200": 1}, result


def test_ten_thousand_addresses_are_banned_while_the_known_client_is_served(web, attacker, target, legit, variables):
    flooders = addresses(variables["botnet_above_rate"])
    before = len(banned(web))
    unit = "botnet-flood-%d" % int(time.time())
    start = time.time()
    # Every address sends 4 requests at once on 4 connections (5r/s burst 1 lets 2 through: 2 rejections,
    # maxretry 2). Pipelined they would be answered one after the other, at the upstream's pace: under the rate.
    attacker.check_output(
        "systemd-run --unit %s -p StandardOutput=file:/root/%s.json %s %s --sources %s --burst 4 --parallel --spread 8 "
        "--concurrency 150 --timeout 4 --duration 60 --legit %s --legit-after 3"
        % (unit, unit, TOOL, target, variables["botnet_above_rate"], legit))
    needed = int(len(flooders) * 0.99)
    reached = None
    while time.time() - start < 45:
        count = int(web.check_output("fail2ban-client status %s | sed -n 's/.*Currently banned:\\s*//p'" % JAIL)) - before
        if count >= needed:
            reached = time.time() - start
            break
        time.sleep(0.5)
    while attacker.run("systemctl is-active --quiet %s" % unit).rc == 0 and time.time() - start < 90:
        time.sleep(1)
    result = json.loads(attacker.check_output("cat /root/%s.json" % unit))
    legit_record = result.pop("legit")
    flood_start = result["start"]
    during = [status for sent, status in legit_record["requests"] if reached is None or sent < reached - (flood_start - start)]
    print("10,000 addresses: 99%% banned after %s s; flood %s; legitimate client during the flood: %d/%d 2xx" % (
        None if reached is None else round(reached, 1), json.dumps(result), sum(s.startswith("2") for s in during), len(during)))
    assert reached is not None and reached <= 30, "99%% of %d addresses not banned within 30 s; fail2ban log: %s" % (
        len(flooders), web.check_output("grep -c ' Ban ' /var/log/fail2ban.log; tail -n 20 /var/log/fail2ban.log"))
    # Every ban fail2ban lists is in the firewall.
    elements = web.check_output("nft list set inet floodguard f2b-%s-v4 | grep -Eo '10\\.1[2-6][0-9]\\.[0-9]+\\.1' | sort -u | wc -l" % JAIL)
    assert int(elements) >= needed
    # Once 99 % were banned the known client got only 2xx.
    after = [status for sent, status in legit_record["requests"] if sent >= reached - (flood_start - start)]
    assert after and all(status.startswith("2") for status in after), after
    per_second = upstream_per_second(web, start)
    assert max(per_second.values()) <= CAP_PER_SECOND, sorted(per_second.items())
