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
