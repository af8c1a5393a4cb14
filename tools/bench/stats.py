# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The benchmark's statistics: the summary of repeated runs that results.json holds and the report prints.

The percentile is flood.py's (the tool travels alone to the test hosts, so the definition lives there once).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from flood import percentile  # noqa: E402  (tools/flood.py)


def median(values):
    """The middle value (mean of the two middle ones for an even count); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2.0


def summarize(values):
    """n, median, min, max, p50 and p95 of the values that are not None."""
    values = [value for value in values if value is not None]
    if not values:
        return {"n": 0, "median": None, "min": None, "max": None, "p95": None}
    return {"n": len(values), "median": round(median(values), 3), "min": min(values), "max": max(values),
            "p50": percentile(values, 50), "p95": percentile(values, 95)}


def summarize_runs(runs):
    """summarize() of the finished runs' seconds, with the run count and how far unfinished runs got."""
    summary = summarize([run["seconds"] for run in runs if run.get("done")])
    summary["runs"] = len(runs)
    uncertainties = [run.get("uncertainty_s") for run in runs if run.get("done") and run.get("uncertainty_s") is not None]
    summary["uncertainty_max_s"] = max(uncertainties) if uncertainties else None
    summary["unfinished"] = [{"count": run["count"], "of": run["of"], "cap_s": run.get("cap_s")}
                             for run in runs if not run.get("done") and "count" in run]
    return summary


def spread(summary, fmt, unit="run"):
    """'median (min–max, n runs)' of a summarize() dict, each value through fmt; None when it has no values.

    With an uncertainty_max_s (timings that end when the confirming read finished), '; read ≤ x' says how
    much earlier the true moment may lie.
    """
    if not summary or not summary.get("n"):
        return None
    poll = "; read ≤ %s" % fmt(summary["uncertainty_max_s"]) if summary.get("uncertainty_max_s") else ""
    if summary["n"] == 1:
        return "%s (1 %s%s)" % (fmt(summary["median"]), unit, poll)
    return "%s (%s–%s, %d %ss%s)" % (fmt(summary["median"]), fmt(summary["min"]), fmt(summary["max"]),
                                     summary["n"], unit, poll)


# Two-sided 95 % quantiles of Student's t for 1-30 degrees of freedom (then the normal's 1.96).
T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
       2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def mean_ci95(values):
    """{'n', 'mean', 'low', 'high'}: the mean and its 95 % confidence interval (Student's t); None below 2 values."""
    values = [value for value in values if value is not None]
    if len(values) < 2:
        return None
    count = len(values)
    mean = sum(values) / count
    deviation = (sum((value - mean) ** 2 for value in values) / (count - 1)) ** 0.5
    half = (T95[count - 2] if count - 2 < len(T95) else 1.96) * deviation / count ** 0.5
    return {"n": count, "mean": round(mean, 5), "low": round(mean - half, 5), "high": round(mean + half, 5)}


def paired_change(baseline, treated):
    """The relative change of each pair (treated / baseline - 1) and mean_ci95 of them."""
    changes = [round(after / before - 1, 5) for before, after in zip(baseline, treated) if before]
    return {"changes": changes, "ci95": mean_ci95(changes)}


def verdict(ci, within):
    """What a 95 % interval of a relative change says against +-within: 'cost', 'gain', 'none' or 'unresolved'."""
    if not ci:
        return "unresolved"
    if ci["high"] < 0 and ci["low"] < -within:
        return "cost"
    if ci["low"] > 0 and ci["high"] > within:
        return "gain"
    if -within <= ci["low"] and ci["high"] <= within:
        return "none"
    return "unresolved"
