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
ATTACKER_EXTRA = 120
URL = "http://%s/api/ping" % WEB
# Addresses banned for "scale": the benchmarking range (RFC 2544); they only ever become set elements.
BAN_NETWORK = ipaddress.IPv4Network("198.18.0.0/15")
MANUAL_JAIL = "manual"
# How the scale phase gives fail2ban_ban its addresses (--ban-form): 100,000 list items cost ansible-core
# itself about 1 s on the controller (loading and copying the extra vars) and 0.5 s in the module.
BAN_FORMS = ("text", "list")
# The jail that bans what NGINX rejects (fail2ban role default).
ATTACK_JAIL = "nginx-req-limit"
# The original recipe's NGINX and fail2ban: floodguard's upstream guard and prefix escalation off (the peers
# run on it; floodguard runs its defaults).
RECIPE_VARS = {"nginx_ratelimit_guard_enabled": False, "fail2ban_escalation_enabled": False}
# The systems compared, in the order they run (each a re-configuration of the same web host, same floods):
#   kind       fail2ban (converged with fail2ban_banaction) or crowdsec (installed on top, fail2ban stopped)
#   backend    the firewall its bans land in (what probe.py reads)
#   vars       the converge's variables besides fail2ban_banaction and the allowlist (host.ensure_converged)
#   stock      fail2ban's own nftables actions replace floodguard_nftables.py (jail.d override)
#   poll_s     CrowdSec's bouncer: seconds between its polls of the local API (update_frequency)
#   sleep_interval  the actions' sleepinterval option (jail.d override): fail2ban's sleep step
#   default    False: only run when --systems names it
# The order saves converges: the peers share the recipe's variables, and CrowdSec needs no banaction.
SYSTEMS = {
    "floodguard": {"label": "floodguard (defaults)", "kind": "fail2ban", "banaction": "nftables",
                   "backend": "nftables"},
    # Not a peer, not run by default: floodguard with fail2ban's own 0.2 s sleep step (fail2ban_sleep_interval: 0),
    # what the role's 20 ms step buys in latency and costs in idle CPU (tools/bench/waits.py).
    "floodguard-f2b-waits": {"label": "floodguard, fail2ban's own 0.2 s sleep step (comparison)", "kind": "fail2ban",
                             "banaction": "nftables", "backend": "nftables", "sleep_interval": 0, "default": False},
    "fail2ban-nftables": {"label": "fail2ban, stock nftables action", "kind": "fail2ban", "banaction": "nftables",
                          "backend": "nftables", "stock": True, "vars": RECIPE_VARS},
    "fail2ban-iptables": {"label": "fail2ban, iptables-multiport (original recipe)", "kind": "fail2ban",
                          "banaction": "iptables-multiport", "backend": "iptables-multiport", "vars": RECIPE_VARS},
    "crowdsec": {"label": "CrowdSec + bouncer (defaults: 10 s poll)", "kind": "crowdsec", "backend": "nftables",
                 "poll_s": 10, "vars": RECIPE_VARS},
    "crowdsec-1s": {"label": "CrowdSec + bouncer (tuned: 1 s poll)", "kind": "crowdsec", "backend": "nftables",
                    "poll_s": 1, "vars": RECIPE_VARS},
}
DEFAULT_SYSTEMS = [name for name, system in SYSTEMS.items() if system.get("default", True)]
# --actions (the bench's former option): fail2ban_banaction values and the systems they are now.
ACTION_SYSTEMS = {"nftables": "floodguard", "iptables-multiport": "fail2ban-iptables"}
# The system the others are compared with (the ratio column of the report).
OURS = "floodguard"
PHASES = ("latency", "timeline", "operator", "scale", "perpacket", "heal", "detection", "botnet", "lb", "sync", "waf")
# Raised goals of the default setup (issue 14); judged in the report, never in a timed test.
GOALS = {
    "latency_p95_s": 0.1,
    # Through the load balancer, to the ban inside NGINX (issue 11).
    "lb_latency_p95_s": 1.0,
    "ban_s": {"10000": 10.0, "100000": 3.0},
    "ban_task_s": {"100000": 8.0},
    "restore_s": {"10000": 10.0, "100000": 3.0},
    "operator_s": {"100000": 20.0},
    "perpacket_within": 0.03,
}
# The time budgets (issue 14): a full run under 45 minutes, a quick one under 10; results.json records each
# phase's wall time ("phase_wall_s"). Neither runs the phases with no peer to compare, which have docs pages
# of their own: lb, sync and waf (hosts of their own; docs/benchmarks-nginx-ban.md, docs/benchmarks-edge.md)
# and heal (floodguard's own watch, about 10 min; docs/benchmarks-heal.md). `--only heal,lb,sync,waf` runs
# them. A quick run compares floodguard with CrowdSec (1 s poll), the peer an ops team would pick instead,
# and floods only 1,000 addresses in the botnet phase (quick_sizes there).
OPT_IN_PHASES = ("heal", "lb", "sync", "waf")
QUICK_SYSTEMS = ("floodguard", "crowdsec-1s")
QUICK_DEFAULTS = {"sizes": "10000", "perpacket_sizes": "10000", "repeats": 3, "latency_runs": 3,
                  "perpacket_pairs": 20, "perpacket_seconds": 0.25, "large_repeats": 3,
                  "cap": 20, "systems": ",".join(QUICK_SYSTEMS),
                  "only": ",".join(phase for phase in PHASES if phase not in OPT_IN_PHASES)}
