# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""module_utils/_results.py: lists cut at list_limit, and the ban diff."""

from __future__ import annotations

import pytest

from ansible_collections.floodguard.shield.plugins.module_utils import _results as results
from ansible_collections.floodguard.shield.plugins.module_utils._runner import ModuleFailure
from ansible_collections.floodguard.shield.tests.unit.plugins.module_utils.fail2ban_fixtures import IPV4


def test_lists_are_limited():
    assert results.limited([1, 2, 3], 2) == ([1, 2], True)
    assert results.limited([1, 2, 3], 0) == ([1, 2, 3], False)
    assert results.limited([1, 2, 3], 3) == ([1, 2, 3], False)


def test_list_limit_must_not_be_negative():
    assert results.check_list_limit(0) == 0
    with pytest.raises(ModuleFailure, match="list_limit is -1: give 0"):
        results.check_list_limit(-1)


def test_small_diffs_list_everything():
    diff = results.ban_diff("manual", ["203.0.113.1"], ["203.0.113.1", "203.0.113.2"], ["203.0.113.2"], [], 10)
    assert diff == {"before_header": "manual: banned before", "after_header": "manual: banned after",
                    "before": "203.0.113.1\n", "after": "203.0.113.1\n203.0.113.2\n"}


def test_large_diffs_list_only_the_changes():
    before = IPV4[:150]
    after = IPV4[:100] + IPV4[150:]
    diff = results.ban_diff("manual", before, after, IPV4[150:], IPV4[100:150], 20)
    assert diff["before"].startswith("# 100 addresses banned before and after, not listed\n203.0.113.101\n")
    assert diff["before"].endswith("# ... and 30 more\n")
    assert diff["after"].count("\n") == 1 + 20 + 1
