# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tools/bench/detection.py and its probe: the variants' lines and regexes, and the report section."""

from __future__ import annotations

import json
import re
import types

import bench_modules

detection = bench_modules.load("detection")
probe = bench_modules.load("detection_probe")
report = bench_modules.load("report")

# INVENTED_ shape of results["detection"] (the probe's JSON); the figures are not measurements.
INVENTED_RESULTS = {
    "floodguard": {"stock": {"burst_lines_per_s": [9000, 11000, 10000], "steady_lag_s": {"2000": 0.1, "4000": 1.5},
                             "steady_lines_per_s": 2000},
                   "compact": {"burst_lines_per_s": [None], "steady_lag_s": {"2000": None}, "steady_lines_per_s": None},
                   "load_average": 3.1},
}
HOST = r"(?P<host>\d+\.\d+\.\d+\.\d+)"


def fail2ban_regex(variant):
    """The variant's failregex (after its prefregex) as Python sees it, with fail2ban's <HOST> and <F-CONTENT>."""
    return re.compile(variant["failregex"].replace("<HOST>", HOST))


def test_every_variant_matches_its_own_lines_once_the_date_is_cut():
    for name, variant in probe.VARIANTS.items():
        text = probe.Lines(variant["line"]).make(3)
        addresses = []
        for line in text.splitlines():
            rest = re.sub(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d|^\d{10}\.\d{3}", "", line)
            if "prefregex" in variant:
                content = re.match(variant["prefregex"].replace("<F-CONTENT>", "(?P<content>").replace("</F-CONTENT>", ")"), rest)
                assert content, (name, rest)
                rest = content.group("content")
            found = fail2ban_regex(variant).search(rest)
            assert found, (name, rest)
            addresses.append(found.group("host"))
        assert addresses == ["100.64.0.1", "100.64.0.2", "100.64.0.3"], name


def test_the_phase_runs_on_floodguards_defaults_only():
    # Nothing is banned in it: the other fail2ban systems' ban actions would not change the figure.
    for action, kind in (("fail2ban-iptables", "fail2ban"), ("fail2ban-nftables", "fail2ban"), ("crowdsec", "crowdsec")):
        assert detection.run(types.SimpleNamespace(action=action, kind=kind), types.SimpleNamespace(quick=True)) is None


def test_the_section_shows_the_median_the_range_and_the_steady_rate():
    lines = detection.section({"detection": json.loads(json.dumps(INVENTED_RESULTS))})
    assert lines[0] == "## Detection rate"
    assert "| floodguard | %s | 10,000 | 9,000-11,000 | 2,000 | 3.1 |" % detection.LABELS["stock"] in lines
    assert "| floodguard | %s | - | - | - | 3.1 |" % detection.LABELS["compact"] in lines
    assert detection.section({}) == []


def test_the_report_includes_the_section():
    assert detection.section in report.SECTIONS
    assert set(detection.LABELS) == set(detection.VARIANTS) == set(probe.VARIANTS)
