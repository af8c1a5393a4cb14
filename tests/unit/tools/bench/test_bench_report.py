# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tools/bench/report.py renders a results.json recorded by a short `make bench` run (fixtures/results.json:
floodguard and CrowdSec, 1,000 bans): every figure and every setting in its prose comes from that file."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

import bench_modules

report = bench_modules.load("report")

RECORDED = json.loads((Path(__file__).parent / "fixtures" / "results.json").read_text())


@pytest.fixture
def results():
    return copy.deepcopy(RECORDED)


def cells(text, first):
    row = next(line for line in text.splitlines() if line.startswith("| %s | " % first))
    return [cell.strip() for cell in row.strip("|").split("|")]


def test_every_section_of_a_complete_run_is_there(results):
    text = report.markdown(results)
    for heading in ("# Benchmarks", "## Summary", "## Goals of the default setup", "## 1. Attack-to-drop latency",
                    "## 2. Ban scale", "## 3. Restore after restart", "## 4. Per-packet cost", "## 5. Memory",
                    "## Where floodguard leads and trails", "## Method"):
        assert "\n%s\n" % heading in "\n" + text
    header = cells(text, "Figure")
    assert header == ["Figure"] + [results["settings"]["system_labels"][name] for name in results["settings"]["systems"]] + ["Ratio"]


def test_the_lead_table_divides_ours_by_the_best_peer(results):
    results["latency"]["crowdsec"]["summary"]["p50"] = 0.111
    row = cells(report.markdown(results), "attack-to-drop p50")
    ours = results["latency"]["floodguard"]["summary"]["p50"]
    assert row[1:3] == [report.seconds(ours), report.seconds(0.111)]
    assert row[-1] == "%.2f×" % (ours / 0.111)
    assert "attack-to-drop p50: floodguard trails" in report.markdown(results)


def test_latency_figures_are_the_recorded_ones(results):
    summary = results["latency"]["floodguard"]["summary"]
    row = cells(report.markdown(results), results["settings"]["system_labels"]["floodguard"])
    assert row[2:4] == [report.seconds(summary["p50"]), report.seconds(summary["p95"])]
    assert row[-1] == report.goal_check(summary["p95"], results["goals"]["latency_p95_s"])


def test_the_per_packet_verdict_is_the_recorded_interval(results):
    entry = results["perpacket"]["floodguard"]["1000"]
    entry["change"]["ci95"] = {"n": 20, "mean": -0.001, "low": -0.012, "high": 0.01}
    entry["verdict"] = "none"
    text = report.markdown(results)
    assert "-0.1% [-1.2, +1.0]: none" in cells(text, "per-packet change at 1,000 bans (95 % interval)")
    assert "- no per-packet cost at 1,000 bans that a ±3% interval can see: met" in text


def test_the_prose_follows_the_recorded_settings(results):
    results["settings"]["phases"]["latency"]["timeout_s"] = 2.5
    results["settings"]["quick_sizes"] = [500, 5000]
    results["settings"]["perpacket_seconds"] = 0.7
    results["goals"]["ban_s"] = {"10000": 8.0}
    text = report.markdown(results)
    assert "a connect that timed out after 2.5 s" in text
    assert "`BENCH_QUICK=1 make bench` (500 and 5,000 bans" in text
    assert "Goals: 10,000 in under 8 s with the default setup" in text
    assert "in a loop (0.7 s windows)" in text


def test_each_size_of_the_scale_phase_has_a_row(results):
    lines = report.markdown(results).splitlines()
    scale = lines[lines.index("## 2. Ban scale"):lines.index("## 3. Restore after restart")]
    assert results["settings"]["sizes"]
    for size in results["settings"]["sizes"]:
        assert sum(line.startswith("| %s | " % format(size, ",")) for line in scale) == 2  # ban and task tables


def test_an_unfinished_run_says_how_far_it_got():
    entry = {"ban": [{"done": False, "of": 10000, "count": 6420, "cap_s": 90}], "ban_summary": {
        "n": 0, "unfinished": [{"count": 6420, "of": 10000, "cap_s": 90}]}}
    assert report.timed_cell(entry, "ban") == "**not finished in 90 s** (6,420 of 10,000 done)"
    assert report.timed_cell(None, "ban") == "not run"


def test_write_renders_results_md_next_to_results_json(results, tmp_path):
    results["timeline"] = None
    report.write(results, str(tmp_path))
    assert (tmp_path / "results.md").read_text() == report.markdown(results)
    assert not (tmp_path / "timeline.png").exists()
