# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tools/testbed.py: the test host's container comes from molecule/shared/vars/platform.yml, as in Molecule."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
_spec = importlib.util.spec_from_file_location("testbed", REPO / "tools" / "testbed.py")
testbed = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(testbed)

PLATFORM = yaml.safe_load((REPO / "molecule" / "shared" / "vars" / "platform.yml").read_text())["floodguard_platform"]
CONTAINER_KEYS = set(PLATFORM) - {"image"}


def test_docker_run_gets_every_platform_setting():
    assert testbed.container_options() == [
        "--cap-add", "SYS_ADMIN", "--cap-add", "NET_ADMIN", "--cgroupns", "host",
        "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw", "--tmpfs", "/run", "--tmpfs", "/run/lock",
        "--stop-signal", "SIGRTMIN+3",
    ]
    assert testbed.image("trixie") == "floodguard-test:trixie"


def test_molecule_s_create_step_applies_every_platform_setting():
    create = (REPO / "molecule" / "shared" / "create.yml").read_text()
    for key in CONTAINER_KEYS:
        assert "%s: \"{{ floodguard_platform.%s }}\"" % (key, key) in create


@pytest.mark.parametrize("molecule_yml", sorted(REPO.glob("molecule/*/molecule.yml"))
                         + [REPO / ".config" / "molecule" / "config.yml"], ids=lambda path: path.parent.name)
def test_no_scenario_repeats_the_platform(molecule_yml):
    platforms = yaml.safe_load(molecule_yml.read_text().replace("${", "{")).get("platforms") or []
    for platform in platforms:
        assert set(platform) <= {"name", "hostname", "groups", "networks"}, platform["name"]


def _plan(*hosts, subnet=None, extra=()):
    return testbed.plan(argparse.Namespace(name="t", distro="bookworm", hosts=list(hosts), subnet=subnet,
                                           extra=list(extra), extra_start=200))


def test_extra_addresses_skip_the_hosts_and_the_gateway():
    web = ("web", testbed.ipaddress.IPv4Address("172.29.0.10"))
    state = _plan(web, extra=[("web", 2)])
    assert state["image"] == "floodguard-test:bookworm"
    assert state["hosts"]["web"]["extra_addresses"] == ["172.29.0.200", "172.29.0.201"]


def test_a_host_outside_the_subnet_is_refused_naming_the_fix():
    web = ("web", testbed.ipaddress.IPv4Address("172.29.1.10"))
    with pytest.raises(testbed.TestbedError, match="change --host or --subnet"):
        _plan(web, subnet="172.29.0.0/24")
