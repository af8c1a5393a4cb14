# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""module_utils/_fail2ban_client.py: the commands it runs and how it explains failures, on captured runs."""

from __future__ import annotations

import ipaddress
import json
import os
import stat

import pytest

from ansible_collections.floodguard.shield.plugins.module_utils import _fail2ban_client as client
from ansible_collections.floodguard.shield.tests.unit.plugins.module_utils.fail2ban_fixtures import (
    IPV4,
    IPV6,
    VERSIONS,
    Replay,
    load,
)

# Output no captured run printed, written for these tests (not captured).
INVENTED_CASES = {
    "other_failure": {"rc": 255, "stdout": "", "stderr": "some\nthing broke\n"},
    "bulk_window_set": {"rc": 0, "stderr": "", "stdout": "61.0\n"},
    "actionproperties_python_without_declaration": {"rc": 0, "stderr": "", "stdout": (
        "The jail python-action action mail has the following properties:\ndest, sender\n")},
}


class FakeModule:
    """What the client uses of AnsibleModule: get_bin_path, run_command answered by a Replay, and tmpdir."""

    def __init__(self, replay, path="/usr/bin/fail2ban-client", tmpdir=None):
        self.run_command = replay
        self.path = path
        self.tmpdir = tmpdir

    def get_bin_path(self, name):
        assert name == "fail2ban-client"
        return self.path


@pytest.fixture(params=VERSIONS)
def captured(request):
    return load(request.param)


@pytest.mark.parametrize("name", ["server_down_ping", "server_down_status"])
def test_server_down_says_how_to_start_it(captured, name):
    run = captured[name]
    assert run["rc"] == 255
    error = client.explain_failure(["fail2ban-client"] + run["argv"][1:], run["rc"], run["stdout"], run["stderr"])
    assert "not running" in error.msg and "systemctl start fail2ban" in error.msg
    assert error.result()["stderr"] == run["stderr"]


@pytest.mark.parametrize("name", ["not_root_ping", "not_root_status"])
def test_permission_denied_says_to_become_root(captured, name):
    run = captured[name]
    error = client.explain_failure(run["argv"][3:], run["rc"], run["stdout"], run["stderr"])
    assert "Permission denied" in error.msg and "become: true" in error.msg
    assert error.rc == 255


def test_unknown_jail_is_named(captured):
    run = captured["status_unknown_jail"]
    error = client.explain_failure(run["argv"], run["rc"], run["stdout"], run["stderr"])
    assert error.msg == "fail2ban has no jail named 'nosuch'."


def test_other_failures_quote_the_last_line():
    run = INVENTED_CASES["other_failure"]
    error = client.explain_failure(["fail2ban-client", "x"], run["rc"], run["stdout"], run["stderr"])
    assert error.msg == "fail2ban-client failed (rc=255): thing broke"


def test_a_long_command_is_shortened_in_the_error(captured):
    run = captured["unbanip_many"]
    error = client.explain_failure(run["argv"], 255, "", "")
    assert error.cmd[:4] == ["fail2ban-client", "set", "manual", "unbanip"]
    assert error.cmd[-1] == "... (%d more arguments)" % (len(run["argv"]) - 8) and len(error.cmd) == 9


def test_not_installed():
    with pytest.raises(client.Fail2banError, match="fail2ban is not installed"):
        client.Fail2banClient(FakeModule(Replay({}, []), path=None))


def test_ban_runs_one_argv_in_the_c_locale(captured):
    replay = Replay(captured, [(["set", "manual", "banip"] + IPV4 + IPV6, "banip_many")])
    assert client.Fail2banClient(FakeModule(replay)).change("manual", "banip", IPV4 + IPV6) == (1, False)
    replay.done()
    assert replay.calls[0][0] == "/usr/bin/fail2ban-client"


def test_a_failed_batch_says_what_earlier_batches_did(captured, monkeypatch):
    prefix = ["set", "manual", "banip"]
    # Room for four addresses per call; the second call finds the server gone (fail2ban-client
    # prints the same error for every command then).
    budget = sum(len(arg) + 9 for arg in ["/usr/bin/fail2ban-client"] + prefix + IPV4[:4])
    monkeypatch.setattr(client, "batch_budget", lambda: budget)
    replay = Replay(captured, [(prefix + IPV4[:4], "banip_again"), (prefix + IPV4[4:8], "server_down_status")])
    with pytest.raises(client.Fail2banError) as info:
        client.Fail2banClient(FakeModule(replay)).change("manual", "banip", IPV4[:8])
    assert "not running" in info.value.msg
    assert "Earlier batches had already passed 4 of the 8 addresses to 'banip'" in info.value.msg


def test_require_jail_names_the_jails(captured):
    replay = Replay(captured, [(["status"], "status")])
    with pytest.raises(client.Fail2banError) as info:
        client.Fail2banClient(FakeModule(replay)).require_jail("nosuch")
    assert "Its jails: iptables-jail, manual, nginx-req-limit, no-actions, permanent, sshd." in info.value.msg


