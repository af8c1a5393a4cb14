# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Phase "sync": playbooks/sync.yml on a fleet of 10 hosts with 10,000 distinct bans each (issue #11).

Adds hosts sync01..sync10 to the testbed (its image: systemd, fail2ban), converges them with the fail2ban
role alone (tools/bench/sync-converge.yml: firewall back end nftables, the manual jail), bans 10,000
addresses of 198.18.0.0/15 in each host's manual jail, distinct per host (ban.yml, one fail2ban_ban task per
host, all hosts at once), then times two runs of sync.yml, as ansible-playbook's wall clock: the first bans
the union (100,000) on every host, the second must change nothing. After each run it reads every host's
count in fail2ban (`fail2ban-client status manual`) and in the firewall (probe.py count). The fleet is
removed at the end.
"""

import ipaddress
import itertools
import json
import os
import re
import time

from host import HERE, PROBE, REPO, log, testbed
from settings import BAN_NETWORK, MANUAL_JAIL, SUBNET

SETTINGS = {"hosts": 10, "bans_per_host": 10000, "quick_hosts": 3, "quick_bans_per_host": 1000,
            # Fleet addresses: subnet address + this offset onwards.
            "address_offset": 41, "forks": 10, "cap_s": 1800, "firewall_cap_s": 600}
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.MULTILINE)
BANNED = re.compile(r"Currently banned:\s+(\d+)")


def fleet(size):
    """(host name, address) of each host of the fleet."""
    first = ipaddress.IPv4Network(SUBNET).network_address + SETTINGS["address_offset"]
    return [("sync%02d" % (index + 1), str(first + index)) for index in range(size)]


def seed(containers, per_host):
    """{container: its own per_host addresses of BAN_NETWORK}, no address on two hosts."""
    addresses = itertools.islice(BAN_NETWORK.hosts(), per_host * len(containers))
    return {container: [str(next(addresses)) for _index in range(per_host)] for container in containers}


def recap(output):
    """{host: {"ok", "changed", "unreachable", "failed"}} from ansible-playbook's PLAY RECAP."""
    return {match.group(1): {"ok": int(match.group(2)), "changed": int(match.group(3)),
                             "unreachable": int(match.group(4)), "failed": int(match.group(5))}
            for match in RECAP.finditer(output)}


def currently_banned(status):
    """'Currently banned: N' of `fail2ban-client status JAIL`; None if it is not there."""
    match = BANNED.search(status)
    return int(match.group(1)) if match else None


def inventory(state, names):
    """The fleet as the group `web` (sync.yml's default target), with the testbed's connection settings."""
    return {"all": {"vars": testbed.inventory(state)["all"]["vars"],
                    "children": {"web": {"hosts": {state["hosts"][name]["container"]: {} for name in names}}}}}


class Fleet:
    def __init__(self, host, size, per_host):
        self.host = host
        self.names = [name for name, _address in fleet(size)]
        self.size, self.per_host = size, per_host
        self.inventory = os.path.join(host.logs, "sync-inventory.json")

    def up(self):
        for name, address in fleet(self.size):
            self.host.add_host(name, address)
        with open(self.inventory, "w") as handle:
            json.dump(inventory(self.host.state, self.names), handle, indent=2)
        for name in self.names:
            self.host.copy(os.path.join(HERE, "probe.py"), name, PROBE)

    def down(self):
        for name in self.names:
            self.host.remove_host(name)

    def containers(self):
        return [self.host.container(name) for name in self.names]

    def playbook(self, path, extra, logname):
        started = time.monotonic()
        rc, output = self.host.playbook(path, extra, logname, timeout=SETTINGS["cap_s"], inventory=self.inventory,
                                        forks=SETTINGS["forks"])
        seconds = round(time.monotonic() - started, 1)
        if rc != 0:
            raise RuntimeError("%s failed (rc %s) after %s s; log: %s/%s.log" % (
                os.path.basename(path), rc, seconds, self.host.logs, logname))
        return seconds, output

    def counts(self):
        """{host: {"fail2ban": bans in the manual jail, "firewall": addresses of BAN_NETWORK in nftables}}."""
        found = {}
        for name in self.names:
            status = self.host.exec(name, ["fail2ban-client", "status", MANUAL_JAIL], check=False).stdout
            held = json.loads(self.host.exec(name, ["python3", PROBE, "count", "nftables", str(BAN_NETWORK)],
                                             timeout=300).stdout)["count"]
            found[name] = {"fail2ban": currently_banned(status), "firewall": held}
        return found

    def wait_firewalls(self, wanted):
        """(seconds, passes, last counts) until every host's firewall holds `wanted`, counted host by host."""
        started, passes = time.monotonic(), 0
        while True:
            counts = self.counts()
            passes += 1
            if all(item["firewall"] >= wanted for item in counts.values()) or \
                    time.monotonic() - started > SETTINGS["firewall_cap_s"]:
                return round(time.monotonic() - started, 1), passes, counts
            time.sleep(2)


