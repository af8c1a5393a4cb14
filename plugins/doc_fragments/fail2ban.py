# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """What every module that runs fail2ban-client needs and returns on failure."""

    DOCUMENTATION = r"""
options: {}
requirements:
  - fail2ban 1.0 or later, its server running
  - root on the host (C(become=true)) - fail2ban's socket is root's only
notes:
  - Runs its commands as argument lists in the C locale; nothing goes through a shell.
  - Every failure returns C(msg), and when a command failed also C(cmd) (a long argument list shortened),
    C(rc), C(stdout) and C(stderr).
"""

    LIST_LIMIT = r"""
options:
  list_limit:
    description:
      - At most this many addresses are returned in each list of addresses the module returns, so that a jail
        holding 100,000 bans does not flood the job output. V(0) returns them all.
      - The counts the module returns are always exact.
    type: int
    default: 1000
"""
