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
    summary["unfinished"] = [{"count": run["count"], "of": run["of"], "cap_s": run.get("cap_s")}
                             for run in runs if not run.get("done") and "count" in run]
    return summary


def spread(summary, fmt, unit="run"):
    """'median (min–max, n runs)' of a summarize() dict, each value through fmt; None when it has no values."""
    if not summary or not summary.get("n"):
        return None
    if summary["n"] == 1:
        return "%s (1 %s)" % (fmt(summary["median"]), unit)
    return "%s (%s–%s, %d %ss)" % (fmt(summary["median"]), fmt(summary["min"]), fmt(summary["max"]),
                                   summary["n"], unit)
