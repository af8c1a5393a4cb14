# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tests of roles/fail2ban/files/action.d/floodguard_nftables_check.py, the option checker of the nftables action.

It runs as a script next to the action (its directory first on sys.path); here that directory is put
on sys.path the same way, after the action was loaded as fail2ban loads it.
"""

from __future__ import annotations

import importlib
import sys

from test_floodguard_nftables import ACTION_DIR, load_action_module

action_module = load_action_module()
sys.path.insert(0, str(ACTION_DIR))
checker = importlib.import_module("floodguard_nftables_check")


def test_the_checker_uses_the_action_it_is_deployed_with():
    assert checker.action is action_module


def test_command_line_check_validates_jail_options(capsys):
    # what the role can run before it writes a jail, since fail2ban-client -t skips Python actions
    assert checker.main(["port=http,https", "protocol=tcp", "blocktype=drop", "chain=INPUT"]) == 0
    assert "meta l4proto { tcp } th dport { 80, 443 } drop" in capsys.readouterr().out
    assert checker.main(["port=htttp"]) == 1
    assert "port: unknown service name 'htttp'" in capsys.readouterr().err
    assert checker.main(["port"]) == 2


# Lines of `fail2ban-client --dump`, verbatim from fail2ban 1.0.2 (Debian 12) and 1.1.0 (Debian 13), which print
# them alike: the role checks every jail's options of this action from it.
DUMP = """['set', 'loglevel', 'INFO']
['add', 'manual', 'systemd']
['set', 'manual', 'addjournalmatch', '_SYSTEMD_UNIT=x.service']
['set', 'manual', 'addaction', 'floodguard_nftables', '/etc/fail2ban/action.d/floodguard_nftables.py', \
'{"name": "manual", "port": "all", "protocol": "tcp,udp", "blocktype": "drop", "allowlist": "127.0.0.0/8 ::1 10.0.0.0/8"}']
['set', 'sshd', 'addaction', 'nftables']
['multi-set', 'sshd', 'action', 'nftables', [['actionban', '<nftables> add element <table_family> <table> <addr_set> { <ip> }']]]
['set', 'api', 'addaction', 'floodguard_nftables', '/etc/fail2ban/action.d/floodguard_nftables.py', '{"port": "htttp"}']
['start', 'manual']
"""


def test_configured_actions_are_read_from_fail2ban_dump():
    assert checker.configured_actions(DUMP) == [
        ("manual", "floodguard_nftables",
         {"name": "manual", "port": "all", "protocol": "tcp,udp", "blocktype": "drop", "allowlist": "127.0.0.0/8 ::1 10.0.0.0/8"}),
        ("api", "floodguard_nftables", {"port": "htttp"}),
    ]
    problems = [checker.check_options(jail, options) for jail, _name, options in checker.configured_actions(DUMP)]
    assert problems[0] == ""
    assert "port: unknown service name 'htttp'" in problems[1]
