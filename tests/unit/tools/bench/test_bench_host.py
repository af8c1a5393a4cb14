# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tools/bench/host.py: the jail.d override that gives fail2ban its stock nftables actions (a peer)."""

from __future__ import annotations

import bench_modules

host = bench_modules.load("host")

# The role's floodguard-banactions.local as rendered on the bench's web host (roles/fail2ban/templates).
BANACTIONS = """[nginx-req-limit]
action = floodguard_nftables.py[name=nginx-req-limit, port="http,https", protocol="tcp", blocktype=drop, sleepinterval=0.02, \
allowlist="127.0.0.0/8 ::1 172.29.50.30/32"]

[manual]
action = floodguard_nftables.py[name=manual, port="all", protocol="tcp,udp", blocktype=drop, sleepinterval=0.02, allowlist="127.0.0.0/8 ::1"]
"""


def test_each_floodguard_action_becomes_fail2ban_s_stock_one():
    assert host.stock_actions(BANACTIONS) == """[nginx-req-limit]
action = nftables-multiport[name=nginx-req-limit, port="http,https", protocol="tcp"]

[manual]
action = nftables-allports[name=manual, protocol="tcp,udp"]
"""


def test_the_systems_ban_daemons_are_the_units_a_restart_restarts(monkeypatch):
    bench = host.Host("/tmp")
    bench.action = "crowdsec-1s"
    assert bench.units == ("crowdsec", "crowdsec-firewall-bouncer") and bench.backend == "nftables"
    bench.action = "fail2ban-iptables"
    assert bench.units == ("fail2ban",) and bench.backend == "iptables-multiport"


def test_the_comparison_system_gives_every_in_process_action_fail2bans_own_sleep_step():
    banactions = BANACTIONS + ('         floodguard_nginx.py[name=manual, socket=/run/floodguard-nginx/ban.sock, '
                               'statedir=/var/lib/floodguard/nginx-bans, sleepinterval=0.02, allowlist="127.0.0.0/8 ::1"]\n')
    text = host.sleep_interval_actions(banactions, 0)
    assert text.count("sleepinterval=0,") == 3 and "sleepinterval=0.02" not in text
    assert text.replace("sleepinterval=0,", "sleepinterval=0.02,") == banactions


class Web:
    """The web host as Host.exec and Host.playbook see it: its marker file, and the converges run."""

    def __init__(self, marker=""):
        self.marker, self.converges = marker, []

    def exec(self, name, argv, check=True, stdin=None, timeout=120):
        if argv == ["cat", host.CONVERGED_VARS_FILE]:
            return type("Done", (), {"stdout": self.marker, "returncode": 0})()
        if argv == ["tee", host.CONVERGED_VARS_FILE]:
            self.marker = stdin
        return type("Done", (), {"stdout": "", "returncode": 0})()

    def playbook(self, playbook, extra, logname, timeout):
        self.converges.append(dict(extra))
        return 0, ""


def bench_on(web, action):
    bench = host.Host("/tmp")
    bench.action = action
    bench.exec, bench.playbook = web.exec, web.playbook
    return bench


ALLOW = ["172.29.50.30/32"]


def test_a_converge_runs_only_when_the_variables_differ_from_the_last_one():
    web = Web()
    recipe = dict(host.settings.RECIPE_VARS, fail2ban_banaction="nftables")
    bench_on(web, "fail2ban-nftables").ensure_converged(recipe, ALLOW, "converge-a")
    bench_on(web, "fail2ban-nftables").ensure_converged(recipe, ALLOW, "converge-b")
    assert web.converges == [dict(recipe, nginx_ratelimit_allowlist=ALLOW)]
    # The defaults are other variables: converged again.
    bench_on(web, "floodguard").ensure_converged({"fail2ban_banaction": "nftables"}, ALLOW, "converge-c")
    assert web.converges[-1] == {"fail2ban_banaction": "nftables", "nginx_ratelimit_allowlist": ALLOW}


def test_crowdsec_keeps_the_banaction_the_host_has_when_the_nginx_variables_match():
    web = Web()
    recipe = dict(host.settings.RECIPE_VARS, fail2ban_banaction="iptables-multiport")
    bench_on(web, "fail2ban-iptables").ensure_converged(recipe, ALLOW, "converge-iptables")
    has = bench_on(web, "crowdsec").ensure_converged(dict(host.settings.RECIPE_VARS, fail2ban_banaction=None),
                                                     ALLOW, "converge-crowdsec")
    assert len(web.converges) == 1 and has["fail2ban_banaction"] == "iptables-multiport"
    # After floodguard's known-client variant the NGINX variables differ: CrowdSec converges first.
    bench_on(web, "floodguard").ensure_converged({"fail2ban_banaction": "nftables", "x": 1}, ALLOW, "variant")
    bench_on(web, "crowdsec").ensure_converged(dict(host.settings.RECIPE_VARS, fail2ban_banaction=None),
                                               ALLOW, "converge-crowdsec")
    assert web.converges[-1] == dict(host.settings.RECIPE_VARS, fail2ban_banaction="nftables",
                                     nginx_ratelimit_allowlist=ALLOW)


def test_an_unreadable_marker_means_converge():
    web = Web(marker="lb\n")
    bench_on(web, "floodguard").ensure_converged({"fail2ban_banaction": "nftables"}, ALLOW, "converge")
    assert len(web.converges) == 1
