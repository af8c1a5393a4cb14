# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tools/bench/perpacket.py: the client's connects counted per window between two switches of the ruleset."""

from __future__ import annotations

import json
import subprocess
import time

import bench_modules

perpacket = bench_modules.load("perpacket")


def test_a_window_counts_whole_bins_after_the_margin_only():
    # Bins of 10 ms from t0 = 100.0; 5 connects in every bin (JSON keys are strings).
    loop = {"t0": 100.0, "bin_s": 0.01, "counts": {str(slot): 5 for slot in range(200)}}
    # Switch at 100.5, next at 101.0, margin 20 ms: bins 53..99 (47 bins, 235 connects in 0.47 s).
    assert perpacket.window_rate(loop, 100.5, 101.0, 0.02) == 500.0
    loop["counts"]["60"] = 0
    assert perpacket.window_rate(loop, 100.5, 101.0, 0.02) == round(230 / 0.47, 1)
    assert perpacket.window_rate(loop, 100.5, 100.51, 0.02) is None


def test_a_window_with_a_stalled_attempt_is_left_out():
    loop = {"t0": 100.0, "bin_s": 0.01, "counts": {str(slot): 5 for slot in range(200)}, "stalls": {"70": 1}}
    assert perpacket.window_rate(loop, 100.5, 101.0, 0.02) is None
    assert perpacket.window_rate(loop, 101.0, 101.5, 0.02) == 500.0


def test_a_window_the_loop_did_not_cover_to_its_end_is_left_out():
    loop = {"t0": 100.0, "t_end": 101.2, "bin_s": 0.01, "counts": {str(slot): 5 for slot in range(120)}}
    assert perpacket.window_rate(loop, 100.5, 101.0, 0.02) == 500.0
    # Past t_end the bins are empty because the loop had stopped, not because nothing got through.
    assert perpacket.window_rate(loop, 101.0, 101.5, 0.02) is None


def test_windows_run_from_a_switch_s_end_to_the_next_one_s_start():
    loop = {"t0": 100.0, "bin_s": 0.01, "counts": {str(slot): 5 for slot in range(400)}}
    loop["counts"].update({str(slot): 1 for slot in range(150, 200)})  # B's window: 100 answers/s
    # A switched from 100.4 to 100.5, B from 101.0 to 101.5 (a slow iptables-nft switch), the end at 102.0.
    moments = [["A", 100.4, 100.5], ["B", 101.0, 101.5], ["end", 102.0, 102.1]]
    rates = perpacket.window_rates(loop, moments, 0.02)
    # A: bins 53..99 (not the 0.5 s B's switch took); B: bins 153..199.
    assert rates == {"A": [500.0], "B": [100.0]}


def test_the_client_loop_ends_once_its_stop_file_exists(tmp_path):
    # Loopback only, port 9 (closed: each connect is refused at once); the loop would run 60 s without the file.
    stop = tmp_path / "stop"
    argv = ["python3", "-c", perpacket.CONNECT_LOOP, "127.0.0.1", "9", "60", "0.5", "0.005", str(stop)]
    loop = subprocess.Popen(argv, stdout=subprocess.PIPE, universal_newlines=True)
    time.sleep(0.3)
    stop.touch()
    out = json.loads(loop.communicate(timeout=30)[0])
    assert out["t_end"] - out["t0"] < 30 and sum(out["counts"].values()) > 0
