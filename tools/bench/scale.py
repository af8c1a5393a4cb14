# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Phase "scale": N bans by one fail2ban_ban task (CrowdSec: `cscli decisions import` of a CSV), then a
restart of the ban daemons, each timed until the firewall holds all N; their memory after each. Every
run is capped at args.cap seconds.

A time ends when probe.py's confirming read of the firewall has finished; "uncertainty_s" says how much
earlier the bans may have been complete (that read's length and the pause before it included).
"""

import datetime
import itertools
import json
import os
import threading
import time

import stats
from host import HERE, log
from settings import BAN_NETWORK, MANUAL_JAIL, ban_ips

# Sizes from this one on get args.large_repeats runs instead of args.repeats.
SETTINGS = {"large_from": 100000}


def parse_iso(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def describe(run):
    if run.get("done"):
        return "%d in %.2f s" % (run["of"], run["seconds"])
    return "not finished (%s of %s)" % (run.get("count"), run.get("of"))


def ban_task(output):
    """The fail2ban_ban task's report from ansible-playbook's JSON output; None if there is none."""
    try:
        return json.loads(output[output.index("{"):])["plays"][0]["tasks"][0]
    except (ValueError, KeyError, IndexError):
        return None


def finished(waited, start):
    """seconds (from `start` to the end of the confirming read) and uncertainty_s of a finished wait."""
    return {"seconds": round(waited["epoch"] - start, 3),
            "uncertainty_s": round(waited["epoch"] - max(waited["epoch_lower"], start), 3)}


# Writes the CSV that `cscli decisions import` takes (a `value` header), outside the timed part.
DECISIONS_CSV = "/tmp/floodguard-bench-decisions.csv"
WRITE_CSV = """import ipaddress, itertools, sys
hosts = itertools.islice(ipaddress.IPv4Network(sys.argv[1]).hosts(), int(sys.argv[2]))
with open(sys.argv[3], "w") as handle:
    handle.write("duration,value\\n" + "".join("4h,%s\\n" % address for address in hosts))
"""


def crowdsec_ban(host, args, size, outcome):
    """`cscli decisions import` of `size` addresses; its start epoch and seconds go to outcome."""
    host.exec("web", ["python3", "-c", WRITE_CSV, BAN_NETWORK, size, DECISIONS_CSV])
    done = host.exec("web", ["sh", "-c", "date +%s.%N; cscli decisions import -i " + DECISIONS_CSV
                             + " >/dev/null 2>&1; echo $?; date +%s.%N"], timeout=args.cap + 30, check=False)
    started, returncode, ended = done.stdout.split()
    outcome.update(start=float(started), task_s=round(float(ended) - float(started), 3), rc=int(returncode))


def ban_run(host, args, size):
    """Bans `size` addresses with one fail2ban_ban task (or cscli import); waits until the firewall holds them."""
    if host.kind == "crowdsec":
        return crowdsec_ban_run(host, args, size)
    addresses = [str(address) for address in itertools.islice(BAN_NETWORK.hosts(), size)]
    waiter = host.probe_process("wait", host.backend, BAN_NETWORK, size, args.cap)
    outcome = {}

    def ban():
        outcome["rc"], outcome["output"] = host.playbook(
            os.path.join(HERE, "ban.yml"), {"bench_ban_jail": MANUAL_JAIL, "bench_ban_ips": ban_ips(addresses, args.ban_form)},
            "ban-%s-%d" % (host.action, size), timeout=args.cap + 30, json_output=True)

    thread = threading.Thread(target=ban)
    thread.start()
    waited = host.waited(waiter, args.cap + 60)
    # Count what the firewall holds at the cap: freeze fail2ban first (the ban task then ends at its own
    # timeout), so that the count is of that moment.
    at_cap = None if waited["done"] else host.frozen_count()
    thread.join()
    run = {"done": waited["done"], "of": size}
    task = ban_task(outcome.get("output", "")) if outcome.get("rc") is not None else None
    if outcome.get("rc") is not None and task is None:
        run["problem"] = "no task report from ansible-playbook (rc %s), see the log" % outcome["rc"]
    if task is not None:
        host_result = next(iter(task["hosts"].values()))
        start = parse_iso(task["task"]["duration"]["start"])
        run["task_s"] = round(parse_iso(task["task"]["duration"]["end"]) - start, 3)
        run["batches"] = host_result.get("batches")
        if host_result.get("failed"):
            run["problem"] = "fail2ban_ban failed: %s" % host_result.get("msg")
        elif waited["done"]:
            # From the task's start to the end of the read that found every ban in the firewall.
            run.update(finished(waited, start), count=waited["count"])
    if "seconds" not in run:
        run.update(done=False, cap_s=args.cap, count=at_cap if at_cap is not None else host.frozen_count())
    return run


def crowdsec_ban_run(host, args, size):
    """`cscli decisions import`, waiting until the bouncer has put them all in its set."""
    waiter = host.probe_process("wait", host.backend, BAN_NETWORK, size, args.cap)
    outcome = {}
    try:
        crowdsec_ban(host, args, size, outcome)
    finally:
        waited = host.waited(waiter, args.cap + 60)
    run = {"done": waited["done"], "of": size, "task_s": outcome.get("task_s")}
    if outcome.get("rc"):
        run["problem"] = "cscli decisions import failed (rc %s)" % outcome["rc"]
    if waited["done"]:
        run.update(finished(waited, outcome["start"]), count=waited["count"])
    else:
        run.update(done=False, cap_s=args.cap, count=host.frozen_count())
        host.thaw_fail2ban()
    return run


def restore_run(host, args, size):
    """Restart of the ban daemons once they are idle after the bans (each restart starts from the same
    quiet daemon); time until the firewall holds all `size` bans again."""
    idle_after = host.wait_fail2ban_idle()
    waited = host.probe("restart", host.backend, BAN_NETWORK, size, args.cap, *host.units, timeout=args.cap + 300)
    run = {"done": waited["done"], "of": size, "restart_command_s": waited["restart_command_s"],
           "idle_after_ban_s": idle_after}
    if "unenforced" in waited:
        run["unenforced"] = waited["unenforced"]
    if waited["done"]:
        run.update(finished(waited, waited["restart_epoch"]), count=waited["count"])
    else:
        run.update(cap_s=args.cap, count=host.frozen_count())
    return run


def over_budget(args):
    return time.time() - args.started > args.budget


def repeat(host, args, size, entry):
    """One run at `size`: reset, ban, memory, restart and restore, memory. False: stop repeating."""
    host.reset()
    ban = ban_run(host, args, size)
    entry["ban"].append(ban)
    log("ban %s N=%d #%d: %s" % (host.action, size, len(entry["ban"]), describe(ban)))
    entry["memory"].append(dict(host.memory(), after="ban"))
    if not ban["done"]:
        entry["restore"].append({"done": False, "skipped": "the bans did not finish"})
        return False
    if "restore" in args.skip:
        return True
    restore = restore_run(host, args, size)
    entry["restore"].append(restore)
    log("restore %s N=%d #%d: %s" % (host.action, size, len(entry["restore"]), describe(restore)))
    entry["memory"].append(dict(host.memory(), after="restore"))
    return restore["done"]


def run(host, args, after_size=lambda size: None, results=None):
    """Per size of args.sizes: repeats of repeat(); after_size(size) runs with that size's bans still held.

    Once a size's bans do not finish within the cap, larger sizes are not run. `results` (returned) is
    filled as the runs go, so that an aborted bench keeps what was measured.
    """
    results = {} if results is None else results
    given_up = None
    for size in args.sizes:
        entry = results[str(size)] = {"ban": [], "restore": [], "memory": []}
        repeats = args.large_repeats if size >= SETTINGS["large_from"] else args.repeats
        if given_up is not None:
            entry["skipped"] = "not run: %d bans did not finish within %d s" % (given_up, args.cap)
            repeats = 0
        for done_runs in range(repeats):
            if over_budget(args):
                entry["cut"] = "%d of %d runs: the bench's time budget (--budget %d s) ran out" % (
                    done_runs, repeats, args.budget)
                break
            if not repeat(host, args, size, entry):
                if not entry["ban"][-1]["done"]:
                    given_up = size
                break
        entry["ban_summary"] = stats.summarize_runs(entry["ban"])
        entry["restore_summary"] = stats.summarize_runs(entry["restore"])
        after_size(size)
    return results
