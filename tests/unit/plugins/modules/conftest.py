# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs a module's real main() with its arguments, against replayed fail2ban-client runs."""

from __future__ import annotations

import json

import pytest

from unittest import mock

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.floodguard.shield.tests.unit.plugins.module_utils.fail2ban_fixtures import VERSIONS, Replay, load

BINARIES = {"fail2ban-client": "/usr/bin/fail2ban-client", "ip": "/usr/sbin/ip"}


@pytest.fixture(params=VERSIONS)
def captured(request):
    return load(request.param)


@pytest.fixture
def run_module(capsys):
    """run_module(main, args, captures, expected, check_mode, diff, binaries, replay) -> (result, replay)."""

    def run(main, args, captures, expected, check_mode=False, diff=False, binaries=None, replay=None):
        replay = replay or Replay(captures, expected)
        found = BINARIES if binaries is None else binaries
        module_args = dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff)
        with patch_module_args(module_args), \
                mock.patch.object(basic.AnsibleModule, "run_command", lambda self, cmd, **kw: replay(cmd, **kw)), \
                mock.patch.object(basic.AnsibleModule, "get_bin_path", lambda self, name, *a, **kw: found.get(name)):
            with pytest.raises(SystemExit):
                main()
        result = json.loads(capsys.readouterr().out)
        replay.done()
        return result, replay

    return run
