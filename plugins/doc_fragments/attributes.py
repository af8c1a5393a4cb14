# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """The attributes of every module: what check mode and diff mode mean (support is per module)."""

    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in check mode and report what would change without changing anything.
  diff_mode:
    description: Returns what has changed (or would change in check mode) when run in diff mode.
"""

    # Read-only modules (*_info), as community.crypto documents its info modules.
    INFO_MODULE = r"""
options: {}
attributes:
  check_mode:
    support: full
    details:
      - This module changes nothing, so check mode behaves exactly like a normal run.
  diff_mode:
    support: N/A
    details:
      - This module changes nothing, so there is no diff.
"""
