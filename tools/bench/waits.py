# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What fail2ban's waits cost when nothing happens: fail2ban-server's idle CPU per system, at 0 and N bans.

A development measurement behind the role's fail2ban_sleep_interval default (not a phase of `make bench`:
it takes 2 x 2 x samples x seconds). It needs the testbed that `tools/bench.sh --keep` left up:

  /work/bin/fg-heavy bench python3 tools/bench/waits.py --systems floodguard-f2b-waits,floodguard OUT.json

Per system: the web host set up as it (host.converge), fail2ban fresh (0 bans), left to go idle, then
`--samples` stretches of `--seconds` of fail2ban-server's CPU (utime + stime of all its threads); then N bans
by one fail2ban_ban task (tools/bench/ban.yml), and the same samples with the bans held.
"""

import argparse
import itertools
import json
import os
import sys
import time

import settings
import stats
from host import HERE, Host, log


def samples(host, count, seconds):
    """`count` stretches of `seconds`: fail2ban-server's CPU in percent of one core, with the load average."""
    host.wait_fail2ban_idle()
    taken = []
    for _index in range(count):
        before = host.fail2ban_cpu_s()
        time.sleep(seconds)
        used = host.fail2ban_cpu_s() - before
        taken.append({"seconds": seconds, "cpu_s": round(used, 3), "core_percent": round(100.0 * used / seconds, 3),
                      "load_average": round(os.getloadavg()[0], 1)})
        log("idle %s: %.3f %% of a core" % (host.action, taken[-1]["core_percent"]))
    return {"samples": taken, "core_percent": stats.summarize([sample["core_percent"] for sample in taken])}


def ban(host, size):
    addresses = [str(address) for address in itertools.islice(settings.BAN_NETWORK.hosts(), size)]
    rc, _output = host.playbook(os.path.join(HERE, "ban.yml"), {"bench_ban_jail": settings.MANUAL_JAIL,
                                                                "bench_ban_ips": addresses},
                                "waits-ban-%s-%d" % (host.action, size), timeout=300)
    if rc != 0:
        raise RuntimeError("ban.yml failed (rc %s)" % rc)
    host.probe("wait", host.backend, settings.BAN_NETWORK, size, 120, timeout=200)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output")
    parser.add_argument("--systems", default="floodguard-f2b-waits,floodguard")
    parser.add_argument("--size", type=int, default=100000)
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--distro", default="bookworm", choices=("bookworm", "trixie"))
    args = parser.parse_args(argv)
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    host = Host(os.path.dirname(os.path.abspath(args.output)))
    host.up(args.distro, reuse=True)
    results = {"size": args.size, "samples": args.samples, "seconds": args.seconds, "systems": {}}
    for system in args.systems.split(","):
        host.converge(system, False, [settings.CLIENT + "/32"])
        host.reset()
        entry = results["systems"][system] = {"0": samples(host, args.samples, args.seconds)}
        if args.size:  # --size 0: idle with no bans only
            ban(host, args.size)
            entry[str(args.size)] = samples(host, args.samples, args.seconds)
        with open(args.output, "w") as handle:
            json.dump(results, handle, indent=2)
    host.reset()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
