"""floodguard.shield.nginx_ratelimit on a real NGINX, flooded from real clients.

The web host runs the role with the scenario's settings (molecule.yml group_vars: the proven recipe
zone=one 5r/s burst=5 nodelay, a stricter /api/login, a file-serving /static/, the office allowlisted).
The attacker and office containers send bounded bursts over the scenario's network. The later tests
re-run converge.yml with extra vars: dry run, invalid variables, a config NGINX rejects, real client IPs.
Tests run in file order and build on each other.
"""

import json
import math
import os
import re
import subprocess
import time

import pytest
import testinfra
from testinfra.utils.ansible_runner import AnsibleRunner

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
PLAYBOOK = os.path.join(os.environ["MOLECULE_SCENARIO_DIRECTORY"], "converge.yml")
ERROR_LOG = "/var/log/nginx/error.log"
FILTER = "/etc/fail2ban/filter.d/nginx-limit-req.conf"
MANAGED_FILES = (
    "/etc/nginx/conf.d/floodguard-ratelimit.conf",
    "/etc/nginx/snippets/floodguard-ratelimit.conf",
    "/etc/nginx/sites-available/floodguard-api",
    "/etc/nginx/nginx.conf",
    "/etc/nginx/modules-enabled/90-floodguard-limits.conf",
)
# The scenario's limits (molecule.yml).
RATE, BURST = 5, 5
LOGIN_RATE_PER_SECOND, LOGIN_BURST = 0.5, 2
# Never a real address: what a flooder puts in X-Forwarded-For.
FORGED = "198.51.100.77"
REQUESTS = 20


def _host(group):
    # Molecule's docker driver names each container after its inventory host; docker exec is much
    # faster than a round of Ansible per command.
    name = AnsibleRunner(INVENTORY).get_hosts(group)[0]
    return testinfra.get_host("docker://%s" % name)


@pytest.fixture(scope="module")
def web():
    return _host("web")


@pytest.fixture(scope="module")
def attacker():
    return _host("attacker")


@pytest.fixture(scope="module")
def office():
    return _host("office")


def _address(host):
    return host.check_output("hostname -I").split()[0]


@pytest.fixture(scope="module")
def web_ip(web):
    return _address(web)


@pytest.fixture(scope="module")
def attacker_ip(attacker):
    return _address(attacker)


@pytest.fixture(scope="module")
def office_ip(office):
    return _address(office)


def burst(client, web_ip, path, count=REQUESTS, header=None):
    """Send count requests back to back on one connection; return (status codes, seconds taken)."""
    forged = "-H 'X-Forwarded-For: %s' " % header if header else ""
    out = client.check_output(
        "start=$(date +%%s%%N); curl -s -o /dev/null -w '%%{http_code}\\n' --max-time 5 %s'http://%s%s?n=[1-%d]'; "
        "echo elapsed $(( $(date +%%s%%N) - start ))" % (forged, web_ip, path, count))
    lines = out.split()
    assert lines[-2] == "elapsed"
    return [int(code) for code in lines[:-2]], int(lines[-1]) / 1e9


def log_size(web):
    return int(web.check_output("stat -c %%s %s" % ERROR_LOG))


def log_since(web, offset):
    return web.check_output("tail -c +%d %s" % (offset + 1, ERROR_LOG))


def fail2ban_matches(web, offset):
    """Lines of the error log since offset that fail2ban's own nginx-limit-req filter matches."""
    out = web.check_output(
        "tail -c +%d %s > /tmp/nginx-slice.log && fail2ban-regex /tmp/nginx-slice.log %s" % (offset + 1, ERROR_LOG, FILTER))
    return int(re.search(r"^Lines: \d+ lines, \d+ ignored, (\d+) matched", out, re.MULTILINE).group(1))


def rejections(log, zone, client, dry_run=False):
    pattern = r'limiting requests, %sexcess: [\d.]+ by zone "%s", client: %s,' % (
        "dry run, " if dry_run else "", re.escape(zone), re.escape(client))
    return len(re.findall(pattern, log))


def drain():
    """Let the zones' buckets empty (zone one: 5r/s; the largest excess here drains in about 2 s)."""
    time.sleep(2.5)


