# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tools/bench/settings.py: the command line, BENCH_QUICK, and what results.json records of them."""

from __future__ import annotations

import pytest

import bench_modules

settings = bench_modules.load("settings")


def test_quick_runs_fewer_sizes_and_repeats_and_never_publishes():
    args = settings.parse_args([], environ={"BENCH_QUICK": "1"})
    assert (args.sizes, args.perpacket_sizes, args.repeats, args.latency_runs) == ([1000, 10000], [10000], 1, 5)
    assert args.docs is False
    assert args.command_line == "make bench (BENCH_QUICK=1)"


def test_a_full_run_publishes_the_docs():
    args = settings.parse_args([], environ={})
    assert args.sizes == [1000, 10000, 100000]
    assert args.docs is True
    assert settings.parse_args(["--only", "latency"], environ={}).docs is False


@pytest.mark.parametrize("argv", [["--only", "latency,speed"], ["--actions", ","], ["--latency-runs", "40"]])
def test_bad_options_fail_naming_the_option(argv, capsys):
    with pytest.raises(SystemExit):
        settings.parse_args(argv, environ={})
    assert argv[0] in capsys.readouterr().err


def test_the_recorded_settings_hold_what_the_report_prints():
    args = settings.parse_args([], environ={"BENCH_QUICK": "1"})
    recorded = settings.recorded(args, {"latency": {"concurrency": 2}})
    assert recorded["quick_sizes"] == [1000, 10000]
    assert recorded["ban_network"] == "198.18.0.0/15"
    assert recorded["phases"] == {"latency": {"concurrency": 2}}
    assert settings.backend("iptables-multiport") == "iptables-multiport"
    assert settings.backend("nftables") == "nftables"
