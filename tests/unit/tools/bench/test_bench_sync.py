# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tools/bench/sync.py: the fleet's addresses and bans, its parsers and its report section."""

from __future__ import annotations

import bench_modules

sync = bench_modules.load("sync")

RECAP = """PLAY RECAP *********************************************************************
fg-bench-sync01            : ok=6    changed=1    unreachable=0    failed=0    skipped=0    rescued=0    ignored=0
fg-bench-sync02            : ok=6    changed=0    unreachable=0    failed=0    skipped=0    rescued=0    ignored=0
localhost                  : ok=2    changed=0    unreachable=0    failed=0    skipped=0    rescued=0    ignored=0
"""
STATUS = """Status for the jail: manual
|- Filter
|  |- Currently failed:\t0
|  |- Total failed:\t0
|  `- Journal matches:\t_SYSTEMD_UNIT=floodguard-manual-jail.service
`- Actions
   |- Currently banned:\t10000
   |- Total banned:\t10000
   `- Banned IP list:\t198.18.0.1 198.18.0.2
"""


def test_every_host_gets_its_own_bans():
    bans = sync.seed(["a", "b", "c"], 1000)
    assert [len(bans[name]) for name in "abc"] == [1000] * 3
    assert len(set(bans["a"]) | set(bans["b"]) | set(bans["c"])) == 3000
    assert bans["a"][0] == "198.18.0.1"


def test_the_fleet_has_free_addresses_of_the_subnet():
    hosts = sync.fleet(10)
    assert hosts[0] == ("sync01", "172.29.50.41") and hosts[-1] == ("sync10", "172.29.50.50")


def test_the_recap_is_read_per_host():
    found = sync.recap(RECAP)
    assert found["fg-bench-sync01"] == {"ok": 6, "changed": 1, "unreachable": 0, "failed": 0}
    assert found["fg-bench-sync02"]["changed"] == 0 and len(found) == 3


def test_the_ban_count_comes_from_the_jail_status():
    assert sync.currently_banned(STATUS) == 10000
    assert sync.currently_banned("Sorry but the jail 'manual' does not exist") is None


def test_the_inventory_puts_the_fleet_in_the_group_web():
    state = {"name": "bench", "subnet": "172.29.50.0/24", "hosts": {
        "web": {"container": "fg-bench-web", "address": "172.29.50.10", "extra_addresses": []},
        "sync01": {"container": "fg-bench-sync01", "address": "172.29.50.41", "extra_addresses": []}}}
    inventory = sync.inventory(state, ["sync01"])["all"]
    assert inventory["children"] == {"web": {"hosts": {"fg-bench-sync01": {}}}}
    assert inventory["vars"]["ansible_connection"] == "community.docker.docker"


def test_the_report_section_gives_both_runs():
    entry = {"seconds": 80.0, "changed_hosts": 10, "firewall_after_s": 4.0, "firewall_passes": 1,
             "summary": {"fail2ban": {"min": 100000, "max": 100000}, "firewall": {"min": 100000, "max": 100000}}}
    results = {"settings": {"manual_jail": "manual", "phases": {"sync": sync.SETTINGS}},
               "sync": {"hosts": 10, "bans_per_host": 10000, "union": 100000, "back_end": "firewall (nftables)",
                        "first": entry, "second": dict(entry, seconds=40.0, changed_hosts=0)}}
    text = "\n".join(sync.report_section(results))
    assert "on 10 hosts" in text and "10,000 distinct bans each" in text
    assert "| first (applies the union) | 80.0 s | 10 of 10 | 4.00 s (1 pass) | 100,000–100,000 | 100,000–100,000 |" in text
    assert "| second (nothing to do) | 40.0 s | 0 of 10 |" in text