def apply(office_ip, **extra_vars):
    """Run converge.yml on the web host with extra vars. The office stays allowlisted: given here, its
    address needs no facts from the clients, so their play is skipped (--limit web)."""
    extra_vars.setdefault("nginx_ratelimit_allowlist", [office_ip])
    command = ["ansible-playbook", "-i", INVENTORY, PLAYBOOK, "--limit", "web", "-e", json.dumps(extra_vars)]
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300, check=False)
    result.output = " ".join(result.stdout.split())  # messages are wrapped: compare on single spaces
    return result


def snapshot(web):
    """Checksums of the role's files and NGINX's master PID."""
    sums = web.check_output("sha256sum %s" % " ".join(MANAGED_FILES))
    return sums, web.check_output("systemctl show -p MainPID --value nginx")


def backups(web):
    return web.check_output(
        "find /etc/nginx -name '*~' -print")


def test_nginx_serves_the_role_configuration(web):
    assert web.service("nginx").is_running
    assert web.service("nginx").is_enabled
    web.run_test("nginx -t -q")
    http_conf = web.file(MANAGED_FILES[0]).content_string
    assert "limit_req_zone $floodguard_ratelimit_key_one zone=one:20m rate=5r/s;" in http_conf
    assert "limit_req_status 429;" in http_conf
    assert "limit_req zone=one burst=5 nodelay;" in web.file(MANAGED_FILES[1]).content_string
    assert web.file("/etc/nginx/sites-enabled/floodguard-api").linked_to == MANAGED_FILES[2]
    # Debian's default site is also a default_server: ours replaces it.
    assert not web.file("/etc/nginx/sites-enabled/default").exists
    assert backups(web) == ""


def test_workers_have_room_for_a_botnet(web):
    # Debian's 768 connections per worker and systemd's 1,024 open files, raised (role defaults).
    assert re.search(r"(?m)^\s*worker_connections 8192;$", web.file("/etc/nginx/nginx.conf").content_string)
    assert web.check_output("grep -c worker_connections /etc/nginx/nginx.conf") == "1"
    # The master's children (pgrep -f would also match the shell that runs it).
    workers = web.check_output("ps -o pid= --ppid $(cat /run/nginx.pid)").split()
    assert workers
    for pid in workers:
        limits = web.check_output("grep 'Max open files' /proc/%s/limits", pid).split()
        assert limits[3:5] == ["16384", "16384"], limits


def test_allowlisted_client_is_never_limited(web, office, web_ip, office_ip):
    offset = log_size(web)
    codes = burst(office, web_ip, "/api/ping")[0]
    assert codes == [200] * REQUESTS
    assert "client: %s," % office_ip not in log_since(web, offset)
    # A proxied location (NGINX runs `return` before limit_req, so it must not be one).
    assert '"endpoint": "ping"' in office.check_output("curl -s --max-time 5 http://%s/api/ping" % web_ip)


def test_flood_gets_429_and_every_rejection_is_logged_for_fail2ban(web, attacker, web_ip, attacker_ip):
    offset = log_size(web)
    codes, seconds = burst(attacker, web_ip, "/api/ping", header=FORGED)
    served = codes.count(200)
    # One request at the rate, the burst at once (nodelay), plus what the rate refills meanwhile.
    assert 1 + BURST <= served <= 1 + BURST + math.ceil(RATE * seconds), (codes, seconds)
    assert codes.count(429) == REQUESTS - served > 0, codes
    log = log_since(web, offset)
    # Keyed on the connection's address: the forged header changes nothing.
    assert rejections(log, "one", attacker_ip) == REQUESTS - served, log
    assert "client: %s" % FORGED not in log
    assert fail2ban_matches(web, offset) == REQUESTS - served


def test_login_is_stricter_than_the_rest(web, attacker, web_ip, attacker_ip):
    offset = log_size(web)
    codes, seconds = burst(attacker, web_ip, "/api/login", count=8)
    served = codes.count(200)
    assert 1 + LOGIN_BURST <= served <= 1 + LOGIN_BURST + math.ceil(LOGIN_RATE_PER_SECOND * seconds), codes
    assert codes.count(429) == 8 - served
    assert rejections(log_since(web, offset), "login", attacker_ip) == 8 - served


def test_static_files_are_served_within_their_own_limit(attacker, web_ip):
    codes = burst(attacker, web_ip, "/static/hello.txt")[0]
    assert codes == [200] * REQUESTS
    assert attacker.check_output("curl -s --max-time 5 http://%s/static/hello.txt" % web_ip) == "static hello"


