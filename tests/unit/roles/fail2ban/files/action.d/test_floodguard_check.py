# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tests of roles/fail2ban/files/action.d/floodguard_check.py, the option checker of the floodguard actions.

It runs as a script next to the actions (its directory first on sys.path); here that directory is put
on sys.path the same way, after an action was loaded as fail2ban loads it.
"""

from __future__ import annotations

import importlib
import sys

from ansible_collections.floodguard.shield.tests.unit.roles.fail2ban.actions import ACTION_DIR, load_action

nftables_action = load_action("floodguard_nftables.py")
sys.path.insert(0, str(ACTION_DIR))
checker = importlib.import_module("floodguard_check")


def test_the_checker_uses_the_actions_it_is_deployed_with():
    assert checker.load_action("floodguard_nftables.py") is nftables_action
    assert checker.batching is nftables_action.batching


def test_command_line_check_validates_jail_options(capsys):
    # what the role can run before it writes a jail, since fail2ban-client -t skips Python actions
    assert checker.main(["floodguard_nftables.py", "port=http,https", "protocol=tcp", "blocktype=drop", "chain=INPUT"]) == 0
    assert "meta l4proto { tcp } th dport { 80, 443 } drop" in capsys.readouterr().out
    assert checker.main(["floodguard_nftables.py", "port=htttp"]) == 1
    assert "port: unknown service name 'htttp'" in capsys.readouterr().err
    assert checker.main(["floodguard_nftables.py", "port"]) == 2
    assert checker.main(["port=http"]) == 2
    assert "usage" in capsys.readouterr().err


def test_command_line_check_of_the_escalation_action(capsys):
    assert checker.main(["floodguard_escalate.py", "threshold=5", "ipv6prefix=56"]) == 0
    assert "OK: prefixes /24 and /56 banned after 5 of their addresses within 600 s" in capsys.readouterr().out
    assert checker.main(["floodguard_escalate.py", "threshold=1"]) == 1
    assert "floodguard_escalate: threshold: '1' must be a whole number from 2" in capsys.readouterr().err


def test_command_line_check_of_the_other_actions(capsys):
    assert checker.main(["floodguard_wafv2.py", "ipsets=a,b", "scope=regional"]) == 0
    assert "OK: a b (REGIONAL)" in capsys.readouterr().out
    assert checker.main(["floodguard_wafv2.py", "ipsets=a", "flushdelay=soon"]) == 1
    assert checker.main(["floodguard_nginx.py", "socket=run/ban.sock"]) == 1
    assert "floodguard_nginx: socket: 'run/ban.sock' must be an absolute path" in capsys.readouterr().err


# Lines of `fail2ban-client --dump`, verbatim from fail2ban 1.0.2 (Debian 12) and 1.1.0 (Debian 13), which print
# them alike: the role checks every jail's options of the floodguard actions from it.
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
# Written for these tests, in the form of the lines above: the other floodguard actions and one that is not.
OTHER_ACTIONS = """['set', 'web', 'addaction', 'floodguard_nginx', '/etc/fail2ban/action.d/floodguard_nginx.py', \
'{"socket": "/run/floodguard-nginx/ban.sock"}']
['set', 'web', 'addaction', 'other', '/x.py', '{}']
['set', 'web', 'addaction', 'floodguard_wafv2', '/etc/fail2ban/action.d/floodguard_wafv2.py', '{"ipsets": ""}']
"""


def test_configured_actions_are_read_from_fail2ban_dump():
    assert checker.configured_actions(DUMP) == [
        ("manual", "floodguard_nftables", "floodguard_nftables.py",
         {"name": "manual", "port": "all", "protocol": "tcp,udp", "blocktype": "drop", "allowlist": "127.0.0.0/8 ::1 10.0.0.0/8"}),
        ("api", "floodguard_nftables", "floodguard_nftables.py", {"port": "htttp"}),
    ]
    problems = [checker.check_options(file_name, jail, options) for jail, _name, file_name, options in checker.configured_actions(DUMP)]
    assert problems[0] == ""
    assert "port: unknown service name 'htttp'" in problems[1]


def test_every_floodguard_action_is_checked():
    found = checker.configured_actions(OTHER_ACTIONS)
    assert found == [("web", "floodguard_nginx", "floodguard_nginx.py", {"socket": "/run/floodguard-nginx/ban.sock"}),
                     ("web", "floodguard_wafv2", "floodguard_wafv2.py", {"ipsets": ""})]
    problems = [checker.check_options(file_name, jail, options) for jail, _name, file_name, options in found]
    assert problems[0] == ""
    assert problems[1].startswith("ipsets: empty")


def test_check_configuration_reads_fail2bans_dump_and_names_each_problem(tmp_path, capsys):
    client = tmp_path / "fail2ban-client"
    client.write_text("#!/bin/sh\n[ \"$1\" = --dump ] || exit 9\ncat <<'DUMP'\n%s%sDUMP\n" % (DUMP, OTHER_ACTIONS))
    client.chmod(0o755)
    assert checker.check_configuration(str(client)) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2
    assert err[0].startswith("floodguard_nftables: jail api, action floodguard_nftables: port: unknown service name 'htttp'")
    assert err[1].startswith("floodguard_wafv2: jail web, action floodguard_wafv2: ipsets: empty")
    client.write_text("#!/bin/sh\necho 'Failed during configuration: Have not found any log file' >&2\nexit 255\n")
    assert checker.check_configuration(str(client)) == 1
    assert "fail2ban-client --dump failed (rc=255): Failed during configuration" in capsys.readouterr().err