# cap: a stock action that has not banned 10,000 within 60 s says so ("> 60 s, n of 10,000") as well as at 90 s.
FULL_DEFAULTS = {"sizes": "10000,100000", "perpacket_sizes": "100000", "repeats": 3, "latency_runs": 20,
                 "perpacket_pairs": 20, "perpacket_seconds": 1.0, "large_repeats": 3,
                 "cap": 60, "systems": ",".join(DEFAULT_SYSTEMS),
                 "only": ",".join(phase for phase in PHASES if phase not in OPT_IN_PHASES)}
HELP = """Phases, per system (--systems; each a re-configuration of the same web host):

  latency      attack-to-ban: first rejected request -> first request whose packets are dropped
  timeline     requests per second served/rejected/dropped around one ban, for the plot
  operator     (floodguard) playbooks/ban.yml with the largest N as one survey string, via ansible-runner
  scale        N addresses of 198.18.0.0/15 banned by one fail2ban_ban task (CrowdSec: cscli decisions
               import), until all are in the firewall; then a restart until all are back; memory at N
  perpacket    TCP connects per second of the client with 0 and N bans, interleaved pairs, 95 % interval
  lb           (once) the NGINX ban back end behind HAProxy: attack-to-403 latency, a burst of 1,000
               bans (reloads, workers), 10,000 and 100,000 bans, memory, per-request cost (tools/bench/lb.py)
  sync         (once) playbooks/sync.yml on 10 hosts with 10,000 bans each (tools/bench/sync.py)
  heal         (floodguard's own actions) seconds to put the bans back after each firewall fault (10,000 and
               100,000), the watch's idle CPU
  detection    (fail2ban systems) rejection lines per second fail2ban parses, per filter variant, at once
               and steady with a lag under 1 s (tools/bench/detection.py)
  botnet       1,000 and 10,000 attacking addresses above the rate: seconds to 99 % banned, the legitimate
               client's 2xx, the upstream's peak rate against the guard's cap, CPU, detection (tools/bench/botnet.py)
  waf          (once) the AWS edge against moto: local ban to the IP set, API calls of 10,000 bans

Every measurement is bounded in time (--cap): a run that does not finish records how far it got. The
testbed is removed at the end (--keep to keep it). Results: bench/results/<UTC timestamp>/.

  tools/bench.sh                          full run (without heal, lb, sync, waf: --only heal,lb,sync,waf runs them)
  BENCH_QUICK=1 tools/bench.sh            quick: N = 10,000, fewer attacks, shorter caps and windows, floodguard
                                          and CrowdSec (1 s poll) (BENCH_QUICK=1 ... --help)
  tools/bench.sh --only latency,timeline  a subset
  tools/bench.sh --systems floodguard,floodguard-f2b-waits --only latency
                                          the role's 20 ms sleep step against fail2ban's own 0.2 s
"""


def _numbers(text):
    return [int(item) for item in text.split(",") if item]


