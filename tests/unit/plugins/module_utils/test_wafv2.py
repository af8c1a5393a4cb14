# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_wafv2 against botocore's Stubber: what moto does not do (10,000 per set, throttling, limits, lock races)."""

from __future__ import annotations

import filecmp
import pathlib

import botocore.session
import pytest
import yaml
from botocore.config import Config

from ansible_collections.floodguard.shield.plugins.module_utils import _wafv2
from ansible_collections.floodguard.shield.plugins.module_utils._wafv2 import IPSet, IPSets, WafError, plan_changes
from ansible_collections.floodguard.shield.tests.unit.plugins.module_utils.wafv2_fixtures import (
    REGION, SCOPE, aws_error, get_answer, get_params, ipv4_block, set_id, stubbed_client)

REPO = pathlib.Path(__file__).resolve().parents[4]


def ip_sets_for(client, names, sleeps):
    return IPSets(client, SCOPE, ["%s:%s" % (name, set_id(name)) for name in names], sleep=sleeps.append,
                  rand=lambda: 0.5)


def update_params(name, addresses, token):
    return {"Name": name, "Scope": SCOPE, "Id": set_id(name), "Addresses": addresses, "LockToken": token}


def test_waf_cidr_normalises_spellings():
    assert _wafv2.waf_cidr("203.0.113.7") == _wafv2.waf_cidr("203.0.113.7/32") == "203.0.113.7/32"
    assert _wafv2.waf_cidr("2001:DB8:0::7") == "2001:db8::7/128"
    with pytest.raises(ValueError):
        _wafv2.waf_cidr("not-an-ip")


def test_same_address_in_another_spelling_writes_nothing():
    client, stubber = stubbed_client()
    stubber.add_response("get_ip_set", get_answer("v4", ["203.0.113.7/32"]), get_params("v4"))
    with stubber:
        sets, _before, _after, added, removed = ip_sets_for(client, ["v4"], []).apply(
            [_wafv2.waf_cidr("203.0.113.7")], [])
    stubber.assert_no_pending_responses()
    assert added == [] and removed == [] and sets[0].addresses == {"203.0.113.7/32"}


def test_25000_addresses_fill_three_sets_in_order_one_update_each():
    client, stubber = stubbed_client()
    wanted = ipv4_block("10.0.0.1", 25000)
    names = ["a", "b", "c"]
    for name in names:
        stubber.add_response("get_ip_set", get_answer(name, []), get_params(name))
    sorted_wanted = _wafv2.sorted_cidrs(wanted)
    for index, name in enumerate(names):
        part = sorted_wanted[index * 10000:(index + 1) * 10000]
        stubber.add_response("update_ip_set", {"NextLockToken": "next"}, update_params(name, part, "token-1"))
    ip_sets = ip_sets_for(client, names, [])
    with stubber:
        sets, _before, _after, added, _removed = ip_sets.apply(wanted, [])
    stubber.assert_no_pending_responses()
    assert [len(ip_set.addresses) for ip_set in sets] == [10000, 10000, 5000]
    assert len(added) == 25000
    assert ip_sets.calls == {"get_ip_set": 3, "update_ip_set": 3}


def test_full_sets_fail_naming_the_shortfall_and_write_nothing():
    client, stubber = stubbed_client()
    stubber.add_response("get_ip_set", get_answer("a", ipv4_block("10.0.0.1", 9999)), get_params("a"))
    with stubber, pytest.raises(WafError) as error:
        ip_sets_for(client, ["a"], []).apply(ipv4_block("192.0.2.1", 3), [])
    stubber.assert_no_pending_responses()
    assert error.value.code == "IPSetsFull"
    assert "2 IPV4 addresses do not fit" in error.value.msg and "add another IPV4 set" in error.value.msg


def test_ipv6_without_an_ipv6_set_is_an_error():
    with pytest.raises(WafError, match="no IPV6 set is given"):
        plan_changes([IPSet("a", "1", "IPV4", [], "t")], ["2001:db8::7/128"], [])


