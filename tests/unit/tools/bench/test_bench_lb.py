# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tools/bench/lb.py: its parsers (captured from a test host), the latency it derives and its report section."""

from __future__ import annotations

import pytest

import bench_modules

lb = bench_modules.load("lb")

# `journalctl -u nginx -o cat` on floodguard-test:bookworm: a start, then one `systemctl reload nginx`.
JOURNAL = """Starting nginx.service - A high performance web server and a reverse proxy server...
Started nginx.service - A high performance web server and a reverse proxy server.
Reloading nginx.service - A high performance web server and a reverse proxy server...
2026/12/01 12:30:38 [notice] 389#389: signal process started
Reloaded nginx.service - A high performance web server and a reverse proxy server.
"""
# /proc/<pid>/smaps_rollup of NGINX's master there (first lines), twice: two processes.
ROLLUP = """55d8b1912000-7ffea1d85000 ---p 00000000 00:00 0                          [rollup]
Rss:                7184 kB
Pss:                2154 kB
Pss_Dirty:           522 kB
Pss_Anon:            518 kB
Pss_File:           1631 kB
Pss_Shmem:             4 kB
Shared_Clean:       5360 kB
"""


def test_the_dict_use_comes_from_the_stats_answer():
    # /stats of the management socket on the bench's web host, with 10,000 bans.
    assert lb.dict_used_kib("capacity 67108864 free 64147456\n") == {"used_kib": 2892, "capacity_kib": 65536}
    assert lb.dict_used_kib("jail=NAME is required") is None


def test_reloads_are_counted_once_each():
    assert lb.reload_count(JOURNAL) == 1
    assert lb.reload_count(JOURNAL.split("Reloading", maxsplit=1)[0]) == 0


def test_pss_sums_the_pss_lines_only():
    assert lb.pss_kib(ROLLUP + ROLLUP) == 2 * 2154


@pytest.mark.parametrize("address, expected", [
    ("198.18.0.1", "c6120001/32"),
    ("10.1.0.0/16", "0a010000/16"),
    ("2001:db8::1", "20010db8000000000000000000000001/128"),
])
def test_elements_are_what_the_lua_module_parses(address, expected):
    assert lb.element(address) == expected


def test_the_latency_runs_from_the_first_429_to_the_first_403():
    summary = {"first_reject_s": 0.42, "first_status_s": {"200": 0.01, "429": 0.42, "403": 0.97}}
    assert lb.ban_latency(summary) == (0.55, None)


@pytest.mark.parametrize("summary, problem", [
    ({"first_reject_s": None, "first_status_s": {"200": 0.01}}, "no rejection"),
    ({"first_reject_s": 0.4, "first_status_s": {"429": 0.4}}, "never answered 403"),
    ({"first_reject_s": 0.4, "first_status_s": {"403": 0.1, "429": 0.4}}, "answered 403 before the first rejection"),
])
def test_a_run_without_both_moments_has_no_latency(summary, problem):
    latency, found = lb.ban_latency(summary)
    assert latency is None and found.startswith(problem)


def test_worker_restarts_are_the_workers_that_went_away():
    before = {"master": "100", "workers": ["101", "102"], "reloads": 3}
    unchanged = {"reloads": 0, "master_replaced": False, "workers_replaced": 0}
    assert lb.processes_changed(before, dict(before)) == unchanged
    after = {"master": "100", "workers": ["103", "104"], "reloads": 4}
    assert lb.processes_changed(before, after) == {"reloads": 1, "master_replaced": False, "workers_replaced": 2}


def test_the_alb_variables_trust_and_allowlist_the_lb_only():
    values = lb.alb_vars("172.29.50.5")
    assert values["nginx_ratelimit_real_ip_enabled"] is True
    for key in ("nginx_ratelimit_real_ip_from", "nginx_ratelimit_allowlist", "fail2ban_ignoreip"):
        assert values[key] == ["172.29.50.5/32"]
    assert "fail2ban_banaction" not in values and "nginx_ratelimit_ban_enabled" not in values


def results_with_lb():
    summary = {"n": 20, "median": 0.5, "min": 0.3, "max": 0.9, "p50": 0.5, "p95": 0.8}
    spread = {"n": 3, "median": 1.5, "min": 1.4, "max": 1.6}
    return {
        "settings": {"manual_jail": "manual", "ban_network": "198.18.0.0/15", "phases": {"lb": lb.SETTINGS}},
        "goals": {"latency_p95_s": 0.1, "lb_latency_p95_s": 1.0},
        "lb": {
            "jail_action": "floodguard_nginx",
            "latency": {"summary": summary, "failed_runs": 1, "reject_to_fail2ban_ban_s": {"median": 0.2},
                        "fail2ban_ban_to_403_s": {"median": 0.25}},
            "burst": {"of": 1000, "seconds": 0.4, "reloads": 0, "master_replaced": False, "workers_replaced": 0,
                      "before": {"workers": ["1", "2"]}},
            "scale": {"10000": {"ban": [{"task_s": 1.2, "done": True, "seconds": 1.5},
                                        {"task_s": 1.3, "done": False, "problem": "NGINX held 10 bans before"}],
                                "ban_summary": dict(spread, runs=3, unfinished=[])}},
            "restart": {"of": 100000, "done": True, "seconds": 1.7, "count": 100000},
            "memory_0": {"pss_kib": 5800, "dict": {"used_kib": 391, "capacity_kib": 65536}},
            "memory_n": {"pss_kib": 33000, "dict": {"used_kib": 26400, "capacity_kib": 65536}, "bans": 100000},
            "per_request": {"baseline_rate": spread, "banned_rate": spread, "bans": 100000, "pairs": 20,
                            "change": {"ci95": {"n": 20, "mean": -0.01, "low": -0.025, "high": 0.005}},
                            "verdict": "none"},
        },
    }


def test_the_report_section_says_each_moment_and_figure():
    text = "\n".join(lb.report_section(results_with_lb()))
    assert "first answer 429" in text and "first answer 403" in text
    assert "| 20 (+1 failed) | 500 ms | 800 ms | 300 ms–900 ms | 200 ms | 250 ms | met |" in text
    assert "NGINX reloads during it: 0" in text and "workers replaced: 0 of 2" in text
    assert "| 10,000 | 1.50 s (1.40 s–1.60 s, 3 runs) | 1.20 s, 1.30 s |" in text
    assert "- Not counted: 10,000 bans, run 2: NGINX held 10 bans before." in text
    assert "(5.7 → 32.2 MiB); its ban dict then used 26,400 of 65,536 KiB" in text
    assert "`systemctl restart nginx` with 100,000 bans: 1.70 s" in text
    assert "change -1.0% [-2.5%, +0.5%] over 20 pairs: **none**" in text


def test_no_section_without_the_phase():
    results = results_with_lb()
    del results["lb"]
    assert lb.report_section(results) == []


def test_a_run_with_failed_requests_gives_no_rate():
    class Host:
        def __init__(self, served):
            self.served = served

        def flood(self, _where, sources, _options):
            return 0, {"elapsed_s": 2.0, "sources": {sources[0]: {"served": self.served, "sent": 1000}}}

    assert lb.request_rate(Host(1000), 2.0) == 500.0
    assert lb.request_rate(Host(999), 2.0) is None
