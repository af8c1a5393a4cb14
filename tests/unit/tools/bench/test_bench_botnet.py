# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tools/bench/botnet.py: the 99 % point and its uncertainty, the upstream's rate from gunicorn's log, fail2ban's
"Found" lines, the legitimate client's share, CPU, the guard's cap from the role's defaults, the report."""

from __future__ import annotations

import datetime

import bench_modules

botnet = bench_modules.load("botnet")

# Captured on the bench's web host (journalctl -u floodguard-demo-api -o cat; /var/log/fail2ban.log).
GUNICORN = """\
172.29.50.10 - - [01/Dec/2026:15:41:07 +0000] "GET /api/ping HTTP/1.0" 200 16 "-" "floodguard-botnet"
172.29.50.10 - - [01/Dec/2026:15:41:07 +0000] "GET /api/ping HTTP/1.0" 200 16 "-" "floodguard-botnet"
[2026-12-01 15:41:07 +0000] [412] [INFO] Booting worker with pid: 412
172.29.50.10 - - [01/Dec/2026:15:41:08 +0000] "GET /api/ping HTTP/1.0" 200 16 "-" "floodguard-botnet"
172.29.50.10 - - [01/Dec/2026:15:41:10 +0000] "GET /api/ping HTTP/1.0" 200 16 "-" "floodguard-botnet"
"""
FAIL2BAN = """\
2026-12-01 15:41:07,512 fail2ban.filter         [2231]: INFO    [nginx-req-limit] Found 10.128.3.1 - 2026-12-01 15:41:07
2026-12-01 15:41:07,530 fail2ban.filter         [2231]: INFO    [sshd] Found 10.128.4.1 - 2026-12-01 15:41:07
2026-12-01 15:41:07,601 fail2ban.filter         [2231]: INFO    [nginx-req-limit] Found 172.29.50.120 - 2026-12-01 15:41:07
2026-12-01 15:41:07,730 fail2ban.actions        [2231]: NOTICE  [nginx-req-limit] Ban 10.128.3.1
2026-12-01 15:41:08,044 fail2ban.filter         [2231]: INFO    [nginx-req-limit] Found 10.128.9.1 - 2026-12-01 15:41:07
"""


def epoch(text):
    return datetime.datetime.strptime(text, "%Y-%m-%d %H:%M:%S,%f").timestamp()


def test_the_share_is_rounded_up_to_whole_addresses():
    assert botnet.wanted(10000, 0.99) == 9900
    assert botnet.wanted(1000, 0.99) == 990
    assert botnet.wanted(101, 0.99) == 100
    assert botnet.flood_addresses("10.128.0.1", 1000, 256) == "10.128.0.1,1000,256"


def test_the_99_percent_point_is_the_end_of_the_first_read_that_holds_it():
    reads = [[99.0, 99.2, 0, 0], [100.1, 100.4, 500, 10], [100.6, 101.0, 9899, 20], [101.2, 101.5, 9900, 30],
             [101.7, 102.0, 10000, 30]]
    found = botnet.reached(reads, 9900, flood_start=100.0)
    # Ends when the confirming read has finished; the moment lies after the previous read's start.
    assert found == {"done": True, "seconds": 1.5, "uncertainty_s": 0.9, "count": 9900, "of": 9900}


def test_a_read_before_the_flood_never_counts_and_the_uncertainty_starts_at_the_flood():
    reads = [[99.0, 99.5, 9900, 0], [100.0, 100.3, 9900, 0]]
    assert botnet.reached(reads, 9900, flood_start=99.8) == {"done": True, "seconds": 0.5, "uncertainty_s": 0.5,
                                                             "count": 9900, "of": 9900}


def test_not_reached_reports_how_far_it_got():
    reads = [[100.0, 100.2, 10, 0], [100.4, 100.6, 9000, 0]]
    assert botnet.reached(reads, 9900, 100.0) == {"done": False, "count": 9000, "of": 9900}
    assert botnet.reached([], 9900, 100.0) == {"done": False, "count": 0, "of": 9900}


def test_the_error_log_stopped_growing_at_the_first_read_of_its_final_size():
    reads = [[1.0, 1.1, 0, 10], [1.3, 1.4, 0, 50], [1.6, 1.7, 0, 90], [1.9, 2.0, 0, 90]]
    assert botnet.log_stopped_growing(reads) == (1.7, 0.3)
    assert botnet.log_stopped_growing([]) == (None, None)