def test_ipv4_and_ipv6_go_to_their_own_sets_and_removal_hits_every_set():
    sets = [IPSet("v4", "1", "IPV4", ["198.51.100.1/32"], "t"), IPSet("v6", "2", "IPV6", ["2001:db8::1/128"], "t")]
    changed, added, removed = plan_changes(sets, ["203.0.113.7/32", "2001:db8::7/128"], ["2001:db8::1/128"])
    assert changed == {"v4": {"198.51.100.1/32", "203.0.113.7/32"}, "v6": {"2001:db8::7/128"}}
    assert added == ["203.0.113.7/32", "2001:db8::7/128"] and removed == ["2001:db8::1/128"]


def test_throttling_is_retried_with_growing_backoff():
    client, stubber = stubbed_client()
    aws_error(stubber, "get_ip_set", "ThrottlingException")
    aws_error(stubber, "get_ip_set", "WAFLimitsExceededException")
    stubber.add_response("get_ip_set", get_answer("a", []), get_params("a"))
    stubber.add_response("update_ip_set", {"NextLockToken": "n"}, update_params("a", ["192.0.2.1/32"], "token-1"))
    sleeps = []
    ip_sets = ip_sets_for(client, ["a"], sleeps)
    with stubber:
        ip_sets.apply(["192.0.2.1/32"], [])
    stubber.assert_no_pending_responses()
    assert sleeps == [0.75, 1.5] and ip_sets.throttled == 2


def test_limits_exceeded_to_the_end_returns_the_aws_code():
    client, stubber = stubbed_client()
    stubber.add_response("get_ip_set", get_answer("a", []), get_params("a"))
    for _attempt in range(3):
        aws_error(stubber, "update_ip_set", "WAFLimitsExceededException", "rate exceeded")
    ip_sets = IPSets(client, SCOPE, ["a:%s" % set_id("a")], attempts=3, sleep=lambda s: None)
    with stubber, pytest.raises(WafError) as error:
        ip_sets.apply(["192.0.2.1/32"], [])
    assert error.value.code == "WAFLimitsExceededException" and error.value.operation == "update_ip_set"
    assert "one update per second" in error.value.msg


def test_lock_conflict_rereads_and_keeps_the_other_writers_address():
    client, stubber = stubbed_client()
    stubber.add_response("get_ip_set", get_answer("a", [], token="stale"), get_params("a"))
    aws_error(stubber, "update_ip_set", "WAFOptimisticLockException")
    # Another host added 198.51.100.9 in between.
    stubber.add_response("get_ip_set", get_answer("a", ["198.51.100.9/32"], token="fresh"), get_params("a"))
    stubber.add_response("update_ip_set", {"NextLockToken": "n"},
                         update_params("a", ["192.0.2.1/32", "198.51.100.9/32"], "fresh"))
    ip_sets = ip_sets_for(client, ["a"], [])
    with stubber:
        _sets, _before, _after, added, _removed = ip_sets.apply(["192.0.2.1/32"], [])
    stubber.assert_no_pending_responses()
    assert added == ["192.0.2.1/32"] and ip_sets.lock_conflicts == 1


def test_description_is_kept_on_update():
    client, stubber = stubbed_client()
    answer = get_answer("a", [])
    answer["IPSet"]["Description"] = "floodguard bans"
    stubber.add_response("get_ip_set", answer, get_params("a"))
    stubber.add_response("update_ip_set", {"NextLockToken": "n"},
                         dict(update_params("a", ["192.0.2.1/32"], "token-1"), Description="floodguard bans"))
    with stubber:
        ip_sets_for(client, ["a"], []).apply(["192.0.2.1/32"], [])
    stubber.assert_no_pending_responses()


def test_names_are_resolved_with_list_ip_sets_and_unknown_names_fail():
    client, stubber = stubbed_client()
    summary = {"Name": "a", "Id": set_id("a"), "ARN": "arn:aws:wafv2:eu-west-1:123456789012:regional/ipset/a/x", "LockToken": "t"}
    stubber.add_response("list_ip_sets", {"IPSets": [summary], "NextMarker": "m"}, {"Scope": SCOPE, "Limit": 100})
    stubber.add_response("list_ip_sets", {"IPSets": []}, {"Scope": SCOPE, "Limit": 100, "NextMarker": "m"})
    with stubber, pytest.raises(WafError) as error:
        IPSets(client, SCOPE, ["a", "nope"]).refs()
    assert error.value.code == "WAFNonexistentItemException" and "nope" in error.value.msg


