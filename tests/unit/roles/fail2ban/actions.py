# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the tests of the role's fail2ban actions (roles/fail2ban/files/action.d) share: loading an action
as fail2ban does, and waiting for its flusher thread."""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

from ansible_collections.floodguard.shield.tests.unit.roles.fail2ban.fail2ban_stand_in import provide_action_base

ACTION_DIR = Path(__file__).resolve().parents[4] / "roles" / "fail2ban" / "files" / "action.d"


def load_action(file_name, directory=ACTION_DIR):
    """The action file_name as fail2ban loads it: by path, with the files next to it (floodguard_batching.py, ...).

    From the role's directory it is loaded once, under the name the checker floodguard_check.py uses.
    """
    provide_action_base()
    module_name = file_name[:-len(".py")]
    if directory == ACTION_DIR and module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, Path(directory) / file_name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if directory == ACTION_DIR:
        sys.modules[module_name] = module
    return module


def wait_for(predicate, timeout=5.0):
    """True as soon as predicate() is, False when it is not within timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())
