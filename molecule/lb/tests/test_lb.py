# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Behind a load balancer and on two hosts: bans in NGINX stop the real client; sync.yml spreads them.

The tests run in file order: the flood through the LB comes first, the later tests look at its bans.
"""

from __future__ import annotations

import json
import re
import time

import pytest

from conftest import (BAN_SOCKET, JAIL, LB_ALL, LB_PORT, PATH, addresses_by_label, banned, element, flood,
                      main_address, nginx_bans, probe, run_playbook, wait_until)

FORGED = "198.51.100.77"


def url(hosts, port, role="lb"):
    return "http://%s:%d%s" % (main_address(hosts[role]), port, PATH)


@pytest.fixture(scope="module")
def attackers(hosts):
    found = addresses_by_label(hosts["attacker"], "*:flood")
    assert len(found) >= 21, found
    return found


def test_management_is_local_only(hosts):
    for role in ("web1", "web2"):
        web = hosts[role]
        directory = web.file(BAN_SOCKET.rsplit("/", 1)[0])
        assert directory.is_directory and directory.user == "root" and directory.mode == 0o700
        listening = web.check_output("ss -Hltnp | grep nginx || true")
        ports = sorted(set(re.findall(r":(\d+)\s", listening)))
        assert ports == ["80"], "NGINX listens on TCP ports %s; only 80 is expected:\n%s" % (ports, listening)


def test_flood_through_the_lb_bans_every_attacker(hosts, attackers):
    client = hosts["client"]
    # The legitimate client calls through the LB (both web hosts) during the whole flood, below the rate.
    client.run("nohup python3 /usr/local/bin/floodguard-flood %s --source %s --requests 40 --duration 30 "
               "--concurrency 1 --rate 2 > /tmp/legit.json 2>&1 &", url(hosts, LB_ALL), main_address(client))
    started = time.monotonic()
    report = flood(hosts["attacker"], url(hosts, LB_PORT["web1"]), attackers[:20], 60, 20, concurrency=2)
    _everyone, waited = wait_until("every attacker banned on web1",
                                   lambda: set(attackers[:20]) <= banned(hosts["web1"]) and banned(hosts["web1"]))
    print("\nflood through the LB: %s; all 20 banned %.1f s after the flood started (%.1f s after it ended)"
          % (report["totals"], time.monotonic() - started, waited))
    held = nginx_bans(hosts["web1"])
    assert set(element(address) for address in attackers[:20]) <= held, "NGINX does not hold every ban: %s" % held


def test_a_banned_attacker_below_the_rate_gets_no_2xx(hosts, attackers):
    for source, result in probe(hosts["attacker"], url(hosts, LB_PORT["web1"]), attackers[:20]).items():
        assert result["served"] == 0, "%s, banned, was served through the LB: %s" % (source, result)
        assert result["statuses"].get("403", 0) == result["sent"], result


def test_the_legitimate_client_sees_only_2xx(hosts):
    client = hosts["client"]
    _ended, waited = wait_until("the legitimate client's run ends",
                                lambda: client.run("pgrep -f '[f]loodguard-flood'").rc != 0, deadline_s=40)
    report = json.loads(client.check_output("cat /tmp/legit.json"))
    print("\nlegitimate client through the LB (%.0f s after the flood tests): %s" % (waited, report["totals"]))
    assert report["totals"]["sent"] == 40 and report["totals"]["served"] == 40, report["totals"]
    assert main_address(client) not in banned(hosts["web1"]) | banned(hosts["web2"])


def test_the_lb_is_never_banned(hosts):
    lb = main_address(hosts["lb"])
    # The LB's own requests (health checks, and this burst) are never limited: it is allowlisted.
    statuses = hosts["lb"].check_output(
        "for i in $(seq 30); do curl -s -o /dev/null -w '%%{http_code} ' http://%s%s; done", main_address(hosts["web1"]), PATH)
    assert set(statuses.split()) == {"200"}, statuses
    for role in ("web1", "web2"):
        for jail in ("nginx-req-limit", "manual"):
            assert lb not in banned(hosts[role], jail)
        assert element(lb) not in nginx_bans(hosts[role])
        # Not even for a while: fail2ban's log has no ban of it, in any jail, since the flood began.
        ever = hosts[role].run("grep -c ' Ban %s$' /var/log/fail2ban.log", lb)
        assert ever.stdout.strip() == "0", "%s was banned on %s at some point:\n%s" % (lb, role, ever.stdout)


def test_a_forged_x_forwarded_for_through_the_lb_changes_nothing(hosts):
    # HAProxy appends the real client to the forged header; NGINX trusts the LB's hop only, so the client's
    # own address is limited and banned (on web2, which this address never reached before).
    client, web2 = hosts["client"], hosts["web2"]
    (direct,) = addresses_by_label(client, "*:direct")
    statuses = client.check_output(
        "for i in $(seq 40); do curl -s -m 1 -o /dev/null -w '%%{http_code} ' --interface %s -H 'X-Forwarded-For: %s' "
        "%s; done; true", direct, FORGED, url(hosts, LB_PORT["web2"]))
    assert "429" in statuses.split(), "the client behind the LB was not limited on its own address: %s" % statuses
    wait_until("the forging client banned on web2", lambda: direct in banned(web2))
    assert FORGED not in banned(web2) and element(FORGED) not in nginx_bans(web2)
    assert element(direct) in nginx_bans(web2)


def test_a_forged_x_forwarded_for_changes_nothing(hosts):
    client, web1 = hosts["client"], hosts["web1"]
    (direct,) = addresses_by_label(client, "*:direct")
    statuses = client.check_output(
        "for i in $(seq 40); do curl -s -m 1 -o /dev/null -w '%%{http_code} ' --interface %s -H 'X-Forwarded-For: %s' "
        "http://%s%s; done; true", direct, FORGED, main_address(web1), PATH)
    assert "429" in statuses.split(), "the direct client was not limited on its own address: %s" % statuses
    wait_until("the direct client banned on web1", lambda: direct in banned(web1))
    for role in ("web1", "web2"):
        assert FORGED not in banned(hosts[role])
        assert element(FORGED) not in nginx_bans(hosts[role])


def test_no_client_reachable_path_changes_a_ban(hosts, attackers):
    attacker, web1 = hosts["attacker"], hosts["web1"]
    before = nginx_bans(web1)
    for target in (url(hosts, LB_PORT["web1"]).rsplit("/api", 1)[0], "http://%s" % main_address(web1)):
        for path in ("/remove", "/flush", "/add", "/list", "/count"):
            # Slowly (below the rate): this address must stay unbanned for the ban.yml test. The management
            # server's name in Host: it listens on the unix socket only, so port 80 never routes there.
            attacker.run("curl -s -m 2 -o /dev/null --interface %s -H 'Host: floodguard-ban' -X POST "
                         "--data-binary '%s' '%s%s?jail=%s'; sleep 0.4",
                         attackers[20], element(attackers[0]) + "\n" + element(attackers[20]), target, path, JAIL)
    assert nginx_bans(web1) == before
    assert element(attackers[20]) not in before


def test_bans_survive_nginx_and_fail2ban_restarts(hosts, attackers):
    web1 = hosts["web1"]
    web1.check_output("systemctl restart nginx")
    assert set(element(address) for address in attackers[:20]) <= nginx_bans(web1)
    web1.check_output("systemctl restart fail2ban")
    wait_until("bans restored in NGINX after fail2ban restarted",
               lambda: set(element(address) for address in attackers[:20]) <= nginx_bans(web1))
    result = probe(hosts["attacker"], url(hosts, LB_PORT["web1"]), attackers[:2], requests=1)
    assert all(value["served"] == 0 for value in result.values()), result


def test_sync_spreads_bans_to_every_host(hosts, attackers):
    web2 = hosts["web2"]
    # web2 has never seen the attacker misbehave, and serves it below the rate.
    assert not set(attackers[:20]) & banned(web2)
    before = probe(hosts["attacker"], url(hosts, LB_PORT["web2"]), attackers[:1], requests=1)
    assert all(value["served"] == 1 for value in before.values()), before
    run_playbook("sync.yml", "--check")
    assert not set(attackers[:20]) & banned(web2), "check mode changed web2"
    started = time.monotonic()
    out = run_playbook("sync.yml")
    print("\nsync.yml on 2 hosts took %.1f s" % (time.monotonic() - started))
    assert set(attackers[:20]) <= banned(web2)
    for source, result in probe(hosts["attacker"], url(hosts, LB_PORT["web2"]), attackers[:20], requests=1).items():
        assert result["served"] == 0, "%s was served by web2 after sync.yml: %s" % (source, result)
    again = run_playbook("sync.yml")
    assert re.search(r"changed=0", again) and not re.search(r"changed=[1-9]", again), again[-3000:]
    assert "ok=" in out


def test_ban_and_unban_playbooks_act_on_every_host(hosts, attackers):
    spare = attackers[20]  # never flooded: banned by hand only
    run_playbook("ban.yml", "-e", "jail=manual", "-e", "ips=%s" % spare)
    for role in ("web1", "web2"):
        assert spare in banned(hosts[role], "manual")
        result = probe(hosts["attacker"], url(hosts, LB_PORT[role]), [spare], requests=1)[spare]
        assert result["served"] == 0 and result["statuses"].get("403") == 1, (role, result)
    run_playbook("unban.yml", "-e", "jail=manual", "-e", "ips=%s" % spare)
    for role in ("web1", "web2"):
        assert spare not in banned(hosts[role], "manual")
        result = probe(hosts["attacker"], url(hosts, LB_PORT[role]), [spare], requests=1)[spare]
        assert result["served"] == 1, (role, result)


def test_ten_bans_of_one_24_ban_the_prefix_inside_nginx(hosts):
    # Prefix escalation (fail2ban_escalation_*, K = 10) with NGINX as the ban back end: the /24 is banned
    # through the jail, NGINX holds it, and a new address of it is refused through the LB at once.
    web1, attacker, lb = hosts["web1"], hosts["attacker"], hosts["lb"]
    banned_ones = ["203.0.113.%d" % index for index in range(1, 11)]
    newcomer = "203.0.113.99"
    attacker.check_output("ip addr replace %s/32 dev lo", newcomer)
    lb.check_output("ip route replace 203.0.113.0/24 via %s", main_address(attacker))
    try:
        # One argument per address (testinfra would quote a joined string as one).
        web1.check_output("fail2ban-client set %s banip %s" % (JAIL, " ".join(banned_ones)))
        wait_until("the /24 banned by escalation", lambda: "203.0.113.0/24" in banned(web1))
        wait_until("the /24 held by NGINX", lambda: element("203.0.113.0/24") in nginx_bans(web1))
        result = probe(attacker, url(hosts, LB_PORT["web1"]), [newcomer], requests=1)[newcomer]
        assert result["served"] == 0 and result["statuses"].get("403") == 1, result
    finally:
        web1.run("fail2ban-client set %s unbanip 203.0.113.0/24 %s" % (JAIL, " ".join(banned_ones)))
        lb.run("ip route del 203.0.113.0/24")
        attacker.run("ip addr del %s/32 dev lo", newcomer)
