# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Phase "perpacket": an allowlisted client's request rate and p99 latency with N addresses banned.

Only the firewall's cost is wanted, not fail2ban's CPU work that follows a ban or restore (database rows,
log lines): fail2ban is left to go idle, then frozen (SIGSTOP) while the client measures; the kernel's
sets and rules keep working. With N bans each run is paired with one right after it on the same sets or
chains trimmed down to one ban (probe.py trim, then fill again): a baseline from the start of the bench,
minutes away, drifts more on a shared machine than the effect that is measured.
"""

import stats
from host import log
from settings import BAN_NETWORK, CLIENT, MANUAL_JAIL

# The client: a new connection per request, this many at a time, for args.perpacket_seconds per run.
SETTINGS = {"concurrency": 4, "requests": 5000, "timeout_s": 5}


def client_run(host, args):
    """The allowlisted client, as fast as its connections go."""
    _started, report = host.flood("client", [CLIENT], [
        "--requests", str(SETTINGS["requests"]), "--duration", str(args.perpacket_seconds),
        "--concurrency", str(SETTINGS["concurrency"]), "--timeout", str(SETTINGS["timeout_s"])])
    summary = report["sources"][CLIENT]
    return {"rate": round(summary["served"] / report["elapsed_s"], 1), "served": summary["served"],
            "sent": summary["sent"], "p99_ms": summary["latency_ms"].get("p99"),
            "p50_ms": summary["latency_ms"].get("p50")}


def summaries(runs):
    return {"rate": stats.summarize([item["rate"] for item in runs]),
            "p99_ms": stats.summarize([item["p99_ms"] for item in runs])}


def top_up(host, size):
    """Makes the firewall hold `size` bans when fail2ban could not get there; the note that says so, or None.

    fail2ban is frozen (so that it adds nothing more) and the rest goes straight into the firewall in the
    very shape its action uses.
    """
    held = host.banned_in_firewall()
    if held >= size:
        return None
    host.freeze_fail2ban()
    if held == 0:
        host.reset()
        # One ban through fail2ban gives the set or chain (and its rule) to copy.
        host.exec("web", ["fail2ban-client", "set", MANUAL_JAIL, "banip", next(BAN_NETWORK.hosts())])
        host.freeze_fail2ban()
    filled = host.probe("fill", host.backend, BAN_NETWORK, size, timeout=600)
    return ("fail2ban did not get to %s bans within the cap, so %s of them were loaded straight into the "
            "firewall (%.1f s), in the very set or rule shape its action creates"
            % (format(size, ","), format(filled["added"], ","), filled["seconds"]))


def measure(host, args, size, note=None):
    """args.perpacket_repeats client runs with the bans the firewall holds now (paired when size > 0)."""
    idle_after = host.wait_fail2ban_idle()
    host.freeze_fail2ban()
    runs, paired = [], []
    held = host.banned_in_firewall()
    try:
        for _repeat in range(args.perpacket_repeats):
            runs.append(client_run(host, args))
            if size:
                host.probe("trim", host.backend, BAN_NETWORK, 1, timeout=600)
                paired.append(client_run(host, args))
                host.probe("fill", host.backend, BAN_NETWORK, held, timeout=600)
    finally:
        host.thaw_fail2ban()
    entry = dict(summaries(runs), runs=runs, banned_in_firewall=host.banned_in_firewall(),
                 fail2ban_idle_after_s=idle_after)
    if paired:
        entry["paired_baseline"] = dict(summaries(paired), runs=paired)
        # Per pair: the rate with N bans relative to the rate with one, right after it.
        entry["paired_change"] = stats.summarize([round(item["rate"] / base["rate"] - 1, 4)
                                                  for item, base in zip(runs, paired) if base["rate"]])
    if note:
        entry["note"] = note
    log("perpacket %s N=%d: %s req/s, p99 %s ms" % (host.action, size, entry["rate"]["median"],
                                                    entry["p99_ms"]["median"]))
    return entry


def run(host, args, size):
    """The per-packet cost with `size` bans: those fail2ban holds, topped up if it fell short (0: reset)."""
    if size == 0:
        host.reset()
        return measure(host, args, 0)
    return measure(host, args, size, top_up(host, size))
