"""A ban that fail2ban lists always drops: each way of breaking a ban back end, then the bans hold again.

The tests run in file order. The first bans one client address in each jail (manual: nftables,
nginx-req-limit-ipt: iptables-multiport, nginx-ban: NGINX only), with documentation addresses
around them; every fault is then a test of its own: break the back end, poll (with a deadline, not a
timed assertion) until the bans hold again, while the client's own address requests throughout and
must never be blocked. The status playbook's alarm and a reboot (container restart) come last.
"""

import os
import re
import subprocess
import time

import pytest
import testinfra

testinfra_hosts = ["ansible://web"]

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
WEB_CONTAINER = "fg-heal-%s-web" % os.environ.get("MOLECULE_DISTRO", "bookworm")
NFT_JAIL, IPT_JAIL, NGINX_JAIL = "manual", "nginx-req-limit-ipt", "nginx-ban"
# The action of each jail that answers `enforced`.
ENFORCING_ACTION = {NFT_JAIL: "floodguard_nftables", IPT_JAIL: "floodguard_watch", NGINX_JAIL: "floodguard_nginx"}
# Documentation addresses (RFC 2544 benchmark range): ban list entries only, no traffic goes to them.
BULK = {
    NFT_JAIL: ["198.18.%d.%d" % (i // 200, i % 200 + 1) for i in range(2000)],
    # Fewer than fail2ban_escalation_threshold (10) per /24 in these jails of fail2ban_jails: prefix
    # escalation stays out of the counts.
    IPT_JAIL: ["198.19.%d.1" % i for i in range(100)],
    NGINX_JAIL: ["198.19.%d.%d" % (100 + i // 2, i % 2 + 1) for i in range(200)],
}
# Seconds within which a fault must be healed: the watch reacts in a fraction of a second, the NGINX
# count check within its checkinterval (5 s).
HEAL_BOUND = 20
F2B_LOG = "/var/log/fail2ban.log"
NGINX_LOG = "/var/log/nginx/error.log"
BAN_SOCKET = "/run/floodguard-nginx/ban.sock"
BAN_CONF = "/etc/nginx/conf.d/floodguard-ban.conf"
PATH = "/api/ping"


@pytest.fixture(scope="module")
def client(request):
    return testinfra.get_hosts(["client"], connection="ansible", ansible_inventory=request.config.option.ansible_inventory)[0]


def addresses(host):
    return [line.split()[3].split("/")[0] for line in host.check_output("ip -4 -o addr show dev eth0").splitlines()]


@pytest.fixture(scope="module")
def network(host, client):
    own = addresses(client)
    prefix = own[0].rsplit(".", 1)[0]
    return {"web": addresses(host)[0], "legit": own[0], NFT_JAIL: prefix + ".210", IPT_JAIL: prefix + ".211", NGINX_JAIL: prefix + ".212"}


def request_from(client, network, source):
    """HTTP status of one request from source ('000' when refused), or None when the packets are dropped."""
    result = client.run("curl -s -o /dev/null -w '%%{http_code}' --max-time 1 --interface %s http://%s%s", source, network["web"], PATH)
    return None if result.rc == 28 else result.stdout.strip()


def enforced(host):
    """{jail: the jail's action's word on whether its back end holds every ban}."""
    return dict((jail, host.run("fail2ban-client get %s action %s enforced", jail, action).stdout.strip())
                for jail, action in ENFORCING_ACTION.items())


def every_ban_holds(host, client, network):
    """Each action says enforced, the firewall drops its two jails' addresses and NGINX refuses the third's."""
    return (set(enforced(host).values()) == {"True"}
            and request_from(client, network, network[NFT_JAIL]) is None
            and request_from(client, network, network[IPT_JAIL]) is None
            and request_from(client, network, network[NGINX_JAIL]) == "403")


def wait_for(probe, bound=HEAL_BOUND):
    """Seconds until probe() held; fails after bound seconds."""
    start = time.monotonic()
    while not probe():
        assert time.monotonic() - start < bound, "not reached within %s s" % bound
        time.sleep(0.2)
    return time.monotonic() - start


def log_size(host, path):
    return int(host.check_output("stat -c %%s %s", path))


def new_lines(host, path, since, phrase):
    text = host.check_output("tail -c +%s %s", str(since + 1), path)
    return [line for line in text.splitlines() if phrase in line]


class LegitTraffic:
    """The client's own address requesting once a second in the background, below the rate limit."""

    def __init__(self, client, network, refused_allowed=False):
        self.client = client
        self.network = network
        # An NGINX restart refuses connections for a moment: that is the fault, not a block.
        self.refused_allowed = refused_allowed

    def __enter__(self):
        self.client.run("rm -f /tmp/legit.log")
        # Bounded in count and time; stopped by __exit__. Each line: HTTP status, curl's exit status.
        self.client.run(
            "nohup timeout 120 sh -c 'for i in $(seq 120); do code=$(curl -s -o /dev/null -w \"%%{http_code}\" --max-time 2 "
            "--interface %s http://%s%s); echo \"$code $?\" >> /tmp/legit.log; sleep 1; done' >/dev/null 2>&1 & "
            "echo $! > /tmp/legit.pid", self.network["legit"], self.network["web"], PATH)
        return self

    def __exit__(self, *exc):
        time.sleep(1.5)
        self.client.run("kill $(cat /tmp/legit.pid) 2>/dev/null || true")
        results = [tuple(line.split()) for line in self.client.check_output("cat /tmp/legit.log || true").splitlines() if line.strip()]
        assert results, "the legitimate client made no request"
        # Refused (7), or cut by the restart (52: empty reply, 56: reset), never dropped (28) or refused by NGINX.
        allowed = {("200", "0")} | (set(("000", rc) for rc in ("7", "52", "56")) if self.refused_allowed else set())
        assert set(results) <= allowed, "the legitimate client was blocked or refused: %s" % results
        assert ("200", "0") in results
        return False


def test_bans_hold_in_every_back_end(host, client, network):
    assert request_from(client, network, network[NFT_JAIL]) == "200"
    for jail, bulk in sorted(BULK.items()):
        # One argument per address (testinfra would quote a joined list as one).
        host.check_output("fail2ban-client set %s banip %s" % (jail, " ".join([network[jail]] + bulk)))
    wait_for(lambda: every_ban_holds(host, client, network), bound=60)
    assert request_from(client, network, network["legit"]) == "200"


# Faults of the firewall: the netlink watch of nftables commits heals them.
FIREWALL_FAULTS = {
    "nftables-restart": "systemctl restart nftables",
    "nftables-reload": "systemctl reload nftables",
    "nft-flush-ruleset": "nft flush ruleset",
    "nft-delete-table": "nft delete table inet floodguard",
    # A set in use cannot be deleted: its rules go first, in one transaction, as an admin would have to.
    "nft-delete-set": "printf 'flush chain inet floodguard f2b-manual\\ndelete set inet floodguard f2b-manual-v4\\n' | nft -f -",
    "iptables-flush-chain": "iptables -w -F f2b-nginx-req-limit-ipt",
    "iptables-flush-all": "iptables -w -F",
}


@pytest.mark.parametrize("fault", sorted(FIREWALL_FAULTS))
def test_firewall_bans_drop_again_after(host, client, network, fault):
    since = log_size(host, F2B_LOG)
    with LegitTraffic(client, network):
        # The fault and, in the same breath, the actions' word on it (if the watch is not faster).
        during = host.run("%s && fail2ban-client get %s action floodguard_nftables enforced && "
                          "fail2ban-client get %s action floodguard_watch enforced" % (FIREWALL_FAULTS[fault], NFT_JAIL, IPT_JAIL))
        assert during.rc == 0, during.stderr
        healed_in = wait_for(lambda: every_ban_holds(host, client, network))
    lines = new_lines(host, F2B_LOG, since, "were not enforced")
    print("\n%s: enforced right after the fault (nftables, iptables): %s; healed within %.1f s; %s"
          % (fault, " ".join(during.stdout.split()), healed_in, lines))
    assert lines, "no heal was logged"
    # Once per jail and firewall flush: a restart of nftables.service flushes twice (stop, then start).
    jails = [re.search(r"\[([^\]]+)\] bans were not enforced", line).group(1) for line in lines]
    flushes = 2 if fault == "nftables-restart" else 1
    assert all(jails.count(jail) <= flushes for jail in jails), lines
    assert all("changed by" in line for line in lines), lines


def nginx_heal_lines(host, since):
    """NGINX's lines on loading the state files since `since` (log offset, journal time): the error log
    holds them, or, while NGINX is between configurations, its journal."""
    offset, started = since
    lines = new_lines(host, NGINX_LOG, offset, "the ban list was empty")
    journal = host.check_output("journalctl -u nginx --since @%s --no-pager -o cat", str(int(started)))
    found = lines + [line for line in journal.splitlines() if "the ban list was empty" in line]
    # The message itself: a line in both places is one heal.
    return sorted(set(line[line.index("floodguard:"):] for line in found))


def nginx_since(host):
    return log_size(host, NGINX_LOG), float(host.check_output("date +%s.%N"))


def set_dict_size(host, size):
    host.check_output("sed -i -E 's/^(lua_shared_dict floodguard_bans) [0-9]+m;/\\1 %s;/' %s && nginx -t -q", size, BAN_CONF)


def test_nginx_bans_hold_after_a_restart(host, client, network):
    since = nginx_since(host)
    with LegitTraffic(client, network, refused_allowed=True):
        host.check_output("systemctl restart nginx")
        # Loaded from the state files before the first request: no gap to wait for.
        assert request_from(client, network, network[NGINX_JAIL]) == "403"
        assert enforced(host)[NGINX_JAIL] == "True"
    lines = nginx_heal_lines(host, since)
    print("\nnginx-restart: %s" % lines)
    assert len([line for line in lines if "jail %s " % NGINX_JAIL in line]) == 1, lines
    assert "%d bans of jail %s" % (len(BULK[NGINX_JAIL]) + 1, NGINX_JAIL) in " ".join(lines)


def test_nginx_bans_hold_after_a_reload_that_empties_the_ban_list(host, client, network):
    # A changed dictionary size gives the reloaded NGINX a new, empty dictionary.
    original = host.check_output("grep -oE 'floodguard_bans [0-9]+m' %s", BAN_CONF).split()[1]
    since = nginx_since(host)
    try:
        with LegitTraffic(client, network):
            set_dict_size(host, "%dm" % (int(original[:-1]) + 1))
            host.check_output("systemctl reload nginx")
            healed_in = wait_for(lambda: every_ban_holds(host, client, network))
    finally:
        set_dict_size(host, original)
        host.check_output("systemctl reload nginx")
    lines = nginx_heal_lines(host, since)
    print("\nnginx-reload: healed within %.1f s; %s" % (healed_in, lines))
    assert any("jail %s " % NGINX_JAIL in line for line in lines), lines
    wait_for(lambda: every_ban_holds(host, client, network))


def test_nginx_bans_come_back_after_the_list_is_flushed(host, client, network):
    since = log_size(host, F2B_LOG)
    with LegitTraffic(client, network):
        host.check_output("curl -sf -X POST --unix-socket %s 'http://floodguard-ban/flush?jail=%s'", BAN_SOCKET, NGINX_JAIL)
        # The count check runs every 5 s: the drift is visible meanwhile, unless the check came first.
        during = enforced(host)[NGINX_JAIL]
        served_during = request_from(client, network, network[NGINX_JAIL])
        healed_in = wait_for(lambda: every_ban_holds(host, client, network))
    lines = new_lines(host, F2B_LOG, since, "bans were not enforced in NGINX")
    print("\nnginx-list-flushed: enforced right after: %s, banned client got %s; healed within %.1f s; %s"
          % (during, served_during, healed_in, lines))
    assert len(lines) == 1 and "[%s]" % NGINX_JAIL in lines[0], lines
    assert "it held 0 of the jail's %d bans" % (len(BULK[NGINX_JAIL]) + 1) in lines[0], lines


def run_status_playbook():
    return subprocess.run(["ansible-playbook", "-i", INVENTORY, os.path.join(REPO, "playbooks", "status.yml"), "-e", "target=web"],
                          capture_output=True, text=True, check=False, env=dict(os.environ, ANSIBLE_FORCE_COLOR="0"))


def test_status_reports_every_jail_enforced():
    done = run_status_playbook()
    assert done.returncode == 0, done.stdout + done.stderr
    for jail in ENFORCING_ACTION:
        assert re.search(r"%s\s.*\benforced\b" % re.escape(jail), done.stdout), done.stdout


def test_status_fails_loudly_while_a_ban_is_not_enforced(host, client, network):
    # Another tool takes the jail's chain name in the table with a chain the action cannot turn into
    # its base chain: the repair fails, and the drift must show until the name is free again.
    since = log_size(host, F2B_LOG)
    # One transaction, so that the watch cannot heal in between.
    host.check_output("printf 'flush ruleset\\nadd table inet floodguard\\nadd chain inet floodguard f2b-manual\\n' | nft -f -")
    try:
        time.sleep(1)
        done = run_status_playbook()
        assert done.returncode != 0, done.stdout
        assert "NOT ENFORCED" in done.stdout + done.stderr, done.stdout
        assert re.search(r"NOT ENFORCED:\s+%d missing" % (len(BULK[NFT_JAIL]) + 1), done.stdout), done.stdout
        assert network[NFT_JAIL] in done.stdout or any(address in done.stdout for address in BULK[NFT_JAIL]), done.stdout
        assert host.check_output("fail2ban-client get %s action floodguard_nftables enforced", NFT_JAIL) == "False"
        assert host.file(F2B_LOG).contains("the repair failed")
    finally:
        host.check_output("nft delete table inet floodguard")
    wait_for(lambda: every_ban_holds(host, client, network))
    failures = new_lines(host, F2B_LOG, since, "the repair failed")
    assert len(failures) == 1, "a failed repair is logged once, not at every retry: %s" % failures


def test_bans_drop_before_nginx_serves_after_a_reboot(host, client, network):
    # The container shares the machine's kernel, so `journalctl -b` also holds the boots before this
    # restart: read the journal from the restart on.
    restarted = int(time.time()) - 1
    subprocess.run(["docker", "restart", WEB_CONTAINER], check=True, capture_output=True)
    # Not the exit status: a docker exec into a container still restarting fails with 1 too.
    wait_for(lambda: host.run("systemctl is-system-running --wait").stdout.strip() in ("running", "degraded"), bound=120)
    # NGINX started only after fail2ban's start, which waits for the restored bans to be enforced.
    fail2ban_active = int(host.check_output("systemctl show -P ActiveEnterTimestampMonotonic fail2ban"))
    nginx_started = int(host.check_output("systemctl show -P InactiveExitTimestampMonotonic nginx"))
    assert 0 < fail2ban_active <= nginx_started, (fail2ban_active, nginx_started)
    journal = host.check_output("journalctl -u fail2ban --since @%s --no-pager -o cat", str(restarted))
    restored = re.search(r"every jail enforces its (\d+) restored bans", journal)
    assert restored, journal
    database = host.run("python3 -c \"import sqlite3; print(sqlite3.connect('/var/lib/fail2ban/fail2ban.sqlite3')"
                        ".execute('SELECT jail, count(*), min(timeofban + bantime) FROM bips GROUP BY jail').fetchall())\"")
    assert int(restored.group(1)) >= sum(len(bulk) + 1 for bulk in BULK.values()), (journal, database.stdout, database.stderr)
    assert every_ban_holds(host, client, network)
    assert request_from(client, network, network["legit"]) == "200"
    # nftables.service flushed the ruleset at boot before fail2ban started: its table is there.
    assert "table inet filter" in host.check_output("nft list tables")