def summary(counts):
    """min and max of the fail2ban and firewall counts over the hosts."""
    return {key: {"min": min(item[key] or 0 for item in counts.values()),
                  "max": max(item[key] or 0 for item in counts.values())} for key in ("fail2ban", "firewall")}


def run(host, args):
    quick = getattr(args, "quick", False)
    size = SETTINGS["quick_hosts"] if quick else SETTINGS["hosts"]
    per_host = SETTINGS["quick_bans_per_host"] if quick else SETTINGS["bans_per_host"]
    union = size * per_host
    group = Fleet(host, size, per_host)
    results = {"hosts": size, "bans_per_host": per_host, "union": union, "back_end": "firewall (nftables)"}
    log("sync: a fleet of %d hosts, %d bans each" % (size, per_host))
    try:
        group.up()
        results["converge_s"], _output = group.playbook(
            os.path.join(HERE, "sync-converge.yml"), {"fail2ban_jails": []}, "sync-converge")
        results["seed_s"], _output = group.playbook(
            os.path.join(HERE, "ban.yml"), {"bench_ban_jail": MANUAL_JAIL,
                                            "bench_sync_seed": seed(group.containers(), per_host),
                                            "bench_ban_ips": "{{ bench_sync_seed[inventory_hostname] }}"},
            "sync-seed")
        results["seed_firewall_s"], _passes, results["before"] = group.wait_firewalls(per_host)
        log("sync: seeded %s" % summary(results["before"]))
        playbook = os.path.join(REPO, "playbooks", "sync.yml")
        for key in ("first", "second"):
            seconds, output = group.playbook(playbook, {}, "sync-" + key)
            entry = results[key] = {"seconds": seconds, "recap": recap(output)}
            entry["changed_hosts"] = sum(1 for item in entry["recap"].values() if item["changed"])
            entry["firewall_after_s"], entry["firewall_passes"], entry["counts"] = group.wait_firewalls(union)
            entry["summary"] = summary(entry["counts"])
            log("sync %s run: %s s, %d host(s) changed, then %s s until the firewalls held %d: %s" % (
                key, seconds, entry["changed_hosts"], entry["firewall_after_s"], union, entry["summary"]))
    finally:
        group.down()
    return results


def report_section(results):
    """The report's section of this phase (report.py SECTIONS)."""
    import report  # noqa: E402  (report.py imports this module for its SECTIONS)

    sync = results.get("sync")
    if not sync or "first" not in sync:
        return []
    lines = ["## 7. Fleet sync", "",
             "`playbooks/sync.yml` on %d hosts (systemd containers; fail2ban with the %s back end, the `%s` jail) "
             "with %s distinct bans each: the first run bans the union (%s) on every host, the second must change "
             "nothing. Times are ansible-playbook's wall clock (forks %d), from its start to its exit; then counting "
             "every host's firewall, host by host (probe.py count), until all held the union: the time of those "
             "counting passes, most of it the counting itself." % (
                 sync["hosts"], sync["back_end"], results["settings"]["manual_jail"],
                 report.count(sync["bans_per_host"]), report.count(sync["union"]),
                 results["settings"]["phases"]["sync"]["forks"]), ""]
    rows = []
    for key, label in (("first", "first (applies the union)"), ("second", "second (nothing to do)")):
        entry = sync[key]
        rows.append([label, report.seconds(entry["seconds"]), "%d of %d" % (entry["changed_hosts"], sync["hosts"]),
                     "%s (%s pass%s)" % (report.seconds(entry["firewall_after_s"]), entry.get("firewall_passes", "?"),
                                         "" if entry.get("firewall_passes") == 1 else "es"),
                     "%s–%s" % (report.count(entry["summary"]["fail2ban"]["min"]),
                                report.count(entry["summary"]["fail2ban"]["max"])),
                     "%s–%s" % (report.count(entry["summary"]["firewall"]["min"]),
                                report.count(entry["summary"]["firewall"]["max"]))])
    return lines + report.table(["sync.yml run", "Wall clock", "Hosts changed", "Then counting until all firewalls held it",
                                 "Bans in fail2ban (min–max)", "In the firewall (min–max)"], rows)