def test_dry_run_rejects_nothing_and_logs_dry_run(web, attacker, web_ip, attacker_ip, office_ip):
    result = apply(office_ip, nginx_ratelimit_dry_run=True)
    assert result.returncode == 0, result.output[-3000:]
    assert "limit_req_dry_run on;" in web.file(MANAGED_FILES[0]).content_string
    drain()
    offset = log_size(web)
    codes, seconds = burst(attacker, web_ip, "/api/ping")
    assert codes == [200] * REQUESTS
    log = log_since(web, offset)
    # Every request that enforcing would have rejected (see the flood test's bound) is logged as a dry run.
    would_reject = REQUESTS - (1 + BURST + math.ceil(RATE * seconds))
    assert rejections(log, "one", attacker_ip, dry_run=True) >= max(would_reject, 1), log
    # What a dry run logs must not feed fail2ban.
    assert fail2ban_matches(web, offset) == 0


INVALID_VARIABLES = [
    # (extra vars, what the error must name)
    ({"nginx_ratelimit_zones": [{"name": "one", "rate": "5r/x"}]}, 'nginx_ratelimit_zones (one): rate "5r/x"'),
    ({"nginx_ratelimit_limits": [{"zone": "one", "burst": -1}]}, 'nginx_ratelimit_limits: the limit {"zone": "one", "burst": -1}'),
    ({"nginx_ratelimit_zones": [{"name": "one", "size": "20q", "rate": "5r/s"}]}, 'nginx_ratelimit_zones (one): size "20q"'),
    ({"nginx_ratelimit_limits": [{"zone": "nope", "burst": 5}]}, 'nginx_ratelimit_limits: the limit {"zone": "nope"'),
    ({"nginx_ratelimit_allowlist": ["10.0.0.0/33"]}, "nginx_ratelimit_allowlist holds 1 invalid address(es): '10.0.0.0/33'"),
]


def test_invalid_variables_fail_before_anything_is_written(web, attacker, web_ip, office_ip):
    before = snapshot(web)
    for extra_vars, named in INVALID_VARIABLES:
        result = apply(office_ip, nginx_ratelimit_dry_run=False, **extra_vars)
        assert result.returncode != 0
        assert named in result.output, result.output[-3000:]
    assert snapshot(web) == before
    # Still the running dry-run configuration: nothing rejected.
    codes = burst(attacker, web_ip, "/api/ping", count=10)[0]
    assert codes == [200] * 10


def test_config_that_nginx_rejects_is_rolled_back(web, attacker, web_ip, office_ip):
    before = snapshot(web)
    result = apply(office_ip, nginx_ratelimit_dry_run=False,
                   nginx_ratelimit_tls_certificate="/etc/ssl/missing.pem",
                   nginx_ratelimit_tls_certificate_key="/etc/ssl/missing.key")
    assert result.returncode != 0
    assert "NGINX rejected the new configuration" in result.output, result.output[-3000:]
    assert 'cannot load certificate "/etc/ssl/missing.pem"' in result.output  # NGINX's own message
    assert snapshot(web) == before
    assert backups(web) == ""
    web.run_test("nginx -t -q")
    codes = burst(attacker, web_ip, "/api/ping", count=10)[0]
    assert codes == [200] * 10


def test_limits_key_on_the_real_client_behind_a_trusted_proxy(web, attacker, office, web_ip, attacker_ip, office_ip):
    # The office now plays the load balancer: its X-Forwarded-For is trusted, the attacker's is not.
    result = apply(office_ip, nginx_ratelimit_real_ip_enabled=True, nginx_ratelimit_real_ip_from=[office_ip])
    assert result.returncode == 0, result.output[-3000:]
    drain()
    offset = log_size(web)
    codes = burst(office, web_ip, "/api/ping", header=FORGED)[0]
    assert codes.count(429) > 0, codes
    forged_codes = burst(attacker, web_ip, "/api/ping", header="203.0.113.9")[0]
    assert forged_codes.count(429) > 0, forged_codes
    log = log_since(web, offset)
    # The client behind the trusted proxy is limited (the proxy's own allowlisting does not cover it) ...
    assert rejections(log, "one", FORGED) == codes.count(429)
    # ... and a header from an untrusted client is ignored.
    assert rejections(log, "one", attacker_ip) == forged_codes.count(429)
    assert "203.0.113.9" not in log
    assert fail2ban_matches(web, offset) == codes.count(429) + forged_codes.count(429)
