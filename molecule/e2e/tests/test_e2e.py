# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The defence end to end, in order: 20 attacker addresses flood the API well above the rate while
a legitimate client calls it below the rate and an allowlisted client above it; then the bans
survive a fail2ban restart, an unban through the module restores access, and a flood after
logrotate is banned too. Every flood is bounded in requests and seconds (see flood.py)."""

from __future__ import annotations

import concurrent.futures
import json
import os
import pathlib
import statistics
import subprocess
import sys

import pytest

from conftest import JAIL, banned, describe, flood, jail_status, probe, wait_until

# The default zone: 5 r/s, burst 5 (nginx_ratelimit role defaults).
LIMIT_RATE = 5
LIMIT_BURST = 5
# Eight times the rate from every address, until its connections fail (banned) or 10 s have passed.
# Fire and forget, as floods do: an answer not there in 0.3 s is abandoned (NGINX has counted the
# request by then), so a slow API does not pace the attack below the rate.
ATTACK = {"requests": 400, "duration": 20, "rate": 40, "concurrency": 8, "timeout": 1, "read_timeout": 0.3, "stop_after_drops": 3}
# Below the rate for the whole attack and its bans. The timeouts are generous: NGINX passes each attacker
# address its burst before rejecting it, and the legitimate requests queue behind those at gunicorn.
LEGITIMATE = {"requests": 40, "duration": 30, "rate": 2, "concurrency": 2, "timeout": 10, "timeline": True}
# Four times the rate, from the allowlisted address.
ALLOWLISTED = {"requests": 200, "duration": 30, "rate": 20, "concurrency": 8, "timeout": 10}


@pytest.fixture(scope="module")
def main_flood(web, attacker, client, url, flood_addresses, client_address, allowlisted_address):
    """Runs the attack, the legitimate client and the allowlisted client at the same time."""
    assert not banned(web) & set(flood_addresses), "attacker addresses banned before the flood"
    # converge just (re)started the services: wait until the API answers through NGINX.
    wait_until("the API answers the client", lambda: probe(client, url, [client_address], 1, 5)[client_address]["served"], 30)
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        legitimate = pool.submit(flood, client, url, [client_address], **LEGITIMATE)
        allowlisted = pool.submit(flood, client, url, [allowlisted_address], **ALLOWLISTED)
        attack = pool.submit(flood, attacker, url, flood_addresses, **ATTACK)
        reports = {"attack": attack.result(), "legitimate": legitimate.result(), "allowlisted": allowlisted.result()}
    for name, report in reports.items():
        print("\n%s flood: %s" % (name, describe(report)))
    return reports


def test_every_attacker_address_is_rejected_then_banned(web, main_flood, flood_addresses):
    attack = main_flood["attack"]["sources"]
    for address in flood_addresses:
        assert attack[address]["rejected"] > 0, "NGINX never rejected %s: %s" % (address, attack[address])
        assert attack[address]["other"] == 0, attack[address]
    _result, waited = wait_until("all attacker addresses banned", lambda: set(flood_addresses) <= banned(web))
    print("\nall %d addresses banned %.1f s after the flood ended" % (len(flood_addresses), waited))
    seconds_to_ban = [attack[a]["first_drop_s"] - attack[a]["first_reject_s"] for a in flood_addresses if attack[a]["first_drop_s"]]
    if seconds_to_ban:
        print("first reject to first drop: min %.1f s, median %.1f s, max %.1f s (%d addresses)" % (
            min(seconds_to_ban), statistics.median(seconds_to_ban), max(seconds_to_ban), len(seconds_to_ban)))


def test_banned_addresses_cannot_connect(attacker, url, flood_addresses, main_flood):
    # Every address stopped flooding because its connections failed; a new attempt fails too.
    for address, summary in main_flood["attack"]["sources"].items():
        assert summary["stopped_by_drops"], "%s was never cut off: %s" % (address, summary)
    for address, summary in probe(attacker, url, flood_addresses).items():
        assert summary["dropped"] == summary["sent"] > 0, "%s still gets through: %s" % (address, summary)


def test_legitimate_client_sees_only_2xx(main_flood, client_address):
    summary = main_flood["legitimate"]["sources"][client_address]
    # A slow answer delays the next request (never faster than the rate), so a loaded host sends fewer.
    assert summary["sent"] >= LEGITIMATE["requests"] // 2, summary
    assert summary["statuses"] == {"200": summary["sent"]}, summary
    assert summary["errors"] == {}, summary
    # It was served before, during and after the bans: its last answer came after the last address was cut off.
    last_cut_off = max(source["first_drop_s"] or 0 for source in main_flood["attack"]["sources"].values())
    assert summary["last_served_s"] > last_cut_off, (summary, last_cut_off)


def test_allowlisted_client_above_the_rate_is_limited_by_nothing(web, main_flood, allowlisted_address):
    summary = main_flood["allowlisted"]["sources"][allowlisted_address]
    assert summary["statuses"] == {"200": summary["sent"]}, summary
    assert summary["errors"] == {}, summary
    # More than NGINX lets any other client through in that time.
    allowed_elsewhere = LIMIT_BURST + 1 + LIMIT_RATE * summary["last_served_s"]
    assert summary["served"] > allowed_elsewhere, summary
    assert allowlisted_address not in banned(web)


def test_bans_survive_a_fail2ban_restart(web, attacker, url, flood_addresses, main_flood):
    wait_until("all attacker addresses banned", lambda: set(flood_addresses) <= banned(web))
    web.run_test("systemctl restart fail2ban")
    _result, waited = wait_until("bans restored after the restart", lambda: set(flood_addresses) <= banned(web), 60)
    print("\nbans restored %.1f s after systemctl restart fail2ban returned" % waited)
    for address, summary in probe(attacker, url, flood_addresses).items():
        assert summary["dropped"] == summary["sent"] > 0, "%s gets through after the restart: %s" % (address, summary)


def run_module(args, expect_failure=False):
    """floodguard.shield.fail2ban_ban on the web host through ansible ad hoc, as an operator runs it.

    Returns the module's result; asserts that the command failed or succeeded as expected.
    """
    ansible = pathlib.Path(sys.executable).with_name("ansible")
    env = dict(os.environ, ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json")
    command = [str(ansible) if ansible.exists() else "ansible", "web", "-i", os.environ["MOLECULE_INVENTORY_FILE"],
               "-m", "floodguard.shield.fail2ban_ban", "-a", args]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120, check=False)
    assert (result.returncode != 0) == expect_failure, "%s: rc %d\n%s\n%s" % (" ".join(command), result.returncode, result.stdout, result.stderr)
    (host_result,) = json.loads(result.stdout)["plays"][0]["tasks"][0]["hosts"].values()
    return host_result


def test_the_module_refuses_to_ban_the_allowlisted_client(web, client, url, allowlisted_address):
    # A ban through fail2ban-client would bypass ignoreip: the module must not let it happen.
    result = run_module("jail=%s ips=%s" % (JAIL, allowlisted_address), expect_failure=True)
    assert allowlisted_address in result["msg"], result
    assert allowlisted_address not in banned(web)
    assert probe(client, url, [allowlisted_address], requests=2, timeout=5)[allowlisted_address]["statuses"] == {"200": 2}


def test_unban_through_the_module_restores_access(web, attacker, url, flood_addresses, main_flood):
    freed, still_banned = flood_addresses[0], flood_addresses[1]
    assert {freed, still_banned} <= banned(web)
    result = run_module("jail=%s ips=%s state=absent" % (JAIL, freed))
    assert result["changed"], result
    assert freed not in banned(web)
    assert still_banned in banned(web)
    sources = probe(attacker, url, [freed, still_banned], requests=3)
    assert sources[freed]["statuses"] == {"200": 3}, sources[freed]
    assert sources[still_banned]["dropped"] == 3, sources[still_banned]
    # Unbanning again changes nothing.
    assert not run_module("jail=%s ips=%s state=absent" % (JAIL, freed))["changed"]


def test_logrotate_does_not_stop_detection(web, attacker, url, rotation_address, main_flood):
    assert rotation_address not in banned(web)
    # The NGINX error log the jail reads (one file).
    log = jail_status(web)["File list"]
    assert log.startswith("/var/log/nginx/"), "the jail reads %r, not a log that logrotate.d/nginx rotates" % log
    before = web.file(log).inode
    web.run_test("logrotate -f /etc/logrotate.d/nginx")
    assert web.file(log + ".1").exists
    assert web.file(log).inode != before
    report = flood(attacker, url, [rotation_address], **ATTACK)
    print("\nflood after logrotate: %s" % describe(report))
    summary = report["sources"][rotation_address]
    assert summary["rejected"] > 0, summary
    _result, waited = wait_until("the address flooding after logrotate is banned", lambda: rotation_address in banned(web))
    assert summary["stopped_by_drops"], summary
    print("banned after logrotate (%.1f s after the flood ended); first reject to first drop %.1f s" % (
        waited, summary["first_drop_s"] - summary["first_reject_s"]))
