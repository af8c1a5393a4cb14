# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tools/bench/run.py: the wall time of each phase that results.json records."""

from __future__ import annotations

import time

import pytest

import bench_modules

run = bench_modules.load("run")


def test_timed_returns_the_result_and_adds_up_the_phases_time(monkeypatch):
    clock = iter([100.0, 102.5, 200.0, 201.0])
    monkeypatch.setattr(time, "monotonic", lambda: next(clock))
    results = {}
    assert run.timed(results, "perpacket", "floodguard", lambda value: value * 2, 21) == 42
    run.timed(results, "perpacket", "floodguard", lambda: None)  # a second size of the same system adds up
    assert results["phase_wall_s"] == {"perpacket": {"floodguard": 3.5}}


def test_a_phase_that_fails_still_has_its_time(monkeypatch):
    clock = iter([10.0, 14.0])
    monkeypatch.setattr(time, "monotonic", lambda: next(clock))
    results = {"phase_wall_s": {"testbed": {"once": 20.0}}}

    def failing():
        raise RuntimeError("converge failed")

    with pytest.raises(RuntimeError):
        run.timed(results, "prepare", "crowdsec", failing)
    assert results["phase_wall_s"] == {"testbed": {"once": 20.0}, "prepare": {"crowdsec": 4.0}}


def test_botnet_runs_after_scale_and_perpacket_for_each_system(monkeypatch, tmp_path):
    order = []

    class Bench:
        action = None

        def up(self, distro, reuse):
            return ["192.0.2.%d" % item for item in range(10)]

    for name in ("latency", "botnet"):
        monkeypatch.setattr(run.PHASE_MODULES[name], "run",
                            lambda host, args, name=name: order.append((name, host.action)) or {})
    monkeypatch.setattr(run, "prepare", lambda host, args, results, first: setattr(host, "action", args.action))
    monkeypatch.setattr(run, "scale_and_perpacket", lambda host, args, results: order.append(("scale", host.action)))
    monkeypatch.setattr(run, "save", lambda results, args, folder: None)
    args = run.settings.parse_args(["--only", "botnet,scale,latency", "--systems", "floodguard,fail2ban-nftables"])
    args.started = time.time()
    run.measure(Bench(), args, run.new_results(args), str(tmp_path))
    assert order == [("latency", "floodguard"), ("scale", "floodguard"), ("botnet", "floodguard"),
                     ("latency", "fail2ban-nftables"), ("scale", "fail2ban-nftables"), ("botnet", "fail2ban-nftables")]
