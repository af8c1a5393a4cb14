# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tools/bench/heal.py: its configuration per action and its report section."""

from __future__ import annotations

import json

import bench_modules

heal = bench_modules.load("heal")
report = bench_modules.load("report")

# INVENTED_ shape of results["heal"] (the driver's JSON); the figures are not measurements.
INVENTED_RESULTS = {
    "nftables": {"idle": [{"bans": 0, "seconds": 60, "cpu_s": 0.09, "core_percent": 0.15}],
                 "faults": [{"fault": "nft flush ruleset", "bans": 100000, "healed_after_s": 2.41, "repair_s": 2.3, "cpu_s": 2.5},
                            {"fault": "nft delete table", "bans": 100000, "healed_after_s": None, "note": "no heal logged within 300 s"}]},
}


def test_every_fault_is_a_shell_command_for_the_jail():
    for backend, faults in heal.FAULTS.items():
        assert backend in heal.WATCHING_ACTION
        for _name, command in faults:
            assert "{" not in command.format(jail="manual").replace("{ ", "")


def test_the_driver_is_valid_python():
    compile(heal.DRIVER, "heal-driver", "exec")


def test_the_section_shows_each_fault_and_the_idle_cost():
    lines = heal.section({"heal": json.loads(json.dumps(INVENTED_RESULTS))})
    assert lines[0] == "## Self-healing"
    assert "| nftables | 100,000 | nft flush ruleset | 2.41 | 2.30 | 2.50 |" in lines
    assert "| nftables | 100,000 | nft delete table | - | no heal logged within 300 s | - |" in lines
    assert "| nftables | 0 | 60 | 0.09 | 0.150 |" in lines


def test_the_report_has_the_section_only_when_the_phase_ran():
    assert heal.section({}) == []
    assert heal.section in report.SECTIONS
