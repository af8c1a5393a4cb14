"""floodguard.shield.fail2ban on a real host: NGINX rejections ban the flooding client at the firewall.

The tests run in file order and build on each other: the allowlisted client floods first and is never
banned, then the attacker floods and is banned (by nftables and, in a second jail, by iptables), bans
survive a restart, a configuration fail2ban rejects changes nothing, and finally each firewall path is
lifted on its own.
"""

import ipaddress
import json
import os
import re
import subprocess
import time

import pytest
import testinfra
import yaml

testinfra_hosts = ["ansible://web"]

SCENARIO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPECTED_JAILS = {"sshd", "nginx-req-limit", "nginx-req-limit-ipt", "manual", "recidive"}
MANUAL_BANS = ("203.0.113.7", "2001:db8::7")
# Enough for fail2ban_ban's bulk path (1,000 and more): RFC 2544 benchmark addresses, never a client here.
BULK_BANS = frozenset(str(ipaddress.ip_address("198.18.0.1") + i) for i in range(2000))
IPV4_IN_TEXT = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b")
# A network banned through the default (nftables) action, and an address of it that a client sends from.
BANNED_NETWORK = ("198.51.100.0/24", "198.51.100.9")
# Files the role manages, from its own list: a rejected configuration must leave them exactly as they were.
ROLE_VARS = os.path.join(SCENARIO_DIR, "..", "..", "roles", "fail2ban", "vars", "main.yml")
with open(ROLE_VARS, encoding="utf-8") as role_vars:
    MANAGED_FILES = tuple("/etc/fail2ban/" + entry["path"] for entry in yaml.safe_load(role_vars)["__fail2ban_role_files"])


def _client(request, group):
    return testinfra.get_hosts([group], connection="ansible", ansible_inventory=request.config.option.ansible_inventory)[0]


@pytest.fixture(scope="module")
def attacker(request):
    return _client(request, "attacker")


@pytest.fixture(scope="module")
def allowed(request):
    return _client(request, "allowed")


def ipv4(host):
    return host.check_output("ip -4 -o addr show dev eth0").split()[3].split("/")[0]


def banned(host, jail):
    output = host.check_output("fail2ban-client status %s" % jail)
    line = [row for row in output.splitlines() if "Banned IP list:" in row][0]
    return set(line.split(":", 1)[1].split())


def jail_list(host):
    output = host.check_output("fail2ban-client status")
    line = [row for row in output.splitlines() if "Jail list:" in row][0]
    return set(name.strip() for name in line.split(":", 1)[1].split(","))


def wait_for(condition, seconds=30):
    """True once condition() holds; a failing command counts as not yet (fail2ban is still starting)."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            if condition():
                return True
        except AssertionError:
            pass
        time.sleep(0.5)
    return condition()


def flood(client, web_ip, requests=40):
    """HTTP status codes of a bounded burst: one curl, 10 requests at a time, 2 s each at most (000: no answer).

    One process rather than a loop of curls, so that the burst beats 5 r/s + 5 even on a loaded machine.
    """
    command = ("curl -s -o /dev/null -w '%%{http_code}\\n' --max-time 2 --parallel --parallel-max 10 "
               "'http://%s/?flood=[1-%d]'" % (web_ip, requests))
    return client.run(command).stdout.split()


def can_connect(client, web_ip):
    return client.run("curl -s -o /dev/null --max-time 3 http://%s/" % web_ip).rc == 0


def can_connect_from(client, source_ip, web_ip):
    return client.run("curl -s -o /dev/null --max-time 3 --interface %s http://%s/" % (source_ip, web_ip)).rc == 0


def nft_set(host, name):
    """The listing of one of floodguard_nftables.py's sets, e.g. f2b-manual-v6."""
    return host.check_output("nft list set inet floodguard %s" % name)


def nft_ipv4(host, name):
    """The IPv4 elements of one of floodguard_nftables.py's sets."""
    return set(IPV4_IN_TEXT.findall(nft_set(host, name)))


def stored_bans(host, jail):
    """The addresses fail2ban's database holds as banned in a jail (what a restart restores)."""
    query = "import sqlite3; print(*(row[0] for row in sqlite3.connect('/var/lib/fail2ban/fail2ban.sqlite3')" \
            ".execute('SELECT ip FROM bips WHERE jail = ?', (%r,))))" % jail
    return set(host.check_output("python3 -c %s" % json.dumps(query)).split())


def fail2ban_ban(host, check, **args):
    """floodguard.shield.fail2ban_ban on the web host, as an ad-hoc task (check mode or not); its result."""
    return host.ansible("floodguard.shield.fail2ban_ban", " ".join("%s=%s" % item for item in args.items()), check=check)


