# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bench phase "heal": how fast the ban action puts the bans back after each fault, and what its watch costs.

Per ban action the web host is converged with (nftables: floodguard_nftables.py; iptables-multiport: the
stock action with floodguard_watch.py next to it), in the jail `manual`: ban N addresses of the
benchmarking range, then per fault the seconds from the fault until fail2ban logged that every ban is back
(and the repair's own seconds from that line), and fail2ban-server's CPU time (its threads and the nft or
iptables processes it ran) over an idle stretch with the bans held, which is the steady cost of the watch.
iptables-multiport bans once per address with one iptables process each (about 7 s per 1,000), so it is
measured at SETTINGS["iptables_bans"] only. Results: results["heal"][action].
"""

import json

import settings
from host import log

SETTINGS = {"nftables_sizes": [10000, 100000], "quick_nftables_sizes": [1000, 10000], "iptables_bans": 1000,
            "idle_s": 60, "quick_idle_s": 20, "deadline_s": 300}
FAULTS = {
    "nftables": [
        ("systemctl restart nftables", "systemctl restart nftables"),
        ("systemctl reload nftables", "systemctl reload nftables"),
        ("nft flush ruleset", "nft flush ruleset"),
        ("nft delete table", "nft delete table inet floodguard"),
        ("nft delete set", "printf 'flush chain inet floodguard f2b-{jail}\\ndelete set inet floodguard f2b-{jail}-v4\\n' | nft -f -"),
    ],
    "iptables-multiport": [
        ("iptables -F chain", "iptables -w -F f2b-{jail}"),
        ("iptables -F", "iptables -w -F"),
    ],
}
# The action of the jail that answers `fail2ban-client get JAIL action NAME enforced`.
WATCHING_ACTION = {"nftables": "floodguard_nftables", "iptables-multiport": "floodguard_watch"}

# Runs on the web host (python3 -): bans, faults and CPU samples; prints one JSON document.
DRIVER = r'''
import datetime, ipaddress, json, os, re, subprocess, sys, time

config = json.loads(sys.argv[1])
jail, action, deadline_s = config["jail"], config["action"], config["deadline_s"]
LOG = "/var/log/fail2ban.log"
BATCH = 5000


def run(*argv):
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def server_cpu():
    pid = run("systemctl", "show", "--property", "MainPID", "--value", "fail2ban").strip()
    with open("/proc/%s/stat" % pid, encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    # utime, stime and the children's (nft, iptables): the whole cost of the action
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def enforced():
    done = subprocess.run(["fail2ban-client", "get", jail, "action", action, "enforced"], capture_output=True, text=True)
    return done.stdout.strip() == "True"


def wait(what, probe):
    started = time.monotonic()
    while not probe():
        if time.monotonic() - started > deadline_s:
            raise SystemExit("%s: not reached within %d s" % (what, deadline_s))
        time.sleep(0.25)
    return time.monotonic() - started


def idle(seconds):
    time.sleep(2)
    cpu = server_cpu()
    time.sleep(seconds)
    used = server_cpu() - cpu
    return {"seconds": seconds, "cpu_s": round(used, 3), "core_percent": round(100.0 * used / seconds, 3)}


def heal(command):
    offset = os.path.getsize(LOG)
    cpu = server_cpu()
    started = time.time()
    subprocess.run(command, shell=True, check=True, capture_output=True)
    pattern = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) .*\[%s\] bans were not enforced .* in ([0-9.]+) s$" % re.escape(jail))
    limit = time.monotonic() + deadline_s
    while time.monotonic() < limit:
        with open(LOG, encoding="utf-8", errors="replace") as log:
            log.seek(offset)
            for line in log:
                found = pattern.match(line.strip())
                if found:
                    logged = datetime.datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
                    wait("enforced again", enforced)
                    return {"healed_after_s": round(logged - started, 3), "repair_s": float(found.group(2)),
                            "cpu_s": round(server_cpu() - cpu, 3)}
        time.sleep(0.05)
    return {"healed_after_s": None, "note": "no heal logged within %d s" % deadline_s}


results = {"idle": [dict(idle(config["idle_s"]), bans=0)], "faults": []}
start = int(ipaddress.IPv4Address(config["network"]))
loaded = 0
for size in config["sizes"]:
    addresses = [str(ipaddress.IPv4Address(start + 1 + i)) for i in range(loaded, size)]
    for i in range(0, len(addresses), BATCH):
        run("fail2ban-client", "--timeout", "900", "set", jail, "banip", *addresses[i:i + BATCH])
    loaded = size
    wait("%d bans enforced" % size, enforced)
    for name, command in config["faults"]:
        results["faults"].append(dict(heal(command.format(jail=jail)), fault=name, bans=size))
    results["idle"].append(dict(idle(config["idle_s"]), bans=size))
print(json.dumps(results))
'''


def run(host, args):
    """Heal times and idle cost for the system the web host runs (args.action); None for the peers, whose
    actions have no watch."""
    if args.action not in settings.ACTION_SYSTEMS.values():
        return None
    backend = host.backend
    sizes = ([SETTINGS["iptables_bans"]] if backend == "iptables-multiport"
             else SETTINGS["quick_nftables_sizes" if args.quick else "nftables_sizes"])
    config = {"jail": settings.MANUAL_JAIL, "action": WATCHING_ACTION[backend], "sizes": sizes,
              "faults": FAULTS[backend], "network": str(settings.BAN_NETWORK.network_address),
              "idle_s": SETTINGS["quick_idle_s" if args.quick else "idle_s"], "deadline_s": SETTINGS["deadline_s"]}
    host.reset()
    # Bounded: every step of the driver has its deadline; this is the bound of the whole phase.
    done = host.exec("web", ["python3", "-", json.dumps(config)], stdin=DRIVER, timeout=3600)
    results = json.loads(done.stdout)
    for fault in results["faults"]:
        log("heal %s N=%d %s: %s s" % (args.action, fault["bans"], fault["fault"], fault.get("healed_after_s")))
    host.reset()
    return results


def section(results):
    """The report's section on self-healing (results["heal"])."""
    heal = results.get("heal")
    if not heal:
        return []
    lines = ["## Self-healing", "",
             "Seconds from a fault until fail2ban logged every ban back (`bans were not enforced ... restored`), the "
             "repair's own seconds from that line, and fail2ban's CPU seconds meanwhile (with its nft/iptables "
             "processes); jail `manual`.", "",
             "| action | bans | fault | healed after s | repair s | CPU s |", "| --- | ---: | --- | ---: | ---: | ---: |"]
    for action in sorted(heal):
        for fault in heal[action]["faults"]:
            healed = fault.get("healed_after_s")
            lines.append("| %s | %s | %s | %s | %s | %s |" % (
                action, "{:,}".format(fault["bans"]), fault["fault"], "-" if healed is None else "%.2f" % healed,
                "%.2f" % fault["repair_s"] if "repair_s" in fault else fault.get("note", "-"),
                "%.2f" % fault["cpu_s"] if "cpu_s" in fault else "-"))
    lines += ["", "Steady cost of the watch: fail2ban-server's CPU over an idle stretch with the bans held.", "",
              "| action | bans | seconds | CPU s | % of one core |", "| --- | ---: | ---: | ---: | ---: |"]
    for action in sorted(heal):
        for sample in heal[action]["idle"]:
            lines.append("| %s | %s | %d | %.2f | %.3f |" % (
                action, "{:,}".format(sample["bans"]), sample["seconds"], sample["cpu_s"], sample["core_percent"]))
    return lines + [""]
