# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tools/flood.py's counters: what the e2e tests and make bench read from its report."""

from __future__ import annotations

import importlib.util
from pathlib import Path

FLOOD_FILE = Path(__file__).resolve().parents[3] / "tools" / "flood.py"
_spec = importlib.util.spec_from_file_location("flood", FLOOD_FILE)
flood = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(flood)


def test_the_ban_moment_is_the_send_time_of_the_first_unanswered_request():
    stats = flood.SourceStats("192.0.2.1", max_requests=100, rate=0)
    # (finished, sent, status, error): rejections, then a request that connected before the ban and
    # timed out reading (finished last), then connects that timed out.
    events = [
        (0.10, 0.09, 429, None),
        (0.20, 0.19, 429, None),
        (1.25, 0.25, None, "failed:timeout"),
        (1.30, 0.30, None, "dropped:timeout"),
        (1.35, 0.35, None, "dropped:timeout"),
    ]
    for finished, sent, status, error in events:
        stats.record(finished, status, 1.0 if status else None, error, stop_after_drops=0, sent_s=sent)
    summary = stats.summary(with_timeline=False)
    assert summary["first_reject_s"] == 0.1
    assert summary["first_drop_s"] == 1.3  # when the first dropped connect gave up
    assert summary["first_unanswered_sent_s"] == 0.25


def test_a_reset_is_not_taken_for_a_ban():
    stats = flood.SourceStats("192.0.2.1", max_requests=100, rate=0)
    stats.record(0.5, None, None, "failed:reset", stop_after_drops=0, sent_s=0.4)
    assert stats.summary(with_timeline=False)["first_unanswered_sent_s"] is None


def test_latency_percentiles_are_nearest_rank():
    samples = [float(value) for value in range(1, 101)]
    assert flood.percentile(samples, 99) == 99.0
    assert flood._percentiles(samples) == {"p50": 50.0, "p90": 90.0, "p99": 99.0, "max": 100.0}
    assert flood._percentiles([]) == {}


def test_the_first_answer_of_each_status_is_recorded():
    # A ban inside NGINX answers 403 (through a load balancer): its moment is the first 403's arrival.
    stats = flood.SourceStats("192.0.2.1", max_requests=100, rate=0)
    for finished, status in ((0.05, 200), (0.10, 429), (0.20, 429), (0.60, 403), (0.55, 403)):
        stats.record(finished, status, 1.0, None, stop_after_drops=0, sent_s=finished - 0.01)
    summary = stats.summary(with_timeline=False)
    assert summary["first_status_s"] == {"200": 0.05, "403": 0.55, "429": 0.1}
    assert summary["first_reject_s"] == 0.1
