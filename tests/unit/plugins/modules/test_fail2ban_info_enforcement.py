# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""fail2ban_info's enforcement report: verbatim fail2ban 1.0 and 1.1 output against a captured nftables table."""

from __future__ import annotations

import os

from ansible_collections.floodguard.shield.plugins.modules.fail2ban_info import main

HEAD = [(["version"], "version"), (["status"], "status")]
MANY = [(["status", "manual"], "status_many"), (["get", "manual", "banip", "--with-time"], "banip_with_time_many")]
BINARIES = {"fail2ban-client": "/usr/bin/fail2ban-client", "nft": "/usr/sbin/nft"}
FIXTURES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "module_utils", "fixtures")


def answer(stdout, rc=0, stderr=""):
    return {"rc": rc, "stdout": stdout, "stderr": stderr}


def nft_table():
    # Captured on Debian 12 with 203.0.113.7, 198.51.100.9, 2001:db8::9 and 192.0.2.0/24 in the sets of 'manual'.
    with open(os.path.join(FIXTURES, "enforcement-nft-list-table-bookworm.json")) as handle:
        return answer(handle.read())


def test_bans_missing_from_the_nftables_sets_are_reported(run_module, captured):
    result = run_module(main, {"jail": "manual"}, captured, HEAD + MANY + [
        (["get", "manual", "actions"], answer("The jail manual has the following actions:\nfloodguard_nftables\n")),
        (["get", "manual", "action", "floodguard_nftables", "chain"], answer("f2b-manual\n")),
        (["-j", "list", "table", "inet", "floodguard"], nft_table()),
    ], binaries=BINARIES)[0]
    enforcement = result["jails"]["manual"]["enforcement"]
    # 251 banned; of them only 203.0.113.7 and 2001:db8::9 are in the captured sets.
    assert enforcement["enforced"] is False and enforcement["backend"] == "nftables"
    assert enforcement["missing"] == 249
    assert enforcement["problem"] == "249 of 251 bans are not enforced"
    assert "203.0.113.7" not in enforcement["missing_sample"] and len(enforcement["missing_sample"]) == 10
    assert result["enforced"] is False
    assert result["changed"] is False


def test_a_deleted_table_means_nothing_is_enforced(run_module, captured):
    result = run_module(main, {"jail": "manual"}, captured, HEAD + MANY + [
        (["get", "manual", "actions"], answer("The jail manual has the following actions:\nfloodguard_nftables\n")),
        (["get", "manual", "action", "floodguard_nftables", "chain"], answer("f2b-manual\n")),
        (["-j", "list", "table", "inet", "floodguard"],
         answer("", rc=1, stderr="Error: No such file or directory\nlist table inet floodguard\n                ^^^^^^^^^^\n")),
    ], binaries=BINARIES)[0]
    enforcement = result["jails"]["manual"]["enforcement"]
    assert enforcement["missing"] == 251 and enforcement["problem"] == "table inet floodguard is missing"


def test_a_jail_without_a_firewall_action_is_not_judged(run_module, captured):
    result = run_module(main, {"jail": "no-actions"}, captured, HEAD + [
        (["status", "no-actions"], "status_empty"), (["get", "no-actions", "banip", "--with-time"], "banip_with_time_empty"),
        (["get", "no-actions", "actions"], "actions_none"),
    ], binaries=BINARIES)[0]
    assert result["jails"]["no-actions"]["enforcement"]["enforced"] is None
    assert result["enforced"] is True
