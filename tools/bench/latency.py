# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Phase "latency": attack-to-ban, from an attacker's first rejected request to its first dropped one."""

import datetime
import time

import stats
from host import log
from settings import ATTACK_JAIL

# Each attack: a fresh attacker address, 2 connections at up to 200 requests per second, one connection per
# request; long enough for CrowdSec's default 10 s bouncer poll (flood.py stops after 2 drops).
# A system whose bans wait for a poll of slow_poll_s or longer (CrowdSec's default bouncer: its latency is the
# poll's, 0-10 s) gets at most slow_poll_runs attacks: each takes seconds, and the bench's time budget is 45 min.
SETTINGS = {"requests": 5000, "duration_s": 25, "rate": 200, "concurrency": 2, "timeout_s": 1.0,
            "stop_after_drops": 2, "pause_s": 0.3, "slow_poll_s": 10, "slow_poll_runs": 10}


def flood_options():
    return ["--requests", SETTINGS["requests"], "--duration", SETTINGS["duration_s"], "--rate", SETTINGS["rate"],
            "--concurrency", SETTINGS["concurrency"], "--timeout", SETTINGS["timeout_s"],
            "--stop-after-drops", SETTINGS["stop_after_drops"]]


def log_epoch(line):
    """The epoch of a fail2ban.log line (its local time stamp, milliseconds)."""
    return datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()


def found_epochs(text, address, jail=ATTACK_JAIL):
    """Epochs of fail2ban's 'Found <address>' notices of `jail` in fail2ban.log text, in order."""
    marker = "[%s] Found %s " % (jail, address)
    return [log_epoch(line) for line in text.splitlines() if marker in line + " "]


def breakdown(host, source, reject_epoch, ban_epoch, drop_epoch, maxretry=1):
    """Where the latency went: rejection -> first "Found" (the filter read NGINX's line), first -> maxretry-th
    "Found" (NGINX rejecting the flood's next requests; the ticket is then due), that "Found" -> "Ban" (the
    actions thread's wait for the ticket), "Ban" -> first dropped request sent (the action's flush)."""
    parts = {"fail2ban_ban_to_drop_s": round(drop_epoch - ban_epoch, 3),
             "reject_to_fail2ban_ban_s": round(ban_epoch - reject_epoch, 3)}
    text = host.exec("web", ["grep", "-h", "] Found %s" % source, "/var/log/fail2ban.log"], check=False).stdout
    found = [epoch for epoch in found_epochs(text, source) if epoch <= ban_epoch + 0.001]
    if len(found) >= maxretry:
        due = found[maxretry - 1]
        parts["reject_to_found_s"] = round(found[0] - reject_epoch, 3)
        parts["found_to_last_found_s"] = round(due - found[0], 3)
        parts["found_to_ban_s"] = round(ban_epoch - due, 3)
    return parts


def jail_maxretry(host):
    """The attack jail's maxretry (its "Found" that makes the ticket due); 1 when fail2ban does not say."""
    done = host.exec("web", ["fail2ban-client", "get", ATTACK_JAIL, "maxretry"], check=False)
    words = done.stdout.split()
    return int(words[-1]) if done.returncode == 0 and words and words[-1].isdigit() else 1


def attack(host, source, maxretry=1):
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
        run.update(breakdown(host, source, started + summary["first_reject_s"], ban_epoch, started + drop_sent,
                             maxretry))
    return run


def run(host, args):
    """args.latency_runs attacks (slow_poll_runs at most for a slow poll), each from one of args.sources (consumed)."""
    runs = []
    maxretry = jail_maxretry(host) if host.kind == "fail2ban" else 1
    count = args.latency_runs
    if host.spec.get("poll_s", 0) >= SETTINGS["slow_poll_s"]:
        count = min(count, SETTINGS["slow_poll_runs"])
    for index in range(count):
        runs.append(attack(host, args.sources.pop(0), maxretry))
        log("latency %s run %d: %s" % (host.action, index + 1, runs[-1]["latency_s"]))
        time.sleep(SETTINGS["pause_s"])
    values = [item["latency_s"] for item in runs if item["latency_s"] is not None]
    return {
        "runs": runs, "summary": stats.summarize(values), "failed_runs": len(runs) - len(values),
        "uncertainty_s": stats.summarize([item.get("uncertainty_s") for item in runs]),
        "reject_to_fail2ban_ban_s": stats.summarize([item.get("reject_to_fail2ban_ban_s") for item in runs]),
        "fail2ban_ban_to_drop_s": stats.summarize([item.get("fail2ban_ban_to_drop_s") for item in runs]),
        "reject_to_found_s": stats.summarize([item.get("reject_to_found_s") for item in runs]),
        "maxretry": maxretry,
        "found_to_last_found_s": stats.summarize([item.get("found_to_last_found_s") for item in runs]),
        "found_to_ban_s": stats.summarize([item.get("found_to_ban_s") for item in runs]),
    }