def managed_state(host):
    return {path: host.file(path).sha256sum if host.file(path).exists else None for path in MANAGED_FILES}


def leftover_backups(host):
    return host.check_output("find /etc/fail2ban -name '*~' -o -name '*.floodguard-removed~'").split()


def fail2ban_pid(host):
    return host.check_output("systemctl show -p MainPID --value fail2ban")


def converge(request, extra_vars):
    """Runs converge.yml again with extra variables; returns (rc, output)."""
    result = subprocess.run(
        ["ansible-playbook", "-i", request.config.option.ansible_inventory, os.path.join(SCENARIO_DIR, "converge.yml"),
         "-e", json.dumps(extra_vars)],
        capture_output=True, text=True, check=False, timeout=300,
    )
    return result.returncode, result.stdout + result.stderr


def test_fail2ban_runs_every_configured_jail(host):
    assert host.service("fail2ban").is_running
    assert host.service("fail2ban").is_enabled
    assert jail_list(host) == EXPECTED_JAILS


def test_configuration_lives_in_drop_in_files(host):
    # jail.conf is the package's: dpkg reports no change to it.
    assert "/etc/fail2ban/jail.conf" not in host.run("dpkg --verify fail2ban").stdout
    jails = host.file("/etc/fail2ban/jail.d/floodguard.local").content_string
    assert "[nginx-req-limit]" in jails and "findtime = 5" in jails and "maxretry = 2" in jails
    actions = host.file("/etc/fail2ban/jail.d/floodguard-banactions.local").content_string
    assert 'floodguard_nftables.py[name=nginx-req-limit, port="http,https", ' in actions
    assert "iptables-multiport[name=nginx-req-limit-ipt, " in actions
    assert "blocktype=drop" in actions
    assert "blocktype = DROP" in host.file("/etc/fail2ban/action.d/iptables.local").content_string


def test_database_keeps_bans_as_long_as_the_manual_jail(host):
    # 30 days: the manual jail's ban time, the longest one configured.
    assert "2592000" in host.check_output("fail2ban-client get dbpurgeage")


def test_allowlist_holds_loopback_the_host_and_the_users_networks(host, allowed):
    ignored = host.check_output("fail2ban-client get nginx-req-limit ignoreip")
    for address in ("127.0.0.0/8", ipv4(host), ipv4(allowed), "2001:db8:f00d::/48"):
        assert address in ignored


def test_allowlisted_client_flooding_is_never_banned(host, allowed):
    web_ip, client_ip = ipv4(host), ipv4(allowed)
    codes = flood(allowed, web_ip)
    # NGINX rejected it, and fail2ban saw the rejections and ignored them.
    assert "429" in codes and "000" not in codes, codes
    assert wait_for(lambda: "Ignore %s by ip" % client_ip in host.file("/var/log/fail2ban.log").content_string)
    time.sleep(2)
    for jail in EXPECTED_JAILS:
        assert client_ip not in banned(host, jail)
    assert can_connect(allowed, web_ip)


def test_flood_from_a_second_container_is_banned(host, attacker):
    web_ip, attacker_ip = ipv4(host), ipv4(attacker)
    assert can_connect(attacker, web_ip)
    codes = flood(attacker, web_ip)
    assert "429" in codes, codes
    assert wait_for(lambda: attacker_ip in banned(host, "nginx-req-limit") and attacker_ip in banned(host, "nginx-req-limit-ipt"))
    # Each jail has its own set (nftables) or chain (iptables), holding the attacker.
    assert wait_for(lambda: attacker_ip in nft_set(host, "f2b-nginx-req-limit-v4"))
    chain = host.check_output("iptables -S f2b-nginx-req-limit-ipt")
    assert "-s %s/32 -j DROP" % attacker_ip in chain
    assert not can_connect(attacker, web_ip)


def test_iptables_drops_ipv6_too(host):
    host.run_test("fail2ban-client set nginx-req-limit-ipt banip 2001:db8::66")
    try:
        assert "-s 2001:db8::66/128 -j DROP" in host.check_output("ip6tables -S f2b-nginx-req-limit-ipt")
    finally:
        host.run_test("fail2ban-client set nginx-req-limit-ipt unbanip 2001:db8::66")


def test_manual_jail_bans_only_on_request(host):
    assert banned(host, "manual") == set()
    for address in MANUAL_BANS:
        host.run_test("fail2ban-client set manual banip %s" % address)
    assert banned(host, "manual") == set(MANUAL_BANS)
    assert wait_for(lambda: "203.0.113.7" in nft_set(host, "f2b-manual-v4") and "2001:db8::7" in nft_set(host, "f2b-manual-v6"))


