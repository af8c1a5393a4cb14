# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""wafv2_ban's whole flow against moto in server mode (real HTTP, real LockToken checks)."""

from __future__ import annotations

import json

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.floodguard.shield.plugins.modules.wafv2_ban import main
from ansible_collections.floodguard.shield.tests.unit.plugins.module_utils.wafv2_fixtures import REGION, ipv4_block, moto_client

CREDENTIALS = {"access_key": "testing", "secret_key": "testing", "region": REGION}


@pytest.fixture
def waf(moto_endpoint, request):
    """A wafv2 client on moto and fresh IP sets named after the test: <test>-v4, -v4b, -v6."""
    client = moto_client(moto_endpoint)
    prefix = request.node.name.replace("_", "-")[:80]
    names = {}
    for suffix, version in (("v4", "IPV4"), ("v4b", "IPV4"), ("v6", "IPV6")):
        name = "%s-%s" % (prefix, suffix)
        summary = client.create_ip_set(Name=name, Scope="REGIONAL", IPAddressVersion=version, Addresses=[])["Summary"]
        names[suffix] = (name, summary["Id"])
    return client, names, moto_endpoint


def addresses_of(client, ref):
    return sorted(client.get_ip_set(Name=ref[0], Scope="REGIONAL", Id=ref[1])["IPSet"]["Addresses"])


def run_module(capsys, args, check_mode=False, diff=False):
    with patch_module_args(dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff)):
        with pytest.raises(SystemExit):
            main()
    return json.loads(capsys.readouterr().out)


def args_for(waf, addresses, **extra):
    _client, names, endpoint = waf
    return dict(CREDENTIALS, endpoint_url=endpoint, ip_sets=[names["v4"][0], names["v6"][0]], addresses=addresses,
                **extra)


def test_check_mode_apply_then_idempotent(capsys, waf):
    client, names, _endpoint = waf
    wanted = ["203.0.113.7", "2001:DB8::7", "198.51.100.0/24"]
    result = run_module(capsys, args_for(waf, wanted), check_mode=True, diff=True)
    assert result["changed"] is True and result["added_count"] == 3
    assert addresses_of(client, names["v4"]) == [] and addresses_of(client, names["v6"]) == []
    assert "203.0.113.7/32" in result["diff"]["after"] and result["diff"]["before"] == ""

    result = run_module(capsys, args_for(waf, wanted))
    assert result["changed"] is True
    assert result["added"] == ["198.51.100.0/24", "203.0.113.7/32", "2001:db8::7/128"]
    assert addresses_of(client, names["v4"]) == ["198.51.100.0/24", "203.0.113.7/32"]
    assert addresses_of(client, names["v6"]) == ["2001:db8::7/128"]
    assert [ip_set["count"] for ip_set in result["ip_sets"]] == [2, 1]

    for check_mode in (True, False):
        # Another spelling of the same addresses: nothing to write.
        again = run_module(capsys, args_for(waf, ["203.0.113.7/32", "2001:db8::7/128", "198.51.100.0/24"]),
                           check_mode=check_mode)
        assert again["changed"] is False and again["added"] == []
        assert "update_ip_set" not in again["api_calls"]


def test_unban_removes_only_what_is_there(capsys, waf):
    client, names, _endpoint = waf
    run_module(capsys, args_for(waf, ["203.0.113.7", "203.0.113.8", "2001:db8::7"]))
    result = run_module(capsys, args_for(waf, ["203.0.113.7/32", "2001:db8::7", "192.0.2.99"], state="absent"))
    assert result["changed"] is True and result["removed"] == ["203.0.113.7/32", "2001:db8::7/128"]
    assert addresses_of(client, names["v4"]) == ["203.0.113.8/32"] and addresses_of(client, names["v6"]) == []
    again = run_module(capsys, args_for(waf, ["203.0.113.7"], state="absent"))
    assert again["changed"] is False


def test_bad_input_changes_nothing(capsys, waf):
    client, names, _endpoint = waf
    result = run_module(capsys, args_for(waf, ["203.0.113.7", "not-an-ip", "198.51.100.1/24"]))
    assert result["failed"] is True
    assert "'not-an-ip'" in result["msg"] and "198.51.100.1/24" in result["msg"] and "Nothing was changed" in result["msg"]
    assert addresses_of(client, names["v4"]) == []


def test_allowlisted_addresses_are_refused_unless_forced(capsys, waf):
    client, names, _endpoint = waf
    args = args_for(waf, ["203.0.113.7", "192.0.2.10"], allowlist=["192.0.2.0/24"])
    result = run_module(capsys, args)
    assert result["failed"] is True and result["error_code"] == "Allowlisted"
    assert "192.0.2.10 (the allowlist entry 192.0.2.0/24)" in result["msg"] and "203.0.113.7 " not in result["msg"]
    assert addresses_of(client, names["v4"]) == []
    loopback = run_module(capsys, args_for(waf, ["127.0.0.1"]))
    assert loopback["failed"] is True and "loopback" in loopback["msg"]
    forced = run_module(capsys, dict(args, force=True))
    assert forced["changed"] is True and addresses_of(client, names["v4"]) == ["192.0.2.10/32", "203.0.113.7/32"]


def test_unknown_set_fails_with_the_aws_code(capsys, waf):
    result = run_module(capsys, dict(args_for(waf, ["203.0.113.7"]), ip_sets=["no-such-set"]))
    assert result["failed"] is True and result["error_code"] == "WAFNonexistentItemException"
    assert "no-such-set" in result["msg"]


def test_more_than_10000_spread_over_two_sets(capsys, waf):
    client, names, _endpoint = waf
    wanted = ipv4_block("10.0.0.1", 12000)
    result = run_module(capsys, dict(args_for(waf, wanted), ip_sets=[names["v4"][0], names["v4b"][0]], list_limit=5))
    assert result["changed"] is True and result["added_count"] == 12000 and result["truncated"] is True
    assert len(addresses_of(client, names["v4"])) == 10000 and len(addresses_of(client, names["v4b"])) == 2000
    assert result["api_calls"]["update_ip_set"] == 2


def test_a_stale_lock_token_is_refused_by_moto(waf):
    # The premise of the retry logic: moto, like AWS, refuses a write with an old token.
    client, names, _endpoint = waf
    name, set_id = names["v4"]
    token = client.get_ip_set(Name=name, Scope="REGIONAL", Id=set_id)["LockToken"]
    client.update_ip_set(Name=name, Scope="REGIONAL", Id=set_id, Addresses=["192.0.2.1/32"], LockToken=token)
    with pytest.raises(client.exceptions.WAFOptimisticLockException):
        client.update_ip_set(Name=name, Scope="REGIONAL", Id=set_id, Addresses=["192.0.2.2/32"], LockToken=token)
