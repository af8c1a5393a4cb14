# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verbatim fail2ban-client runs captured by fixtures/capture_fail2ban.py, and a run_command that replays them."""

from __future__ import annotations

import ipaddress
import json
import os

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
# fail2ban 1.0.x on Debian 12 and 1.1.x on Debian 13, the versions the collection supports.
VERSIONS = ("fail2ban-1.0.2-debian12", "fail2ban-1.1.0-debian13")
# The addresses capture_fail2ban.py bans in the jail 'manual', in its order and as fail2ban lists them.
IPV4 = [str(ipaddress.ip_address("203.0.113.1") + i) for i in range(200)]
IPV6 = ["2001:db8::%x" % (i + 1) for i in range(49)] + ["2001:db8::abcd"]


def load(version):
    with open(os.path.join(FIXTURES, version + ".json")) as handle:
        return json.load(handle)


class Replay:
    """Stands in for AnsibleModule.run_command: answers each expected call with a captured run.

    expected is a list of (argv without the binary, capture name); a call that is not the next
    expected one fails the test, so the tests also prove which commands run, in which order, and
    that nothing else does (no ban, no unban) when it must not.
    """

    def __init__(self, captures, expected):
        self.captures = captures
        self.expected = list(expected)
        self.calls = []

    def __call__(self, args, environ_update=None, **kwargs):
        assert isinstance(args, list), "commands must be argv lists, never shell strings: %r" % (args,)
        assert environ_update == {"LC_ALL": "C"}, "every command must run in the C locale"
        assert not kwargs.get("use_unsafe_shell")
        self.calls.append(list(args))
        assert self.expected, "unexpected extra command: %r" % (args[:8],)
        argv, name = self.expected.pop(0)
        assert args[1:] == argv, "expected %r, ran %r" % (argv[:8], args[1:9])
        capture = self.captures[name] if isinstance(name, str) else name
        return capture["rc"], capture["stdout"], capture["stderr"]

    def done(self):
        assert not self.expected, "commands expected but not run: %r" % ([expected[0][:4] for expected in self.expected],)
