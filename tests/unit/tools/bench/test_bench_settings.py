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
    assert (args.sizes, args.perpacket_sizes, args.repeats, args.latency_runs) == ([10000], [10000], 3, 3)
    assert args.perpacket_pairs >= 20 and args.cap < 90
    assert args.docs is False
    assert args.command_line == "make bench (BENCH_QUICK=1)"
    # Under its 10 minutes: floodguard and CrowdSec with its 1 s poll, no phase without a peer.
    assert args.systems == ["floodguard", "crowdsec-1s"]
    assert "latency" in args.only and "botnet" in args.only and not {"lb", "sync", "waf", "heal"} & set(args.only)
    assert settings.parse_args(["--only", "lb", "--systems", "floodguard,crowdsec"], environ={"BENCH_QUICK": "1"}).only == ["lb"]


def test_a_full_run_publishes_the_docs():
    args = settings.parse_args([], environ={})
    assert args.sizes == [10000, 100000]
    assert args.systems == settings.DEFAULT_SYSTEMS and "floodguard-f2b-waits" not in args.systems
    assert args.only == [phase for phase in settings.PHASES if phase not in ("heal", "lb", "sync", "waf")]
    assert args.docs is True
    assert settings.parse_args(["--only", "latency"], environ={}).docs is False


@pytest.mark.parametrize("argv", [["--only", "latency,speed"], ["--systems", ","], ["--systems", "snort"], ["--actions", "pf"],
                                  ["--latency-runs", "40"], ["--repeats", "2"], ["--perpacket-pairs", "10"]])
def test_bad_options_fail_naming_the_option(argv, capsys):
    with pytest.raises(SystemExit):
        settings.parse_args(argv, environ={})
    assert argv[0] in capsys.readouterr().err


def test_the_recorded_settings_hold_what_the_report_prints():
    args = settings.parse_args([], environ={})
    recorded = settings.recorded(args, {"latency": {"concurrency": 2}})
    assert recorded["quick_sizes"] == [10000]
    assert recorded["ban_network"] == "198.18.0.0/15"
    assert recorded["phases"] == {"latency": {"concurrency": 2}}
    assert recorded["systems"] == settings.DEFAULT_SYSTEMS
    assert recorded["system_labels"]["crowdsec"] == settings.SYSTEMS["crowdsec"]["label"]


def test_every_system_names_its_firewall_and_crowdsec_its_poll():
    for system in settings.SYSTEMS.values():
        assert system["backend"] in ("nftables", "iptables-multiport")
        assert system["kind"] in ("fail2ban", "crowdsec")
        assert system["kind"] != "crowdsec" or system["poll_s"] in (1, 10)
        assert system["kind"] != "fail2ban" or system["banaction"] in ("nftables", "iptables-multiport")
    assert settings.OURS in settings.SYSTEMS


def test_the_older_actions_option_names_its_systems():
    assert settings.parse_args(["--actions", "iptables-multiport,nftables"], environ={}).systems == [
        "fail2ban-iptables", "floodguard"]