def test_the_upstream_is_counted_per_second_of_gunicorns_clock():
    start = int(datetime.datetime(2026, 12, 1, 15, 41, 7, tzinfo=datetime.timezone.utc).timestamp())
    assert botnet.upstream_per_second(GUNICORN, start, start + 10) == {start: 2, start + 1: 1, start + 3: 1}
    # The window is [since, until): the flood's seconds only.
    assert botnet.upstream_per_second(GUNICORN, start + 1, start + 3) == {start + 1: 1}


def test_found_lines_of_the_jail_and_the_flood_only():
    since = epoch("2026-12-01 15:41:07,000")
    assert botnet.found_epochs(FAIL2BAN, "nginx-req-limit", "10.", since) == [
        epoch("2026-12-01 15:41:07,512"), epoch("2026-12-01 15:41:08,044")]
    assert botnet.found_epochs(FAIL2BAN, "nginx-req-limit", "10.", epoch("2026-12-01 15:41:08,000")) == [
        epoch("2026-12-01 15:41:08,044")]


def test_detection_rate_and_lag():
    found = [100.5, 101.0, 102.0, 104.0]
    result = botnet.detection(8, found, flood_start=100.0, log_end=103.0, log_end_uncertainty=0.3)
    assert result == {"lines_written": 8, "found": 4, "lines_per_s": 1.0, "lag_s": 1.0, "lag_uncertainty_s": 0.3}
    # Kept up: fail2ban's last "Found" before the poll saw the log stop growing.
    assert botnet.detection(8, found, 100.0, 105.0, 0.3)["lag_s"] == 0.0
    assert botnet.detection(8, [], 100.0, 105.0, 0.3) == {"lines_written": 8, "found": 0, "lines_per_s": None,
                                                          "lag_s": None}


def test_the_legitimate_clients_share_counts_the_flood_window_only():
    requests = [[0.1, "200"], [1.1, "200"], [1.4, "503"], [1.6, "dropped"], [2.0, "200"], [3.0, "200"]]
    assert botnet.legit_share(requests, 1.0, 2.0) == {"sent": 3, "2xx": 1, "share": 0.3333}
    assert botnet.legit_share(requests, 2.0, None) == {"sent": 2, "2xx": 2, "share": 1.0}
    assert botnet.legit_share([], 0, None) == {"sent": 0, "2xx": 0, "share": None}


def test_cpu_share_of_one_core():
    assert botnet.cpu_share([[100.0, 5.0], [102.0, 6.5], [110.0, 7.0]]) == (1.5, 75.0)
    assert botnet.cpu_share([[100.0, 5.0]]) == (None, None)


def test_the_guards_cap_comes_from_the_roles_defaults():
    with open(botnet.DEFAULTS) as handle:
        rate, burst = botnet.guard_cap(handle.read())
    assert rate > 0 and burst >= 0
    assert botnet.guard_cap("nginx_ratelimit_guard_rate: 60\nnginx_ratelimit_guard_burst: 20\n") == (60, 20)
    assert botnet.guard_cap("other: 1\n") == (None, None)


def flood_run(size, seconds, share, peak):
    """What one_run makes of a run in which the flood started at 1000.0 and the legit client 1 s earlier."""
    goal = botnet.wanted(size, 0.99)
    end = 1000.0 + seconds
    reads = [[1000.0, 1000.1, 0, 0], [end - 0.6, end - 0.4, goal - 1, 400], [end - 0.3, end, goal, 500],
             [end + 0.2, end + 0.4, size, 500]]
    requests = [[0.5, "200"]] + [[1.0 + index * 0.1, "200" if index < share * 10 else "503"] for index in range(10)]
    return botnet.one_run(size, {"start": 1000.0, "flood_done_s": 9.0, "statuses": {"200": 5}},
                          {"start": 999.0, "legit": {"requests": requests}},
                          {"reads": reads, "cpu": [[999.5, 10.0], [1000.0 + seconds, 10.0 + seconds / 2]]},
                          {1000: peak, 1001: peak - 1}, 2 * size, [1000.5, 1000.0 + seconds], 301)


def test_one_run_puts_the_figures_together():
    run = flood_run(10000, 4.0, 0.9, 250)
    assert run["done"] and run["seconds"] == 4.0 and run["count"] == 9900
    # The legit request sent before the flood's start is left out; 10 sent in the first 4 s... of which 9 2xx.
    assert run["legit_during"] == {"sent": 10, "2xx": 9, "share": 0.9}
    assert run["upstream_peak_rps"] == 250 and run["upstream_at_or_under_cap"]
    assert run["cpu_core_percent"] == round(100 * 2.0 / 4.5, 1)
    assert run["detection"]["found"] == 2
    assert not flood_run(10000, 4.0, 1.0, 400)["upstream_at_or_under_cap"]


