# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tools/bench/stats.py: the one summary of repeated runs (nearest-rank percentiles, median, spread)."""

from __future__ import annotations

import pytest

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


def test_the_95_interval_of_a_mean_uses_student_s_t():
    # mean 0.02, sample deviation 0.01 over 4 values: half-width 3.182 * 0.01 / 2.
    ci = stats.mean_ci95([0.01, 0.02, 0.03, 0.02 + 0.0])
    assert ci["n"] == 4 and ci["mean"] == pytest.approx(0.02)
    deviation = (sum((value - 0.02) ** 2 for value in (0.01, 0.02, 0.03, 0.02)) / 3) ** 0.5
    assert ci["high"] - ci["mean"] == pytest.approx(3.182 * deviation / 2, abs=1e-5)
    assert stats.mean_ci95([0.5]) is None


def test_paired_changes_are_relative_to_each_pair_s_baseline():
    change = stats.paired_change([100.0, 200.0, 0.0], [90.0, 220.0, 5.0])
    # The pair with a zero baseline says nothing and is left out.
    assert change["changes"] == [-0.1, 0.1]
    assert change["ci95"]["n"] == 2


@pytest.mark.parametrize("low, high, verdict", [
    (-0.02, 0.01, "none"),      # inside +-3 %: no cost that the interval can see
    (-0.10, -0.05, "cost"),     # below 0 and past -3 %
    (-0.04, -0.01, "cost"),     # below 0, reaches past -3 %
    (-0.05, 0.02, "unresolved"),  # straddles 0 and is wider than the bound
    (0.04, 0.08, "gain"),
])
def test_a_change_is_judged_two_sided(low, high, verdict):
    assert stats.verdict({"n": 20, "mean": (low + high) / 2, "low": low, "high": high}, 0.03) == verdict
    assert stats.verdict(None, 0.03) == "unresolved"


def test_a_timing_carries_its_largest_read_uncertainty():
    summary = stats.summarize_runs([{"done": True, "seconds": 2.0, "uncertainty_s": 0.3},
                                    {"done": True, "seconds": 3.0, "uncertainty_s": 0.1}])
    assert summary["uncertainty_max_s"] == 0.3
    assert stats.spread(summary, str) == "2.5 (2.0–3.0, 2 runs; read ≤ 0.3)"
