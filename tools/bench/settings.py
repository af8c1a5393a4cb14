# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The benchmark's fixed settings and its command line: what results.json records under "settings"."""

import argparse
import ipaddress
import os

TESTBED = "bench"
SUBNET = "172.29.50.0/24"
WEB, ATTACKER, CLIENT = "172.29.50.10", "172.29.50.20", "172.29.50.30"
# One fresh attacker address per attack, so that each starts unbanned.
ATTACKER_EXTRA = 60
URL = "http://%s/api/ping" % WEB
# Addresses banned for "scale": the benchmarking range (RFC 2544); they only ever become set elements.
BAN_NETWORK = ipaddress.IPv4Network("198.18.0.0/15")
MANUAL_JAIL = "manual"
# The jail that bans what NGINX rejects (fail2ban role default).
ATTACK_JAIL = "nginx-req-limit"
ACTIONS = ("nftables", "iptables-multiport")
PHASES = ("latency", "timeline", "scale", "perpacket", "waf")
GOALS = {
    "latency_p95_s": 1.0,
    "ban_s": {"10000": 10.0, "100000": 60.0},
    "restore_s": {"10000": 10.0},
    "perpacket_within": 0.05,
}
QUICK_DEFAULTS = {"sizes": "1000,10000", "perpacket_sizes": "10000", "repeats": 1, "latency_runs": 5,
                  "perpacket_repeats": 2, "perpacket_seconds": 3.0, "large_repeats": 1}
FULL_DEFAULTS = {"sizes": "1000,10000,100000", "perpacket_sizes": "10000,100000", "repeats": 3, "latency_runs": 20,
                 "perpacket_repeats": 5, "perpacket_seconds": 5.0, "large_repeats": 2}
HELP = """Phases, per ban action (each a re-converge of the web host with -e fail2ban_banaction=...):

  latency      attack-to-ban: first rejected request -> first request whose packets are dropped
  timeline     (first action only) requests per second served/rejected/dropped around a ban, for the plot
  scale        N addresses of 198.18.0.0/15 banned by one fail2ban_ban task, until all are in the firewall;
               then `systemctl restart fail2ban` until all are back; memory at N
  perpacket    a legitimate (allowlisted) client's request rate and p99 latency with 0 and N bans
  waf          (once) the AWS edge against moto: local ban to the IP set, API calls of 10,000 bans

Every measurement is bounded in time (--cap): a run that does not finish records how far it got. The
testbed is removed at the end (--keep to keep it). Results: bench/results/<UTC timestamp>/.

  tools/bench.sh                          full run
  BENCH_QUICK=1 tools/bench.sh            quick: N = 1,000 and 10,000, fewer repeats
  tools/bench.sh --only latency,timeline  a subset
"""


def _numbers(text):
    return [int(item) for item in text.split(",") if item]


def _parser(defaults):
    parser = argparse.ArgumentParser(
        description="`make bench`: measures the defence on local Debian test hosts (results.json, results.md, "
                    "timeline.png).", epilog=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(PHASES),
                        help="comma-separated phases: %s (default: all)" % ",".join(PHASES))
    parser.add_argument("--actions", default=",".join(ACTIONS),
                        help="fail2ban_banaction values to compare, in order (default: %(default)s)")
    parser.add_argument("--sizes", default=defaults["sizes"], help="ban counts for scale (default: %(default)s)")
    parser.add_argument("--perpacket-sizes", default=defaults["perpacket_sizes"],
                        help="ban counts for the per-packet cost, besides 0 (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=defaults["repeats"], help="runs per scale size")
    parser.add_argument("--latency-runs", type=int, default=defaults["latency_runs"], help="attacks per action")
    parser.add_argument("--perpacket-repeats", type=int, default=defaults["perpacket_repeats"])
    parser.add_argument("--perpacket-seconds", type=float, default=defaults["perpacket_seconds"])
    parser.add_argument("--large-repeats", type=int, default=defaults["large_repeats"],
                        help="runs per scale size >= 100,000")
    parser.add_argument("--cap", type=int, default=90, help="seconds a ban or restore run may take (default 90)")
    parser.add_argument("--budget", type=int, default=2700,
                        help="seconds for the whole bench; scale repeats past it are skipped (default 2700)")
    parser.add_argument("--skip", default="", help="comma-separated: restore")
    parser.add_argument("--distro", default="bookworm", choices=("bookworm", "trixie"))
    parser.add_argument("--keep", action="store_true", help="leave the testbed up at the end")
    parser.add_argument("--reuse", action="store_true",
                        help="development: use the testbed left by --keep, skip converges it already has")
    parser.add_argument("--docs", choices=("auto", "yes", "no"), default="auto",
                        help="update docs/benchmarks.md: auto = after a complete full run (default)")
    return parser


def parse_args(argv, environ=None):
    """The run's settings from the command line and BENCH_QUICK; errors name the option to fix."""
    environ = os.environ if environ is None else environ
    quick = environ.get("BENCH_QUICK", "") not in ("", "0")
    parser = _parser(QUICK_DEFAULTS if quick else FULL_DEFAULTS)
    args = parser.parse_args(argv)
    args.quick = quick
    args.only = [item for item in args.only.split(",") if item]
    unknown = set(args.only) - set(PHASES)
    if unknown:
        parser.error("unknown phase(s) %s: choose from %s" % (", ".join(sorted(unknown)), ", ".join(PHASES)))
    args.actions = [item for item in args.actions.split(",") if item]
    if not args.actions:
        parser.error("--actions: give at least one fail2ban_banaction value, e.g. %s" % ",".join(ACTIONS))
    args.sizes = _numbers(args.sizes)
    args.perpacket_sizes = _numbers(args.perpacket_sizes)
    args.skip = [item for item in args.skip.split(",") if item]
    if args.latency_runs * len(args.actions) + 1 > ATTACKER_EXTRA:
        parser.error("--latency-runs: at most %d per action (one attacker address each)"
                     % ((ATTACKER_EXTRA - 1) // len(args.actions)))
    full = all(item.startswith("--docs") for item in argv)
    args.docs = args.docs == "yes" or (args.docs == "auto" and full and not quick)
    args.command_line = " ".join(["make bench"] + (["(BENCH_QUICK=1)"] if quick else []) + argv)
    return args


def backend(action):
    """The firewall a fail2ban_banaction value writes to (what probe.py reads)."""
    return "iptables-multiport" if action.startswith("iptables") else "nftables"


def recorded(args, phases):
    """The settings as results.json records them; `phases` maps a phase name to its module's SETTINGS."""
    return {
        "quick": args.quick, "only": list(args.only), "actions": list(args.actions),
        "sizes": args.sizes, "perpacket_sizes": args.perpacket_sizes, "scale_repeats": args.repeats,
        "scale_repeats_100000_and_more": args.large_repeats, "budget_s": args.budget,
        "latency_runs": args.latency_runs, "perpacket_repeats": args.perpacket_repeats,
        "perpacket_seconds": args.perpacket_seconds, "cap_s": args.cap, "distro": args.distro,
        "quick_sizes": _numbers(QUICK_DEFAULTS["sizes"]),
        "testbed": {"subnet": SUBNET, "web": WEB, "attacker": ATTACKER, "client": CLIENT,
                    "attacker_extra_addresses": ATTACKER_EXTRA},
        "ban_network": str(BAN_NETWORK), "manual_jail": MANUAL_JAIL,
        "phases": dict(phases),
    }
