# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Imports the modules of tools/bench/ as tools/bench/run.py does: they import each other (and tools/flood.py)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

TOOLS = Path(__file__).resolve().parents[4] / "tools"


def load(name):
    """tools/bench/<name>.py, or tools/<name>.py, with both folders on sys.path."""
    for folder in (TOOLS, TOOLS / "bench"):
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
    return importlib.import_module(name)
