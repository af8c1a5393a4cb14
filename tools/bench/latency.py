# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Phase "latency": attack-to-ban, from an attacker's first rejected request to its first dropped one."""

import time

import stats
from host import log

# Each attack: a fresh attacker address, 2 connections at up to 200 requests per second, one connection per
# request; long enough for CrowdSec's default 10 s bouncer poll (flood.py stops after 2 drops).
SETTINGS = {"requests": 5000, "duration_s": 25, "rate": 200, "concurrency": 2, "timeout_s": 1.0,
            "stop_after_drops": 2, "pause_s": 0.3}


def flood_options():
    return ["--requests", SETTINGS["requests"], "--duration", SETTINGS["duration_s"], "--rate", SETTINGS["rate"],
            "--concurrency", SETTINGS["concurrency"], "--timeout", SETTINGS["timeout_s"],
            "--stop-after-drops", SETTINGS["stop_after_drops"]]


def attack(host, source):
    """One attack from `source`: its latency and where it went (fail2ban's "Ban" in between)."""
    started, report = host.flood("attacker", [source], [str(item) for item in flood_options()])
    summary = report["sources"][source]
    run = {"source": source, "sent": summary["sent"], "served": summary["served"],
           "rejected": summary["rejected"], "dropped": summary["dropped"]}
    if summary["first_reject_s"] is None or summary["first_drop_s"] is None:
        run["latency_s"] = None
        run["problem"] = "no rejection" if summary["first_reject_s"] is None else "never dropped"
        return run
    # When the earliest request that got no answer was sent: a connect that timed out, or a connection
    # opened just before the ban whose answer the firewall then dropped (that one is recorded as failed
    # only after its read timeout, and would hide the ban's moment).
    drop_sent = summary["first_unanswered_sent_s"]
    run["latency_s"] = round(drop_sent - summary["first_reject_s"], 3)
    # The drop began after the request before it was sent: one start interval (1 / rate) or one request's
    # cycle on its connection (p90 of the answered ones), whichever is longer, earlier at most.
    cycle_s = (summary["latency_ms"].get("p90") or 0) / 1000.0
    run["uncertainty_s"] = round(max(1.0 / SETTINGS["rate"], cycle_s), 4)
    ban_epoch = host.fail2ban_ban_epoch(source)
    if ban_epoch is not None:
        run["reject_to_fail2ban_ban_s"] = round(ban_epoch - (started + summary["first_reject_s"]), 3)
        run["fail2ban_ban_to_drop_s"] = round(started + drop_sent - ban_epoch, 3)
    return run


def run(host, args):
    """args.latency_runs attacks, each from one of args.sources (consumed)."""
    runs = []
    for index in range(args.latency_runs):
        runs.append(attack(host, args.sources.pop(0)))
        log("latency %s run %d: %s" % (host.action, index + 1, runs[-1]["latency_s"]))
        time.sleep(SETTINGS["pause_s"])
    values = [item["latency_s"] for item in runs if item["latency_s"] is not None]
    return {
        "runs": runs, "summary": stats.summarize(values), "failed_runs": len(runs) - len(values),
        "uncertainty_s": stats.summarize([item.get("uncertainty_s") for item in runs]),
        "reject_to_fail2ban_ban_s": stats.summarize([item.get("reject_to_fail2ban_ban_s") for item in runs]),
        "fail2ban_ban_to_drop_s": stats.summarize([item.get("fail2ban_ban_to_drop_s") for item in runs]),
    }
