# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""module_utils/_runner.py: failures carry the fail_json keys; commands are argv lists in the C locale."""

from __future__ import annotations

import pytest

from ansible_collections.floodguard.shield.plugins.module_utils import _runner as runner


class FakeModule:
    def __init__(self):
        self.exited = None
        self.failed = None
        self.ran = []

    def get_bin_path(self, name):
        return {"ip": "/usr/sbin/ip"}.get(name)

    def run_command(self, cmd, environ_update=None):
        self.ran.append((cmd, environ_update))
        return 0, "out", ""

    def exit_json(self, **result):
        self.exited = result

    def fail_json(self, **result):
        self.failed = result
        raise SystemExit(1)


def test_every_failure_has_the_five_keys():
    assert runner.ModuleFailure("no").result() == dict(msg="no", cmd=None, rc=None, stdout="", stderr="")
    failure = runner.ModuleFailure("bad", cmd=["x"], rc=2, stdout="o", stderr="e")
    assert failure.result() == dict(msg="bad", cmd=["x"], rc=2, stdout="o", stderr="e")


def test_long_commands_are_shortened():
    assert runner.shorten_cmd(["a"] * 9) == ["a"] * 9
    assert runner.shorten_cmd(["a"] * 20) == ["a"] * 8 + ["... (12 more arguments)"]


def test_find_command_fails_with_the_given_message():
    module = FakeModule()
    assert runner.find_command(module, "ip", "unused") == "/usr/sbin/ip"
    with pytest.raises(runner.ModuleFailure, match="^install it$"):
        runner.find_command(module, "nosuch", "install it")


def test_commands_run_in_the_c_locale():
    module = FakeModule()
    assert runner.run_argv(module, ["/usr/sbin/ip", "-j", "address", "show"]) == (0, "out", "")
    assert module.ran == [(["/usr/sbin/ip", "-j", "address", "show"], {"LC_ALL": "C"})]


def test_run_module_exits_or_fails():
    module = FakeModule()
    runner.run_module(module, lambda m: dict(changed=False, answer=42))
    assert module.exited == dict(changed=False, answer=42)

    def job(_module):
        raise runner.ModuleFailure("broken", rc=1)

    with pytest.raises(SystemExit):
        runner.run_module(FakeModule(), job)
