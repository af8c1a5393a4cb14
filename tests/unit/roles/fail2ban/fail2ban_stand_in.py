# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""fail2ban's ActionBase (and Utils) for the role's action tests where fail2ban is not installed (the controller containers)."""

from __future__ import annotations

import logging
import sys
import types


def provide_action_base():
    """Makes `from fail2ban.server.actions import ActionBase` work: fail2ban's own, else the part the actions use."""
    try:
        import fail2ban.server.actions  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
        return
    except ImportError:
        pass

    class ActionBase:  # the part of fail2ban.server.action.ActionBase the actions rely on
        def __init__(self, jail, name):
            self._jail = jail
            self._name = name
            self._logSys = logging.getLogger("fail2ban.%s" % self.__class__.__name__)

    class Utils:  # fail2ban.server.utils.Utils: the process-wide sleep step of its waits
        DEFAULT_SLEEP_INTERVAL = 0.2

    for name in ("fail2ban", "fail2ban.server"):
        sys.modules.setdefault(name, types.ModuleType(name))
    utils = sys.modules.get("fail2ban.server.utils") or types.ModuleType("fail2ban.server.utils")
    utils.Utils = getattr(utils, "Utils", Utils)
    sys.modules["fail2ban.server.utils"] = utils
    actions = sys.modules.get("fail2ban.server.actions") or types.ModuleType("fail2ban.server.actions")
    actions.ActionBase = getattr(actions, "ActionBase", ActionBase)
    sys.modules["fail2ban.server.actions"] = actions
