# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""module_utils/_host_addresses.py on `ip -j address show` captured on the test hosts."""

from __future__ import annotations

import ipaddress

import pytest

from ansible_collections.floodguard.shield.plugins.module_utils import _host_addresses as host
from ansible_collections.floodguard.shield.plugins.module_utils._runner import ModuleFailure
from ansible_collections.floodguard.shield.tests.unit.plugins.module_utils.fail2ban_fixtures import VERSIONS, Replay, load


class FakeModule:
    def __init__(self, replay, found=True):
        self.run_command = replay
        self.found = found

    def get_bin_path(self, name):
        assert name == "ip"
        return "/usr/sbin/ip" if self.found else None


@pytest.fixture(params=VERSIONS)
def captured(request):
    return load(request.param)


def test_host_addresses(captured):
    addresses = host.parse_host_addresses(captured["ip_address_show"]["stdout"])
    assert ("127.0.0.1", "lo") in addresses
    assert any(name == "eth0" and ipaddress.ip_address(address).version == 4 for address, name in addresses)


def test_read_runs_ip_in_the_c_locale(captured):
    replay = Replay(captured, [(["-j", "address", "show"], "ip_address_show")])
    assert ("127.0.0.1", "lo") in host.read_host_addresses(FakeModule(replay))
    assert replay.calls == [["/usr/sbin/ip", "-j", "address", "show"]]


def test_missing_ip_says_how_to_fix_it(captured):
    with pytest.raises(ModuleFailure, match="Install iproute2, or set force: true"):
        host.read_host_addresses(FakeModule(Replay(captured, []), found=False))


def test_other_output_is_refused(captured):
    with pytest.raises(ModuleFailure, match="Unexpected output from ip -j address show"):
        host.parse_host_addresses(captured["status"]["stdout"])
