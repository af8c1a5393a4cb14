# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tests of the fail2ban action roles/fail2ban/files/action.d/floodguard_wafv2.py.

The action is loaded as the role installs it: copied into one directory with the collection's
_wafv2.py next to it. Stubber tests count the API calls; moto (server mode) shows the lock token at
work with two "hosts" writing one set. fail2ban is not on PyPI: without it, a stand-in of its
ActionBase is used (the Molecule scenario waf runs the action in real fail2ban).
"""

from __future__ import annotations

import json
import shutil
import threading
import time
import types
import weakref

import boto3
import botocore.session
import pytest
from botocore.config import Config

from ansible_collections.floodguard.shield.tests.unit.plugins.module_utils.wafv2_fixtures import (
    REGION, SCOPE, get_answer, get_params, ipv4_block, moto_client, moto_server, set_id, stubbed_client)
from ansible_collections.floodguard.shield.tests.unit.roles.fail2ban.actions import ACTION_DIR, load_action
from ansible_collections.floodguard.shield.tests.unit.roles.fail2ban.actions import wait_for as wait_for_action

# The action and the files it loads, copied as the role installs them (_wafv2.py is the role's link to
# plugins/module_utils/_wafv2.py).
INSTALLED_FILES = ("floodguard_wafv2.py", "floodguard_batching.py", "floodguard_ports.py", "_wafv2.py")


def wait_for(predicate, timeout=20):
    """AWS answers slower than the other back ends (moto, retries with backoff)."""
    return wait_for_action(predicate, timeout)


@pytest.fixture(scope="module")
def action_module(tmp_path_factory):
    directory = tmp_path_factory.mktemp("action.d")
    for name in INSTALLED_FILES:
        shutil.copy(ACTION_DIR / name, directory / name)
    return load_action("floodguard_wafv2.py", directory)


class BanManager:
    def __init__(self, banned):
        self.banned = list(banned)

    def getBanList(self):  # pylint: disable=invalid-name  # fail2ban's name
        return list(self.banned)


class Jail:
    def __init__(self, name="nginx-req-limit", banned=()):
        self.name = name
        self.actions = types.SimpleNamespace(banManager=BanManager(banned), active=True)


def make_action(action_module, tmp_path, ipsets, jail=None, **options):
    options = dict(dict(ipsets=" ".join(ipsets), region=REGION, statedir=str(tmp_path), flushdelay="0.2",
                        reconciledelay="0", retrymax="1"), **options)
    return action_module.Action(jail or Jail(), "floodguard_wafv2", **options)


def use_client(action_module, action, client, names):
    action._ip_sets = action_module.wafv2.IPSets(client, SCOPE, ["%s:%s" % (name, set_id(name)) for name in names],
                                                 sleep=lambda s: None)


def update_params(name, addresses, token="token-1"):
    return {"Name": name, "Scope": SCOPE, "Id": set_id(name), "Addresses": addresses, "LockToken": token}


def test_options_are_checked(action_module):
    with pytest.raises(action_module.WafConfigError, match="ipsets: empty"):
        action_module.Settings.from_options({})
    with pytest.raises(action_module.WafConfigError, match="scope"):
        action_module.Settings.from_options({"ipsets": "a", "scope": "GLOBAL"})
    with pytest.raises(action_module.WafConfigError, match="allowlist"):
        action_module.Settings.from_options({"ipsets": "a", "allowlist": "not-an-ip"})


def test_a_burst_of_1000_bans_is_one_update(action_module, tmp_path):
    client, stubber = stubbed_client()
    burst = ipv4_block("203.0.113.0", 256) + ipv4_block("198.51.100.0", 256) + ipv4_block("10.1.0.0", 488)
    stubber.add_response("get_ip_set", get_answer("v4", []), get_params("v4"))
    stubber.add_response("update_ip_set", {"NextLockToken": "n"},
                         update_params("v4", action_module.wafv2.sorted_cidrs(burst)))
    action = make_action(action_module, tmp_path, ["v4"])
    use_client(action_module, action, client, ["v4"])
    with stubber:
        action.start()
        for cidr in burst:
            action.ban({"ip": cidr.split("/")[0]})
        assert wait_for(lambda: action.syncs == 1)
        time.sleep(0.5)
        action.stop()
    stubber.assert_no_pending_responses()
    assert action._ip_sets.calls == {"get_ip_set": 1, "update_ip_set": 1} and action.syncs == 1
    assert len(json.loads((tmp_path / "floodguard-wafv2-nginx-req-limit.json").read_text())["owned"]) == 1000


def test_aws_unreachable_loses_nothing_and_catches_up(action_module, tmp_path):
    action = make_action(action_module, tmp_path, ["v4"])
    unreachable = botocore.session.get_session().create_client(
        "wafv2", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="y",
        endpoint_url="http://127.0.0.1:9", config=Config(connect_timeout=1, retries={"total_max_attempts": 1}))
    use_client(action_module, action, unreachable, ["v4"])
    for address in ("203.0.113.7", "203.0.113.8", "203.0.113.9"):
        action.ban({"ip": address})
    action.unban({"ip": "203.0.113.9"})
    with pytest.raises(action_module.wafv2.WafError) as error:
        action.sync()
    assert error.value.code == "EndpointConnectionError"
    assert action._pending == {"203.0.113.7/32": True, "203.0.113.8/32": True, "203.0.113.9/32": False}
    client, stubber = stubbed_client()
    stubber.add_response("get_ip_set", get_answer("v4", ["203.0.113.9/32"]), get_params("v4"))
    stubber.add_response("update_ip_set", {"NextLockToken": "n"}, update_params("v4", ["203.0.113.7/32", "203.0.113.8/32"]))
    use_client(action_module, action, client, ["v4"])
    with stubber:
        action.sync()
    stubber.assert_no_pending_responses()
    assert action._pending == {} and action._owned == {"203.0.113.7/32", "203.0.113.8/32"}


def test_allowlisted_addresses_never_reach_the_edge(action_module, tmp_path):
    action = make_action(action_module, tmp_path, ["v4"], allowlist="192.0.2.0/24 2001:db8::/32")
    action.ban({"ip": "192.0.2.7"})
    action.ban({"ip": "2001:db8::7"})
    action.ban({"ip": "203.0.113.7"})
    assert action._pending == {"203.0.113.7/32": True}


@pytest.fixture(scope="module")
def moto_endpoint():
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def moto_sets(moto_endpoint, request):
    client = moto_client(moto_endpoint)
    prefix = request.node.name.replace("_", "-")[:60]

    def create(count, version="IPV4", addresses=()):
        refs = []
        for index in range(count):
            summary = client.create_ip_set(Name="%s-%d" % (prefix, index), Scope=SCOPE, IPAddressVersion=version,
                                           Addresses=list(addresses) if index == 0 else [])["Summary"]
            refs.append((summary["Name"], summary["Id"]))
        return refs

    def contents(ref):
        return set(client.get_ip_set(Name=ref[0], Scope=SCOPE, Id=ref[1])["IPSet"]["Addresses"])

    return moto_endpoint, create, contents


def moto_action(action_module, tmp_path, endpoint, refs, jail=None, **options):
    return make_action(action_module, tmp_path, ["%s:%s" % ref for ref in refs], jail=jail, endpoint=endpoint,
                       **options)


@pytest.fixture
def aws_environment(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


def separate_process():
    return types.SimpleNamespace(actions=weakref.WeakSet(), write_lock=threading.Lock())


def test_two_hosts_writing_one_set_at_once_lose_nothing(action_module, tmp_path, moto_sets, aws_environment):
    endpoint, create, contents = moto_sets
    refs = create(1)
    hosts = []
    for index in range(2):
        state = tmp_path / ("host%d" % index)
        state.mkdir()
        host = moto_action(action_module, state, endpoint, refs, flushdelay="0")
        host._shared = separate_process()  # two hosts: two fail2ban processes, no shared write lock
        hosts.append(host)
    for host in hosts:
        host.start()
    blocks = [ipv4_block("10.%d.0.0" % (index + 1), 300) for index in range(2)]

    def flood(host, block):
        for cidr in block:  # one ban at a time: many small syncs that race the other host's
            host.ban({"ip": cidr.split("/")[0]})
            time.sleep(0.001)

    threads = [threading.Thread(target=flood, args=pair) for pair in zip(hosts, blocks)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wait_for(lambda: contents(refs[0]) == set(blocks[0]) | set(blocks[1]), timeout=60), len(contents(refs[0]))
    for host in hosts:
        host.stop()
    assert sum(host._ip_sets.lock_conflicts for host in hosts) >= 1


def test_25000_bans_land_in_three_sets_and_unbans_leave(action_module, tmp_path, moto_sets, aws_environment):
    endpoint, create, contents = moto_sets
    refs = create(3)
    action = moto_action(action_module, tmp_path, endpoint, refs)
    action.start()
    wanted = ipv4_block("10.0.0.1", 25000)
    for cidr in wanted:
        action.ban({"ip": cidr.split("/")[0]})
    assert wait_for(lambda: not action._pending, timeout=120)
    assert [len(contents(ref)) for ref in refs] == [10000, 10000, 5000]
    for cidr in wanted[:100]:
        action.unban({"ip": cidr.split("/")[0]})
    assert wait_for(lambda: not action._pending)
    assert sum(len(contents(ref)) for ref in refs) == 24900 and not any(
        wanted[0] in contents(ref) for ref in refs)
    action.stop()


def test_reconcile_at_start_removes_only_this_hosts_expired_bans(action_module, tmp_path, moto_sets, aws_environment):
    endpoint, create, contents = moto_sets
    refs = create(1, addresses=["203.0.113.1/32", "203.0.113.2/32", "198.51.100.9/32"])
    # Before the restart this host had put .1 and .2 into the set; .1 expired while fail2ban was down;
    # 198.51.100.9 is another host's ban. fail2ban restores .2 and a ban .3 made meanwhile.
    (tmp_path / "floodguard-wafv2-nginx-req-limit.json").write_text(
        json.dumps({"owned": ["203.0.113.1/32", "203.0.113.2/32"]}))
    jail = Jail(banned=["203.0.113.2", "203.0.113.3"])
    action = moto_action(action_module, tmp_path, endpoint, refs, jail=jail, reconciledelay="0.3")
    action.start()
    assert wait_for(lambda: action.syncs >= 1)
    assert contents(refs[0]) == {"203.0.113.2/32", "203.0.113.3/32", "198.51.100.9/32"}
    # fail2ban stopping flushes its bans: the edge keeps them for the next start.
    jail.actions.active = False
    assert action.flush() is True
    action.stop()
    assert contents(refs[0]) == {"203.0.113.2/32", "203.0.113.3/32", "198.51.100.9/32"}


def test_unban_all_removes_this_hosts_addresses_only(action_module, tmp_path, moto_sets, aws_environment):
    endpoint, create, contents = moto_sets
    refs = create(1, addresses=["198.51.100.9/32"])
    action = moto_action(action_module, tmp_path, endpoint, refs)
    action.start()
    action.ban({"ip": "203.0.113.5"})
    assert wait_for(lambda: "203.0.113.5/32" in contents(refs[0]))
    assert action.flush() is True
    assert wait_for(lambda: contents(refs[0]) == {"198.51.100.9/32"})
    action.stop()


def test_a_recreated_set_gets_back_every_ban_of_this_host(action_module, tmp_path, moto_sets, aws_environment):
    endpoint, create, contents = moto_sets
    refs = create(1)
    action = make_action(action_module, tmp_path, [refs[0][0]], endpoint=endpoint)  # by name
    action.start()
    action.ban({"ip": "203.0.113.5"})
    assert wait_for(lambda: contents(refs[0]) == {"203.0.113.5/32"})
    client = boto3.client("wafv2", endpoint_url=endpoint, region_name=REGION)
    token = client.get_ip_set(Name=refs[0][0], Scope=SCOPE, Id=refs[0][1])["LockToken"]
    client.delete_ip_set(Name=refs[0][0], Scope=SCOPE, Id=refs[0][1], LockToken=token)
    action.ban({"ip": "203.0.113.6"})  # fails: the set is gone
    assert wait_for(lambda: action.failures >= 1)
    new_id = client.create_ip_set(Name=refs[0][0], Scope=SCOPE, IPAddressVersion="IPV4", Addresses=[])["Summary"]["Id"]
    assert wait_for(lambda: contents((refs[0][0], new_id)) == {"203.0.113.5/32", "203.0.113.6/32"})
    action.stop()


def test_reload_keeps_the_action_and_applies_changed_options(action_module, tmp_path):
    action = make_action(action_module, tmp_path, ["v4"])
    client, _stubber = stubbed_client()
    use_client(action_module, action, client, ["v4"])
    assert action.clearAllParams() is None
    action.reload(ipsets="v4", region=REGION, statedir=str(tmp_path), flushdelay="0.2", reconciledelay="0",
                  retrymax="1")
    assert action._ip_sets is not None  # same options: same client
    action.reload(ipsets="v4 v6", region=REGION, statedir=str(tmp_path))
    assert action._ip_sets is None and action._settings.ipsets == ["v4", "v6"]


def test_an_unban_by_one_jail_keeps_what_another_jail_of_the_host_bans(
        action_module, tmp_path, moto_sets, aws_environment):
    endpoint, create, contents = moto_sets
    refs = create(1)
    shared = separate_process()
    jails = []
    for name in ("manual", "nginx-req-limit"):
        jail = moto_action(action_module, tmp_path, endpoint, refs, jail=Jail(name), flushdelay="0")
        jail._shared = shared
        jail.start()
        jails.append(jail)
    manual, limit = jails
    manual.ban({"ip": "203.0.113.60"})
    limit.ban({"ip": "203.0.113.60"})
    manual.ban({"ip": "203.0.113.61"})
    assert wait_for(lambda: not manual._pending and not limit._pending)
    manual.unban({"ip": "203.0.113.60"})
    manual.unban({"ip": "203.0.113.61"})
    assert wait_for(lambda: not manual._pending)
    assert contents(refs[0]) == {"203.0.113.60/32"}
    assert manual._owned == set() and limit._owned == {"203.0.113.60/32"}
    limit.unban({"ip": "203.0.113.60"})
    assert wait_for(lambda: contents(refs[0]) == set())
    for jail in jails:
        jail.stop()


def test_a_ban_pending_in_another_jail_is_not_removed(action_module, tmp_path):
    shared = separate_process()
    manual = make_action(action_module, tmp_path, ["v4"], jail=Jail("manual"))
    limit = make_action(action_module, tmp_path, ["v4"], jail=Jail("nginx-req-limit"))
    other_sets = make_action(action_module, tmp_path, ["other-v4"], jail=Jail("recidive"))
    for action in (manual, limit, other_sets):
        action._shared = shared
        shared.actions.add(action)
    client, stubber = stubbed_client()
    use_client(action_module, manual, client, ["v4"])
    manual._owned = {"203.0.113.60/32", "203.0.113.62/32"}
    limit.ban({"ip": "203.0.113.60"})  # not written yet: still wanted
    other_sets.ban({"ip": "203.0.113.62"})  # another jail, but other sets: no reason to keep it here
    manual.unban({"ip": "203.0.113.60"})
    manual.unban({"ip": "203.0.113.62"})
    stubber.add_response("get_ip_set", get_answer("v4", ["203.0.113.60/32", "203.0.113.62/32"]), get_params("v4"))
    stubber.add_response("update_ip_set", {"NextLockToken": "n"}, update_params("v4", ["203.0.113.60/32"]))
    with stubber:
        manual.sync()
    stubber.assert_no_pending_responses()
    assert manual._owned == set() and manual._pending == {}
    assert "API calls 2: get_ip_set 1, update_ip_set 1" == manual.api_calls_text()
