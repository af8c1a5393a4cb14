# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures shared by test modules in more than one folder of tests/unit."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def moto_endpoint():
    """The URL of a moto server in server mode, one per test module (imported here: only WAF tests pay for moto)."""
    from ansible_collections.floodguard.shield.tests.unit.plugins.module_utils.wafv2_fixtures import moto_server

    with moto_server() as endpoint:
        yield endpoint