def test_a_ban_of_an_allowlisted_address_does_not_block_it(host, allowed):
    # fail2ban-client set JAIL banip ignores ignoreip; the firewall rule still lets the address through.
    web_ip, client_ip = ipv4(host), ipv4(allowed)
    host.run_test("fail2ban-client set manual banip %s" % client_ip)
    try:
        assert client_ip in banned(host, "manual")
        assert wait_for(lambda: client_ip in nft_set(host, "f2b-manual-v4"))
        assert can_connect(allowed, web_ip)
    finally:
        host.run_test("fail2ban-client set manual unbanip %s" % client_ip)
    assert wait_for(lambda: client_ip not in nft_set(host, "f2b-manual-v4"))


def test_a_banned_network_is_dropped_by_the_default_action(host, attacker):
    # A CIDR ban through fail2ban reaches the action's interval set, and the firewall drops a client of that
    # network: the attacker sends from an address of it, the web host routes the answers back through it.
    web_ip, attacker_ip = ipv4(host), ipv4(attacker)
    network, client = BANNED_NETWORK
    attacker.run_test("ip addr add %s/32 dev eth0" % client)
    host.run_test("ip route add %s via %s dev eth0" % (network, attacker_ip))
    try:
        assert can_connect_from(attacker, client, web_ip)
        host.run_test("fail2ban-client set manual banip %s" % network)
        assert network in banned(host, "manual")
        assert wait_for(lambda: network in nft_set(host, "f2b-manual-v4net"))
        assert not can_connect_from(attacker, client, web_ip)
        host.run_test("fail2ban-client set manual unbanip %s" % network)
        assert wait_for(lambda: network not in nft_set(host, "f2b-manual-v4net"))
        assert can_connect_from(attacker, client, web_ip)
    finally:
        host.run("fail2ban-client set manual unbanip %s" % network)
        host.run("ip route del %s" % network)
        attacker.run("ip addr del %s/32 dev eth0" % client)


def test_a_bulk_ban_is_listed_enforced_and_stored(host):
    # 2,000 addresses in one task take the bulk path: one call, fail2ban's tickets, database and firewall at once.
    before = banned(host, "manual")
    ips = ",".join(sorted(BULK_BANS))
    log_lines = int(host.check_output("wc -l < /var/log/fail2ban.log"))
    checked = fail2ban_ban(host, True, jail="manual", ips=ips)
    assert checked["changed"] and checked["added_count"] == len(BULK_BANS) and checked["bulk"] is False
    assert banned(host, "manual") == before
    applied = fail2ban_ban(host, False, jail="manual", ips=ips)
    assert applied["changed"] and applied["bulk"] is True and applied["batches"] == 1
    assert applied["added_count"] == len(BULK_BANS) and applied["banned_count"] == len(before) + len(BULK_BANS)
    assert banned(host, "manual") == before | BULK_BANS
    # Written before fail2ban listed them: no wait.
    assert BULK_BANS <= nft_ipv4(host, "f2b-manual-v4")
    assert BULK_BANS <= stored_bans(host, "manual")
    log = host.check_output("tail -n +%s /var/log/fail2ban.log", str(log_lines + 1))
    assert "[manual] Ban %d addresses in bulk" % len(BULK_BANS) in log and "Ban 198.18.0.9\n" not in log
    assert not fail2ban_ban(host, True, jail="manual", ips=ips)["changed"]
    assert not fail2ban_ban(host, False, jail="manual", ips=ips)["changed"]


def test_bans_survive_a_restart(host, attacker):
    web_ip, attacker_ip = ipv4(host), ipv4(attacker)
    before = {jail: banned(host, jail) for jail in ("nginx-req-limit", "nginx-req-limit-ipt", "manual")}
    log_lines = int(host.check_output("wc -l < /var/log/fail2ban.log"))
    host.run_test("systemctl restart fail2ban")
    assert before["manual"] == set(MANUAL_BANS) | BULK_BANS
    assert wait_for(lambda: jail_list(host) == EXPECTED_JAILS and banned(host, "manual") == before["manual"])
    assert wait_for(lambda: {jail: banned(host, jail) for jail in before} == before)
    assert wait_for(lambda: attacker_ip in nft_set(host, "f2b-nginx-req-limit-v4")
                    and BULK_BANS | {"203.0.113.7"} <= nft_ipv4(host, "f2b-manual-v4")
                    and "2001:db8::7" in nft_set(host, "f2b-manual-v6"))
    assert "-s %s/32 -j DROP" % attacker_ip in host.check_output("iptables -S f2b-nginx-req-limit-ipt")
    assert not can_connect(attacker, web_ip)
    # The nftables action put the bans in its sets as it started, with fail2ban's restore rules: fail2ban
    # then restored every one of them (this fail2ban's API is the one the action reads).

    def since_restart():
        return host.check_output("tail -n +%s /var/log/fail2ban.log", str(log_lines + 1))

    assert wait_for(lambda: "[manual] floodguard_nftables: fail2ban's restore is over" in since_restart())
    log = since_restart()
    assert "[manual] floodguard_nftables: %d bans from fail2ban's database in nftables" % len(before["manual"]) in log
    assert "did not restore" not in log