def _parser(defaults):
    parser = argparse.ArgumentParser(
        description="`make bench`: measures the defence on local Debian test hosts (results.json, results.md, "
                    "timeline.png).", epilog=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=defaults["only"],
                        help="comma-separated phases: %s (default: %%(default)s)" % ",".join(PHASES))
    parser.add_argument("--systems", default=defaults["systems"],
                        help="systems to compare, in order (default: %(default)s)")
    parser.add_argument("--actions", default=None,
                        help="older spelling: fail2ban_banaction values (%s), i.e. the systems %s"
                             % (",".join(ACTION_SYSTEMS), ",".join(ACTION_SYSTEMS.values())))
    parser.add_argument("--sizes", default=defaults["sizes"], help="ban counts for scale (default: %(default)s)")
    parser.add_argument("--perpacket-sizes", default=defaults["perpacket_sizes"],
                        help="ban counts for the per-packet cost, besides 0 (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=defaults["repeats"], help="runs per scale size")
    parser.add_argument("--latency-runs", type=int, default=defaults["latency_runs"], help="attacks per action")
    parser.add_argument("--perpacket-pairs", type=int, default=defaults["perpacket_pairs"],
                        help="interleaved pairs (0 bans, N bans) per size, at least 20 for the 95 %% interval")
    parser.add_argument("--perpacket-seconds", type=float, default=defaults["perpacket_seconds"],
                        help="seconds of each connect loop")
    parser.add_argument("--large-repeats", type=int, default=defaults["large_repeats"],
                        help="runs per scale size >= 100,000")
    parser.add_argument("--cap", type=int, default=defaults["cap"],
                        help="seconds a ban or restore run may take (default %(default)s)")
    parser.add_argument("--budget", type=int, default=2700,
                        help="seconds for the whole bench; scale repeats past it are skipped (default 2700)")
    parser.add_argument("--ban-form", choices=BAN_FORMS, default="text",
                        help="how the scale phase gives fail2ban_ban its addresses: text = one list item holding them "
                             "all, space-separated (as an AWX survey gives them); list = one list item each (default text)")
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
    args.perpacket_within = GOALS["perpacket_within"]
    args.only = [item for item in args.only.split(",") if item]
    unknown = set(args.only) - set(PHASES)
    if unknown:
        parser.error("unknown phase(s) %s: choose from %s" % (", ".join(sorted(unknown)), ", ".join(PHASES)))
    if args.actions is not None:
        unknown = [item for item in args.actions.split(",") if item and item not in ACTION_SYSTEMS]
        if unknown or not args.actions.strip(","):
            parser.error("--actions: unknown %s: choose from %s (or use --systems)"
                         % (", ".join(unknown) or "(none given)", ",".join(ACTION_SYSTEMS)))
        args.systems = ",".join(ACTION_SYSTEMS[item] for item in args.actions.split(",") if item)
    args.systems = [item for item in args.systems.split(",") if item]
    unknown = [item for item in args.systems if item not in SYSTEMS]
    if unknown or not args.systems:
        parser.error("--systems: unknown %s: choose from %s" % (", ".join(unknown) or "(none given)", ",".join(SYSTEMS)))
    if args.repeats < 3 or args.large_repeats < 3:
        parser.error("--repeats/--large-repeats: at least 3 (a median of fewer runs says little)")
    if args.perpacket_pairs < 20:
        parser.error("--perpacket-pairs: at least 20 (the 95 %% interval needs them)")
    args.sizes = _numbers(args.sizes)
    args.perpacket_sizes = _numbers(args.perpacket_sizes)
    args.skip = [item for item in args.skip.split(",") if item]
    if (args.latency_runs + 1) * len(args.systems) > ATTACKER_EXTRA:
        parser.error("--latency-runs: at most %d per system (one attacker address each)"
                     % (ATTACKER_EXTRA // len(args.systems) - 1))
    full = all(item.startswith("--docs") for item in argv)
    args.docs = args.docs == "yes" or (args.docs == "auto" and full and not quick)
    args.command_line = " ".join(["make bench"] + (["(BENCH_QUICK=1)"] if quick else []) + argv)
    return args


def ban_ips(addresses, form):
    """fail2ban_ban's `ips` for the addresses in one of BAN_FORMS."""
    return [" ".join(addresses)] if form == "text" else list(addresses)


def recorded(args, phases):
    """The settings as results.json records them; `phases` maps a phase name to its module's SETTINGS."""
    return {
        "quick": args.quick, "only": list(args.only), "systems": list(args.systems),
        "system_labels": {name: SYSTEMS[name]["label"] for name in args.systems}, "ours": OURS,
        "system_vars": {name: SYSTEMS[name].get("vars", {}) for name in args.systems},
        "sizes": args.sizes, "perpacket_sizes": args.perpacket_sizes, "scale_repeats": args.repeats,
        "scale_repeats_100000_and_more": args.large_repeats, "budget_s": args.budget,
        "latency_runs": args.latency_runs, "perpacket_pairs": args.perpacket_pairs,
        "perpacket_seconds": args.perpacket_seconds, "cap_s": args.cap, "distro": args.distro,
        "quick_sizes": _numbers(QUICK_DEFAULTS["sizes"]),
        "testbed": {"subnet": SUBNET, "web": WEB, "attacker": ATTACKER, "client": CLIENT,
                    "attacker_extra_addresses": ATTACKER_EXTRA},
        "ban_network": str(BAN_NETWORK), "manual_jail": MANUAL_JAIL, "ban_form": args.ban_form,
        "phases": dict(phases),
    }