def test_network_support_of_a_python_action_is_what_it_declares(captured):
    # floodguard.shield.fail2ban's in-process action: no actionban, so the client asks for supports_networks.
    replay = Replay(captured, [
        (["get", "python-action", "actionproperties", "floodguard_nftables"], "actionproperties_python"),
        (["get", "python-action", "action", "floodguard_nftables", "supports_networks"], "supports_networks_python")])
    assert client.Fail2banClient(FakeModule(replay)).action_network_support("python-action", "floodguard_nftables") == (
        True, "the action declares supports_networks")
    replay.done()


def test_network_support_of_a_python_action_that_does_not_declare_it():
    replay = Replay(INVENTED_CASES, [
        (["get", "python-action", "actionproperties", "mail"], "actionproperties_python_without_declaration")])
    assert client.Fail2banClient(FakeModule(replay)).action_network_support("python-action", "mail") == (
        False, "it is a Python action that does not declare supports_networks")


# --- the bulk path: one bulkban call where every action of the jail has the method ---------------

BULK_JAIL, BULK_ACTION = "python-action", "floodguard_nftables"
BULK_ADDRESSES = [str(ipaddress.ip_address("198.18.0.1") + i) for i in range(1500)]


class BulkReplay(Replay):
    """A Replay that answers the bulkban call with a capture, after checking the file it names."""

    def __init__(self, captures, expected, answer):
        super().__init__(captures, expected)
        self.answer = answer
        self.files = []

    def __call__(self, args, environ_update=None, **kwargs):
        if args[1:6] == ["set", BULK_JAIL, "action", BULK_ACTION, client.BULK_METHOD]:
            self.calls.append(list(args))
            path = json.loads(args[6])["path"]
            with open(path) as handle:
                self.files.append((path, stat.S_IMODE(os.stat(path).st_mode), handle.read().split()))
            capture = self.captures[self.answer]
            return capture["rc"], capture["stdout"], capture["stderr"]
        return super().__call__(args, environ_update=environ_update, **kwargs)


BULK_CHECKS = [(["get", BULK_JAIL, "actions"], "actions_python"),
               (["get", BULK_JAIL, "actionmethods", BULK_ACTION], "actionmethods_python")]


def test_a_bulk_ban_is_one_call_with_the_addresses_in_a_private_file(captured, tmp_path):
    replay = BulkReplay(captured, BULK_CHECKS + [(["get", BULK_JAIL, "bantime.increment"], "bantime_increment_python")],
                        "bulkban_python")
    result = client.Fail2banClient(FakeModule(replay, tmpdir=str(tmp_path))).change(BULK_JAIL, "banip", BULK_ADDRESSES)
    replay.done()
    assert result == (1, True)
    [(path, mode, addresses)] = replay.files
    assert os.path.dirname(path) == str(tmp_path) and mode == 0o600 and addresses == BULK_ADDRESSES
    assert not os.path.exists(path)


def test_a_jail_that_increments_ban_times_gets_the_batches(captured, tmp_path):
    replay = BulkReplay(captured, BULK_CHECKS + [
        (["get", BULK_JAIL, "bantime.increment"], "bantime_increment_on"),
        (["get", BULK_JAIL, "actionproperties", BULK_ACTION], "actionproperties_python"),
        (["set", BULK_JAIL, "action", BULK_ACTION, "bulk_window", "61"], INVENTED_CASES["bulk_window_set"]),
        (["set", BULK_JAIL, "banip"] + BULK_ADDRESSES, "banip_again"),
        (["set", BULK_JAIL, "action", BULK_ACTION, "bulk_window", "0"], INVENTED_CASES["bulk_window_set"])],
        "bulkban_python")
    result = client.Fail2banClient(FakeModule(replay, tmpdir=str(tmp_path))).change(BULK_JAIL, "banip", BULK_ADDRESSES)
    replay.done()
    assert result == (1, False) and replay.files == []


def test_a_refused_bulk_ban_fails_with_fail2bans_reason_and_leaves_no_file(captured, tmp_path):
    replay = BulkReplay(captured, BULK_CHECKS + [(["get", BULK_JAIL, "bantime.increment"], "bantime_increment_python")],
                        "bulkban_refused_python")
    with pytest.raises(client.Fail2banError) as info:
        client.Fail2banClient(FakeModule(replay, tmpdir=str(tmp_path))).change(BULK_JAIL, "banip", BULK_ADDRESSES)
    assert info.value.msg.startswith("fail2ban refused the bulk ban: 1 entry of ") and info.value.msg.endswith(
        "is not an IP address or network (e.g. not-an-ip): nothing was banned. Nothing was changed.")
    assert os.listdir(str(tmp_path)) == []
