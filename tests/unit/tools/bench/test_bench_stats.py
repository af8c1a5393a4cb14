# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tools/bench/stats.py: the one summary of repeated runs (nearest-rank percentiles, median, spread)."""

from __future__ import annotations

import bench_modules

flood = bench_modules.load("flood")
stats = bench_modules.load("stats")


def test_the_percentile_is_flood_py_s_nearest_rank():
    assert stats.percentile is flood.percentile
    values = [5, 1, 4, 2, 3]
    assert [stats.percentile(values, pct) for pct in (1, 20, 21, 50, 95, 100)] == [1, 1, 2, 3, 5, 5]


def test_the_median_of_an_even_count_is_the_mean_of_the_middle_two():
    assert stats.median([4, 1, 3, 2]) == 2.5
    assert stats.median([3, 1, 2]) == 2
    assert stats.median([]) is None


def test_a_summary_leaves_out_missing_values():
    assert stats.summarize([0.2, None, 0.1, 0.4]) == {"n": 3, "median": 0.2, "min": 0.1, "max": 0.4,
                                                      "p50": 0.2, "p95": 0.4}
    assert stats.summarize([None]) == {"n": 0, "median": None, "min": None, "max": None, "p95": None}


def test_runs_summary_counts_unfinished_runs_apart():
    runs = [{"done": True, "of": 10, "seconds": 2.0}, {"done": True, "of": 10, "seconds": 4.0},
            {"done": False, "of": 10, "count": 6, "cap_s": 90}, {"done": False, "skipped": "the bans did not finish"}]
    summary = stats.summarize_runs(runs)
    assert (summary["n"], summary["median"], summary["runs"]) == (2, 3.0, 4)
    assert summary["unfinished"] == [{"count": 6, "of": 10, "cap_s": 90}]


def test_spread_names_the_runs():
    def fmt(value):
        return "%.1f" % value

    assert stats.spread(stats.summarize([1, 2, 3]), fmt) == "2.0 (1.0–3.0, 3 runs)"
    assert stats.spread(stats.summarize([7]), fmt, "sample") == "7.0 (1 sample)"
    assert stats.spread(stats.summarize([]), fmt) is None
