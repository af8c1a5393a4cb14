# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tools/bench/waf.py and waf_probe.py: the API call count read from the action's log line, and the report's
section, on what a `make bench --only waf` run recorded."""

from __future__ import annotations

import bench_modules

waf = bench_modules.load("waf")
waf_probe = bench_modules.load("waf_probe")

# A line of /var/log/fail2ban.log on the bench's web host, the second write of a burst of 10,000 bans
# (make bench --only waf, 2026-12-01).
LOG_LINE = ("2026-12-01 13:29:04,220 fail2ban.WafV2Action    [4220]: INFO    [bench-waf] floodguard_wafv2: edge "
            "updated, 3984 added, 0 removed, 0 kept for other jails (API calls 6: get_ip_set 4, update_ip_set 2)")


def test_the_api_calls_come_from_the_actions_log_line():
    assert waf_probe.parse_api_calls(LOG_LINE) == {"total": 6, "by_operation": {"get_ip_set": 4, "update_ip_set": 2}}
    assert waf_probe.parse_api_calls("... edge updated, 1 added, 0 removed") is None


def recorded():
    burst = {"bans": 10000, "in_sets": 10000, "banip_s": 0.61, "seconds_to_edge": 2.4,
             "api_calls": dict(waf_probe.parse_api_calls(LOG_LINE), syncs=1, line=LOG_LINE)}
    return {"waf": {"moto_version": "5.2.5", "runs": 3, "burst_runs": 2,
                    "latency_s": {"n": 3, "median": 1.02, "min": 1.01, "max": 1.05, "p50": 1.02, "p95": 1.05,
                                  "samples": [1.01, 1.02, 1.05]},
                    "bursts": [burst, burst], "burst_api_calls": {"n": 2, "median": 6, "min": 6, "max": 6},
                    "burst_seconds": {"n": 2, "median": 2.4, "min": 2.4, "max": 2.4}}}


def test_the_section_shows_the_recorded_figures_and_says_what_it_measures():
    text = "\n".join(waf.section(recorded()))
    assert "## AWS edge (WAFv2 IP sets, against moto)" in text
    assert "this measures this side only" in text and "moto 5.2.5" in text
    assert "| p50 1.020 s, p95 1.050 s, 1.010 s–1.050 s, 3 bans |" in text
    assert "| API calls for 10,000 bans in one burst | 6 (6–6, 2 runs) |" in text
    assert "get_ip_set 4, update_ip_set 2" in text


def test_no_waf_phase_no_section():
    assert waf.section({}) == [] and waf.section({"waf": None}) == []