def results_of(runs_by_system):
    botnet_results = {}
    for system, (guard, runs) in runs_by_system.items():
        botnet_results[system] = {"guard": guard, "escalation": guard, "runs": len(runs), "guard_rate": 200,
                                  "guard_burst": 100, "cap_per_second": 301,
                                  "sizes": {"10000": {"summary": botnet.summary(runs), "runs": runs}}}
    return {"settings": {"systems": list(runs_by_system), "ours": "floodguard",
                         "system_labels": {"floodguard": "floodguard (defaults)",
                                           "fail2ban-iptables": "fail2ban, iptables-multiport (original recipe)"}},
            "botnet": botnet_results}


def test_the_section_shows_the_systems_side_by_side_and_judges_the_goals():
    ours = [flood_run(10000, seconds, 1.0, 250) for seconds in (3.0, 4.0, 4.5)]
    recipe = [flood_run(10000, seconds, 0.5, 900) for seconds in (12.0, 14.0, 13.0)]
    text = "\n".join(botnet.section(results_of({"floodguard": (True, ours), "fail2ban-iptables": (False, recipe)})))
    assert "| figure | floodguard (defaults) | fail2ban, iptables-multiport (original recipe) |" in text
    assert "\n| --- | ---: | ---: |\n" in text
    assert "| upstream guard / prefix escalation | on / on | off / off |" in text
    assert "4.00 s (3.00 s–4.50 s, 3 runs; read ≤ 0.60 s)" in text
    assert "13.00 s (12.00 s–14.00 s, 3 runs" in text
    assert "- 99 % banned in under 5 s: reached (median 4.00 s)" in text
    assert "- upstream at or under its cap: reached (peak 250/s" in text
    assert "- legitimate client's success during the flood ≥ 99 %: reached (lowest run 100.0 %)" in text


def test_the_section_says_what_was_missed():
    slow = [flood_run(10000, seconds, 0.5, 400) for seconds in (6.0, 7.0, 8.0)]
    unfinished = dict(flood_run(10000, 6.0, 0.5, 400), done=False, count=5000, of=9900)
    text = "\n".join(botnet.section(results_of({"floodguard": (True, slow[:2] + [unfinished])})))
    assert "- 99 % banned in under 5 s: missed (median 6.50 s)" in text
    assert "- upstream at or under its cap: missed (peak 400/s, cap 301" in text
    assert "missed (lowest run 50.0 %)" in text
    text = "\n".join(botnet.section(results_of({"floodguard": (True, [unfinished])})))
    assert "not reached in 30 s (5000 of 9900)" in text
    assert botnet.section({"botnet": {}}) == []


def test_the_cap_of_any_one_second_adds_each_zones_burst():
    assert botnet.cap_per_second(200, 100, 1) == 301
    # With known clients the reserved zone has a burst of its own.
    assert botnet.cap_per_second(200, 100, 2) == 402
    assert botnet.cap_per_second(None, 100, 1) is None


def test_the_known_client_run_has_rows_and_a_goal_line_of_its_own():
    results = results_of({"floodguard": (True, [flood_run(10000, 4.0, 0.5, 250)] * 3)})
    known = [flood_run(10000, 4.2, 1.0, 380)] * 3
    results["botnet"]["floodguard"].update(known_client={"10000": {"summary": botnet.summary(known), "runs": known}},
                                           known_client_cap_per_second=402)
    text = "\n".join(botnet.section(results))
    assert "| 10,000, legitimate client in nginx_ratelimit_guard_known_clients: 99 % banned after | 4.20 s" in text
    assert "its 2xx during the flood (median; lowest) | 100.0 %; 100.0 % |" in text
    assert "(the guard's reserved share): its success reached (lowest run 100.0 %), upstream peak 380/s against 402" in text


def test_a_size_is_not_repeated_after_a_flood_that_missed_the_share(monkeypatch):
    outcomes = {1000: iter([{"done": True, "seconds": 2.0}] * 3), 10000: iter([{"done": False, "count": 2366}] * 3)}
    floods = []

    def run_once(host, size, cap, error_log):
        floods.append(size)
        return dict(next(outcomes[size]), size=size)

    monkeypatch.setattr(botnet, "run_once", run_once)
    monkeypatch.setattr(botnet, "summary", lambda runs: {"runs": len(runs)})
    done = botnet.measured(None, [1000, 10000], 3, 301, "/var/log/nginx/error.log")
    # Three medians' worth at 1,000; at 10,000 one capped flood says all a capped flood can.
    assert floods == [1000, 1000, 1000, 10000]
    assert done["10000"]["summary"] == {"runs": 1}
