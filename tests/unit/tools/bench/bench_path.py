# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Puts tools/ and tools/bench/ on sys.path, as tools/bench/run.py runs: the bench modules import each other."""

from __future__ import annotations

import sys
from pathlib import Path

TOOLS = Path(__file__).resolve().parents[4] / "tools"
for folder in (TOOLS, TOOLS / "bench"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