def test_a_bulk_ban_is_lifted_in_one_task(host):
    lifted = fail2ban_ban(host, False, jail="manual", ips=",".join(sorted(BULK_BANS)), state="absent")
    assert lifted["changed"] and lifted["removed_count"] == len(BULK_BANS)
    assert banned(host, "manual") == set(MANUAL_BANS)
    assert wait_for(lambda: not BULK_BANS & nft_ipv4(host, "f2b-manual-v4"))
    assert not BULK_BANS & stored_bans(host, "manual")


@pytest.mark.parametrize(
    "extra_vars, message",
    [
        # Input the role refuses before touching the host.
        ({"scenario_extra_jails": [{"name": "bad name[1]", "logpath": "/var/log/nginx/error.log", "findtime": -5, "maxretry": 0}],
          "fail2ban_ignoreip": ["10.0.0.0/33"]},
         ["fail2ban_jails[2] (bad name[1]).name is 'bad name[1]'", "findtime is -5", "maxretry is 0",
          "fail2ban_ignoreip holds '10.0.0.0/33'", "changed nothing"]),
        # A configuration fail2ban-client --test rejects: the log file does not exist.
        ({"scenario_extra_jails": [{"name": "no-log", "filter": "nginx-limit-req", "logpath": "/var/log/nginx/missing.log"}]},
         ["Have not found any log file for no-log jail"]),
        # A filter whose regular expression does not compile (fail2ban-client --test misses it).
        ({"scenario_extra_jails": [{"name": "bad-regex", "filter": "floodguard-broken", "logpath": "/var/log/nginx/error.log"}],
          "scenario_extra_filters": [{"name": "floodguard-broken", "content": "[Definition]\nfailregex = ^(unclosed <HOST>\n"}]},
         ["Unable to compile regular expression"]),
        # A port the nftables action cannot resolve (fail2ban-client --test does not load Python actions).
        ({"scenario_extra_jails": [{"name": "bad-port", "filter": "nginx-limit-req", "logpath": "/var/log/nginx/error.log",
                                    "ports": ["htttp"]}]},
         ["jail bad-port, action floodguard_nftables: port: unknown service name 'htttp'"]),
    ],
    ids=["invalid-input", "rejected-by-fail2ban", "bad-regex", "bad-action-option"],
)
def test_bad_configuration_changes_nothing(request, host, attacker, extra_vars, message):
    files, pid = managed_state(host), fail2ban_pid(host)
    bans = {jail: banned(host, jail) for jail in ("nginx-req-limit", "nginx-req-limit-ipt", "manual")}
    rc, output = converge(request, extra_vars)
    assert rc != 0, output
    for fragment in message:
        assert fragment in output, output
    # Same files, no leftovers, the same fail2ban process with the same jails and bans.
    assert managed_state(host) == files
    assert not host.file("/etc/fail2ban/filter.d/floodguard-broken.local").exists
    assert leftover_backups(host) == []
    assert fail2ban_pid(host) == pid
    assert jail_list(host) == EXPECTED_JAILS
    assert {jail: banned(host, jail) for jail in bans} == bans
    assert ipv4(attacker) in nft_set(host, "f2b-nginx-req-limit-v4")


def test_each_firewall_path_blocks_on_its_own(host, attacker):
    web_ip, attacker_ip = ipv4(host), ipv4(attacker)
    # Lifted from the nftables jail only: the iptables chain still drops it.
    host.run_test("fail2ban-client set nginx-req-limit unbanip %s" % attacker_ip)
    assert wait_for(lambda: attacker_ip not in nft_set(host, "f2b-nginx-req-limit-v4"))
    assert not can_connect(attacker, web_ip)
    # Lifted from the iptables jail too: the attacker gets answers again.
    host.run_test("fail2ban-client set nginx-req-limit-ipt unbanip %s" % attacker_ip)
    assert attacker_ip not in host.check_output("iptables -S f2b-nginx-req-limit-ipt")
    assert can_connect(attacker, web_ip)
    # Nothing else was touched: the manual bans stay.
    assert banned(host, "manual") == set(MANUAL_BANS)
