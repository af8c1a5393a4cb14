# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to floodguard.shield: how its modules run commands and report failures.

Commands are argv lists found with get_bin_path and run in the C locale (parsers read English);
nothing goes through a shell. A failure is a ModuleFailure, which carries the arguments of
fail_json. Not a public API: it may change.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

C_LOCALE = {"LC_ALL": "C"}


class ModuleFailure(Exception):
    """A failure a module reports as is: msg, plus the command that failed when there was one."""

    def __init__(self, msg, cmd=None, rc=None, stdout="", stderr=""):
        super(ModuleFailure, self).__init__(msg)
        self.msg = msg
        self.cmd = cmd
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr

    def result(self):
        """The keyword arguments of fail_json: every failure has all five keys."""
        return dict(msg=self.msg, cmd=self.cmd, rc=self.rc, stdout=self.stdout, stderr=self.stderr)


def shorten_cmd(cmd, keep=8):
    """The argv for a result: a batch of 10,000 addresses is summarised, not echoed."""
    if len(cmd) <= keep + 1:
        return list(cmd)
    return list(cmd[:keep]) + ["... (%d more arguments)" % (len(cmd) - keep)]


def find_command(module, name, missing, error=ModuleFailure):
    """The path of command name on the host; raises error(missing) when it is not there."""
    path = module.get_bin_path(name)
    if not path:
        raise error(missing)
    return path


def run_argv(module, cmd):
    """(rc, stdout, stderr) of the argv list cmd, run in the C locale."""
    return module.run_command(cmd, environ_update=C_LOCALE)


def run_module(module, job):
    """Exits the module with what job(module) returns, or fails with the ModuleFailure it raises."""
    try:
        result = job(module)
    except ModuleFailure as exc:
        module.fail_json(**exc.result())
    module.exit_json(**result)
