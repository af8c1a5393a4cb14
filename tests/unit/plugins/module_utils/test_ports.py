# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tests of plugins/module_utils/_ports.py, the port parsing of the role's filter and of the nftables action."""

from __future__ import annotations

import filecmp
import pathlib

import pytest

from ansible_collections.floodguard.shield.plugins.module_utils import _ports

REPO = pathlib.Path(__file__).resolve().parents[4]


@pytest.mark.parametrize(
    "word, protocol, expected",
    [
        ("8443", None, (8443, 8443)),
        (8443, None, (8443, 8443)),
        ("8000:8080", None, (8000, 8080)),
        ("https", None, ("https", "https")),
        ("https", "tcp", (443, 443)),
        ("http:https", "tcp", (80, 443)),
        ("0", "tcp", (0, 0)),
    ],
)
def test_port_words_become_ranges(word, protocol, expected):
    assert _ports.port_range(word, protocol) == expected


@pytest.mark.parametrize(
    "word, protocol, lowest, fragment",
    [
        ("70000", "tcp", 0, "port '70000' is outside 0-65535"),
        ("0", None, 1, "port '0' is outside 1-65535"),
        ("90:80", "tcp", 0, "range '90:80' is reversed; write it low:high"),
        ("htttp", "tcp", 0, "unknown service name 'htttp' for tcp; use a port number instead"),
        ("8000:", None, 0, "'' is neither a port number nor a service name"),
        ("-5", None, 0, "'-5' is neither"),
        ("HTTP", None, 0, "'HTTP' is neither"),
    ],
)
def test_bad_port_words_say_why(word, protocol, lowest, fragment):
    with pytest.raises(_ports.PortError, match=fragment.replace("(", r"\(")):
        _ports.port_range(word, protocol, lowest)


@pytest.mark.parametrize("value", ["", " 0:65535 ", "1:65535", "ALL", "any"])
def test_lists_that_mean_every_port(value):
    assert _ports.means_all_ports(value)


def test_not_every_port():
    assert not _ports.means_all_ports("http,https")


def test_words_split_on_commas_and_spaces():
    assert _ports.split_words(" http, https  8000:8080,") == ["http", "https", "8000:8080"]


def test_the_action_deploys_this_same_file():
    # The role copies files/action.d/* next to the nftables action; that entry is this file.
    deployed = REPO / "roles" / "fail2ban" / "files" / "action.d" / "floodguard_ports.py"
    assert deployed.resolve() == pathlib.Path(_ports.__file__).resolve()
    assert filecmp.cmp(deployed, _ports.__file__, shallow=False)
