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
stats = bench_modules.load("stats")

RECORDED = json.loads((Path(__file__).parent / "fixtures" / "results.json").read_text())


@pytest.fixture
def results():
    return copy.deepcopy(RECORDED)


def cells(text, first):
    row = next(line for line in text.splitlines() if line.startswith("| %s | " % first))
    return [cell.strip() for cell in row.strip("|").split("|")]


def test_every_section_of_a_complete_run_is_there(results):
    text = report.markdown(results)
    for heading in ("# Benchmarks", "## Summary", "## The run", "## Goals of the default setup", "## 1. Attack-to-drop latency",
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


def test_the_latency_table_splits_the_time_at_found_and_ban(results):
    entry = results["latency"]["floodguard"]
    entry["reject_to_found_s"] = {"n": 2, "median": 0.011}
    entry["found_to_last_found_s"] = {"n": 2, "median": 0.021}
    entry["found_to_ban_s"] = {"n": 2, "median": 0.034}
    text = report.markdown(results)
    assert "| rejection → \"Found\" | → maxretry-th \"Found\" | \"Found\" → \"Ban\" | \"Ban\" → dropped |" in text
    row = cells(text, results["settings"]["system_labels"]["floodguard"])
    assert row[7:10] == ["11 ms", "21 ms", "34 ms"]
    # A results.json from before the split (and CrowdSec's rows) shows dashes.
    assert cells(text, results["settings"]["system_labels"]["crowdsec"])[7:10] == ["–", "–", "–"]


def test_the_running_time_has_a_row_per_phase_and_a_total(results):
    results["phase_wall_s"] = {"testbed": {"once": 30.0}, "prepare": {"floodguard": 60.0, "crowdsec": 42.0},
                               "latency": {"floodguard": 90.0, "crowdsec": 240.0}, "lb": {"once": 300.0}}
    results["wall_s"] = 780.0
    text = report.markdown(results)
    assert "the whole run: 13.0 min" in text
    assert cells(text, "Phase")[1:] == [results["settings"]["system_labels"]["floodguard"],
                                        results["settings"]["system_labels"]["crowdsec"], "once", "total"]
    assert cells(text, "latency")[1:] == ["1.5 min", "4.0 min", "–", "5.5 min"]
    assert cells(text, "lb")[1:] == ["–", "–", "5.0 min", "5.0 min"]


def test_a_run_without_phase_times_has_no_running_time_section(results):
    results.pop("phase_wall_s", None)
    assert "## Running time" not in report.markdown(results)


def test_the_plot_has_one_panel_per_system_on_a_shared_time_axis(results, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

    saved = {}
    monkeypatch.setattr(plt, "close", lambda figure: saved.setdefault("figure", figure))
    bucket = {"t": 0.0, "served": 4, "rejected": 0, "dropped": 0}
    results["timeline"] = {system: {"attacker": [bucket, dict(bucket, t=6.0, served=10, rejected=20)],
                                    "client": [dict(bucket, served=5)], "first_reject_t": 6.1, "fail2ban_ban_t": 6.2,
                                    "first_drop_sent_t": 6.3 if system == "floodguard" else 14.0, "timeout_s": 0.5}
                           for system in results["settings"]["systems"]}
    report.write(results, str(tmp_path))
    assert (tmp_path / "timeline.png").stat().st_size > 0
    panels = saved["figure"].axes
    assert [axes.get_title() for axes in panels] == [results["settings"]["system_labels"][name]
                                                     for name in results["settings"]["systems"]]
    assert panels[0].get_shared_x_axes().joined(panels[0], panels[-1])


def test_the_page_leads_with_the_summary_table(results):
    lines = report.markdown(results).splitlines()
    first_table = next(index for index, line in enumerate(lines) if line.startswith("|"))
    assert lines[first_table].startswith("| Figure | ")
    assert lines.index("## Summary") < first_table < lines.index("## The run")
    assert [line for line in lines[:first_table] if line.startswith("## ")] == ["## Summary"]


def test_the_botnet_floods_have_rows_in_the_lead_table(results):
    def flood(seconds=None, count=None, peak=200):
        runs = [{"done": True, "seconds": seconds, "uncertainty_s": 0.2}] if seconds else [{"done": False, "count": count, "of": 9900}]
        summary = stats.summarize_runs(runs)
        summary["upstream_peak_rps_max"] = peak
        return {"summary": summary, "runs": runs}

    systems = results["settings"]["systems"]
    results["botnet"] = {systems[0]: {"sizes": {"10000": flood(12.5, peak=221)}},
                         systems[1]: {"sizes": {"10000": flood(count=2366, peak=1680)}}}
    results["settings"].setdefault("phases", {})["botnet"] = {"cap_s": 30}
    text = "\n".join(report.lead_section(results))
    banned = cells(text, "botnet of 10,000 addresses: 99 % banned after")
    assert banned[1:3] == ["12.5 s", "> 30 s (2,366 of 9,900)"]
    peak = cells(text, "botnet of 10,000 addresses: upstream's peak requests")
    assert peak[1:3] == ["221/s", "1680/s"] and peak[-1] == "%.2f×" % (221 / 1680)


def test_the_restore_section_gives_each_run_s_enforcement_gap(results):
    system = next(iter(results["scale"]))
    size = next(iter(results["scale"][system]))
    restores = results["scale"][system][size]["restore"]
    restores[0]["unenforced"] = {"reads_short": 2, "closed": True, "upper_s": 1.25, "lower_s": 0.1, "least_dropped": 0}
    text = "\n".join(report.restore_section(results))
    gaps = text[text.index("How long fewer than N were dropped"):]
    assert cells(gaps, format(int(size), ","))[1] == "100 ms–1.25 s (down to 0 dropped)"


def test_a_run_without_the_gap_figure_leaves_its_table_out(results):
    for entry in results["scale"].values():
        for size in entry.values():
            for run in size.get("restore", []):
                run.pop("unenforced", None)
    assert "How long fewer than N" not in "\n".join(report.restore_section(results))


def test_a_figure_whose_runs_overlap_the_best_peer_s_is_a_tie_not_a_lead_or_a_trail(results):
    ours, peer = results["settings"]["ours"], next(s for s in results["settings"]["systems"] if s != results["settings"]["ours"])
    size = next(iter(results["scale"][ours]))
    name = "ban %s until dropped" % format(int(size), ",")
    summaries = {ours: results["scale"][ours][size]["ban_summary"], peer: results["scale"][peer][size]["ban_summary"]}
    summaries[ours].update(median=1.53, min=1.48, max=1.66, unfinished=[])
    summaries[peer].update(median=1.52, min=1.50, max=1.56, unfinished=[])
    values = {ours: 1.53, peer: 1.52}
    assert report.standing(results, name, values, ours, peer) == "ties"
    summaries[peer].update(median=1.20, min=1.10, max=1.30)
    assert report.standing(results, name, {ours: 1.53, peer: 1.20}, ours, peer) == "trails"
    # A percentile has no runs' range: its order decides.
    assert report.standing(results, "attack-to-drop p95", {ours: 0.03, peer: 0.5}, ours, peer) == "leads"
