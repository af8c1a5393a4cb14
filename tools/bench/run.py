# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""`make bench`: measures the defence and its peers on local Debian test hosts; writes results.json,
results.md, timeline.png.

Brings up its own testbed (tools/bench/host.py on tools/testbed.py: web, attacker, client), sets the web
host up as each system of settings.SYSTEMS in turn (floodguard's defaults, fail2ban's stock actions,
CrowdSec; same host, same floods), and runs the phases on each. settings.py holds the command line
(--help) and the fixed settings; results.json records both, and report.py writes the report from it.

Hooking a phase in (its own module tools/bench/<name>.py, so that merges stay small):
  1. the module has SETTINGS (a dict results.json records), run(host, args) -> results (JSON-able; host.action
     is the system's name, host.kind "fail2ban" or "crowdsec") and section(results) -> Markdown lines;
  2. here: `import <name>` and an entry in PHASE_MODULES; in settings.py: the name in PHASES;
  3. in report.py: `<name>.section` in SECTIONS.
run() is then called once per system and its result saved as results[<name>][<system>]. A phase that only
applies to some systems returns None for the others (nothing is saved).
"""

import argparse
import datetime
import json
import os
import shutil
import signal
import sys
import time

import botnet
import detection
import heal
import latency
import lb
import machine
import operator_path
import perpacket
import report
import scale
import settings
import sync
import timeline
import waf
from host import REPO, Host, log

PHASE_MODULES = {"latency": latency, "timeline": timeline, "operator": operator_path, "scale": scale,
                 "perpacket": perpacket,
                 "heal": heal, "detection": detection, "botnet": botnet, "lb": lb, "sync": sync, "waf": waf}
# Phases run() does not drive through the generic loop (scale and perpacket share their bans).
BUILT_IN = ("scale", "perpacket")
# Phases with hosts of their own (lb.py, sync.py) or of no system (waf.py, the edge): once, after the
# per-system phases.
STANDALONE = ("lb", "sync", "waf")
# Per-system phases that run after scale and perpacket: botnet's known-client variant leaves the web host
# converged with variables of its own.
LAST = ("botnet",)


def new_results(args):
    return {
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": args.command_line,
        "settings": settings.recorded(args, {name: module.SETTINGS for name, module in PHASE_MODULES.items()}),
        "goals": settings.GOALS,
        "machine": {}, "jail_actions": {}, "memory_idle": {},
        "converge_s": {}, "scale": {}, "perpacket": {}, "notes": [],
        # Wall seconds of each phase per system ("once" for the testbed and the standalone phases).
        "phase_wall_s": {},
        # How busy the machine was (other work skews every figure): 1-minute load average, start and end.
        "load_average": {"start": round(os.getloadavg()[0], 1)},
    }


def timed(results, phase, system, function, *arguments):
    """function(*arguments), its wall seconds added to results["phase_wall_s"][phase][system]."""
    started = time.monotonic()
    try:
        return function(*arguments)
    finally:
        walls = results.setdefault("phase_wall_s", {}).setdefault(phase, {})
        walls[system] = round(walls.get(system, 0) + time.monotonic() - started, 1)


def prepare(host, args, results, first):
    """Converges the web host with args.action and records what it runs; fresh fail2ban after."""
    converge_s = host.converge(args.action, args.reuse, [settings.CLIENT + "/32"])
    if converge_s is not None:
        results["converge_s"][args.action] = converge_s
        results["machine"].update(machine.firewall(host))
    if host.kind == "fail2ban":
        results["jail_actions"][args.action] = host.jail_action(settings.MANUAL_JAIL)
    else:
        results["machine"].update(machine.crowdsec(host))
    host.reset()
    if first:
        results["machine"].update(machine.describe(host))
    results["memory_idle"][args.action] = host.memory()


def scale_and_perpacket(host, args, results):
    """scale.run, with the per-packet cost measured at each size of args.perpacket_sizes while its bans
    are held (each pair against 0 bans); sizes that scale did not reach get their bans loaded afresh."""
    with_perpacket = "perpacket" in args.only
    measured = results["perpacket"].setdefault(host.action, {}) if with_perpacket else {}

    def after_size(size):
        if with_perpacket and size in args.perpacket_sizes:
            measured[str(size)] = timed(results, "perpacket", host.action, perpacket.run, host, args, size)

    # Per-packet alone still needs the bans: one scale run per size.
    scale_args = args if "scale" in args.only else argparse.Namespace(**dict(vars(args), repeats=1,
                                                                             large_repeats=1))
    started = time.monotonic()
    entries = scale.run(host, scale_args, after_size, results["scale"].setdefault(host.action, {}))
    # scale's own time: without the per-packet measurements it made while its bans were held.
    walls = results["phase_wall_s"]
    walls.setdefault("scale", {})[host.action] = round(
        time.monotonic() - started - walls.get("perpacket", {}).get(host.action, 0), 1)
    if any("cut" in entry for entry in entries.values()) and not results.get("over_budget"):
        results["over_budget"] = True
        results["notes"].append("the time budget of %d s ran out: later repeats were skipped (see the run counts)"
                                % args.budget)
    for size in args.perpacket_sizes if with_perpacket else ():
        if str(size) not in measured:
            host.reset()
            measured[str(size)] = timed(results, "perpacket", host.action, perpacket.run, host, args, size)
    host.reset()


def run_phases(host, args, results, folder, names):
    """Each phase of `names` on the system the web host is set up as; results saved after each."""
    for name in names:
        outcome = timed(results, name, host.action, PHASE_MODULES[name].run, host, args)
        if outcome is not None:
            results.setdefault(name, {})[host.action] = outcome
        save(results, args, folder)


def measure(host, args, results, folder):
    """Every phase asked for, per system; results are saved after each phase."""
    args.sources = timed(results, "testbed", "once", host.up, args.distro, args.reuse)
    for index, system in enumerate(args.systems if set(args.only) - set(STANDALONE) else ()):
        args.action = system
        timed(results, "prepare", system, prepare, host, args, results, index == 0)
        generic = [name for name in PHASE_MODULES if name in args.only and name not in BUILT_IN + STANDALONE + LAST]
        run_phases(host, args, results, folder, generic)
        if "scale" in args.only or "perpacket" in args.only:
            scale_and_perpacket(host, args, results)
        save(results, args, folder)
        run_phases(host, args, results, folder, [name for name in LAST if name in args.only])
    if host.action is None:  # only standalone phases: they set up the collection's own defaults
        host.action = args.action = settings.OURS
    for name in (name for name in STANDALONE if name in args.only):
        results[name] = timed(results, name, "once", PHASE_MODULES[name].run, host, args)
        if not results["machine"]:  # no per-action phase described it (the web host is converged by now)
            results["machine"].update(machine.describe(host))
        save(results, args, folder)


def save(results, args, folder):
    results["wall_s"] = round(time.time() - args.started, 1)
    results["load_average"]["end"] = round(os.getloadavg()[0], 1)
    with open(os.path.join(folder, "results.json"), "w") as handle:
        json.dump(results, handle, indent=2)
    try:
        report.write(results, folder)
    except Exception as exc:  # results.json is saved; `python3 tools/bench/report.py` re-renders it
        log("report not written: %s: %s" % (type(exc).__name__, exc))


def publish(results, args, folder):
    """The latest complete full run becomes docs/benchmarks.md (and its plot docs/benchmarks-timeline.png)."""
    docs = os.path.join(REPO, "docs")
    os.makedirs(docs, exist_ok=True)
    results["docs"] = True
    save(results, args, folder)
    shutil.copyfile(os.path.join(folder, "results.md"), os.path.join(docs, "benchmarks.md"))
    if os.path.exists(os.path.join(folder, "timeline.png")):
        shutil.copyfile(os.path.join(folder, "timeline.png"), os.path.join(docs, "benchmarks-timeline.png"))
    log("updated docs/benchmarks.md")


def link_latest(folder):
    latest = os.path.join(REPO, "bench", "results", "latest")
    if os.path.islink(latest) or not os.path.exists(latest):
        if os.path.islink(latest):
            os.remove(latest)
        os.symlink(os.path.basename(folder), latest)


def interrupted(signum, _frame):
    raise KeyboardInterrupt("signal %d" % signum)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = settings.parse_args(argv)
    args.started = time.time()
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    folder = os.path.join(REPO, "bench", "results", stamp)
    os.makedirs(os.path.join(folder, "logs"), exist_ok=True)
    log("results in %s" % folder)
    host = Host(os.path.join(folder, "logs"))
    results = new_results(args)
    signal.signal(signal.SIGTERM, interrupted)
    failed = False
    try:
        measure(host, args, results, folder)
    except (Exception, KeyboardInterrupt) as exc:  # keep what was measured, then clean up
        failed = True
        results["notes"].append("run aborted: %s: %s" % (type(exc).__name__, exc))
        log("ABORTED: %s: %s" % (type(exc).__name__, exc))
    finally:
        try:
            save(results, args, folder)
        finally:
            if host.state is not None and not args.keep:
                host.down()
    if not failed and args.docs:
        publish(results, args, folder)
    link_latest(folder)
    log("done in %.0f s: %s" % (time.time() - args.started, os.path.join(folder, "results.md")))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