def test_missing_set_names_the_aws_code():
    client, stubber = stubbed_client()
    aws_error(stubber, "get_ip_set", "WAFNonexistentItemException", "gone")
    with stubber, pytest.raises(WafError) as error:
        ip_sets_for(client, ["a"], []).read()
    assert error.value.code == "WAFNonexistentItemException" and "does not exist" in error.value.msg


def test_aws_unreachable_is_a_retryable_error():
    client = botocore.session.get_session().create_client(
        "wafv2", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="y",
        endpoint_url="http://127.0.0.1:9", config=Config(connect_timeout=1, retries={"total_max_attempts": 1}))
    ip_sets = IPSets(client, SCOPE, ["a:%s" % set_id("a")], attempts=2, sleep=lambda s: None)
    with pytest.raises(WafError) as error:
        ip_sets.read()
    assert error.value.code == "EndpointConnectionError" and error.value.retryable
    assert "cannot be reached" in error.value.msg


def test_allowlisted_overlaps():
    import ipaddress
    guards = [ipaddress.ip_network("192.0.2.0/24"), ipaddress.ip_network("2001:db8::/32")]
    assert _wafv2.allowlisted(["192.0.2.7/32", "198.51.100.0/24", "2001:db8::1/128", "10.0.0.0/8"], guards) == [
        "192.0.2.7/32", "2001:db8::1/128"]


def test_cloudfront_needs_us_east_1():
    with pytest.raises(WafError, match="us-east-1"):
        _wafv2.make_client(region="eu-west-1", scope="CLOUDFRONT")
    assert _wafv2.make_client(scope="CLOUDFRONT", access_key="x", secret_key="y").meta.region_name == "us-east-1"


@pytest.fixture
def no_aws_environment(monkeypatch, tmp_path):
    """No credentials anywhere the boto3 chain looks (environment, files, instance metadata)."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
                 "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return tmp_path


def test_credentials_and_region_come_from_the_boto3_chain(no_aws_environment, monkeypatch):
    (no_aws_environment / "credentials").write_text("[ops]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = s\n")
    (no_aws_environment / "config").write_text("[profile ops]\nregion = eu-west-3\n")
    client = _wafv2.make_client(profile="ops", endpoint_url="http://127.0.0.1:9")
    assert client._request_signer._credentials.access_key == "AKIDPROFILE"
    assert client.meta.region_name == "eu-west-3" and client.meta.endpoint_url == "http://127.0.0.1:9"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    assert _wafv2.make_client(region=REGION)._request_signer._credentials.access_key == "AKIDENV"


def test_no_credentials_and_no_region_say_what_to_give(no_aws_environment):
    with pytest.raises(WafError) as error:
        _wafv2.make_client()
    assert error.value.code == "NoRegion" and "eu-west-1" in error.value.msg
    client = _wafv2.make_client(region=REGION, endpoint_url="http://127.0.0.1:9")
    with pytest.raises(WafError) as error:
        IPSets(client, SCOPE, ["a:%s" % set_id("a")], attempts=1).read()
    assert error.value.code == "NoCredentials" and "instance profile" in error.value.msg


def test_the_role_deploys_this_same_file_next_to_the_action():
    # files/action.d/_wafv2.py, the name floodguard_wafv2.py loads, is a link to this file, and one of the role's files.
    action_dir = REPO / "roles" / "fail2ban" / "files" / "action.d"
    deployed = action_dir / "_wafv2.py"
    assert deployed.resolve() == pathlib.Path(_wafv2.__file__).resolve()
    assert filecmp.cmp(deployed, _wafv2.__file__, shallow=False)
    assert '"_wafv2.py"' in (action_dir / "floodguard_wafv2.py").read_text()
    role_files = yaml.safe_load((REPO / "roles" / "fail2ban" / "vars" / "main.yml").read_text())["__fail2ban_role_files"]
    sources = [entry.get("src") for entry in role_files]
    assert "action.d/_wafv2.py" in sources and "action.d/floodguard_wafv2.py" in sources
