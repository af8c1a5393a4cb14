# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Phase "perpacket": what N bans cost every packet that is not banned, judged against 0 bans.

A quiet measurement: the allowlisted client (its own network namespace, a container on the same bridge)
sends TCP connect attempts to a closed port of the web host in a loop - each SYN passes the web host's
input hook, where the ban sets or chains are looked up, and the kernel answers with a RST - and counts
answers per second. No HTTP, no NGINX, no Django: nothing but the kernel's path.

The ban daemons are left to go idle, then frozen (SIGSTOP), so that only the firewall is compared. Then
args.perpacket_pairs interleaved pairs A B A B ...: A with 0 bans, B with N. nftables: one client loop runs
throughout while probe.py toggle points the blocking rules at an empty twin set (A) and back at the ban
set (B), each for args.perpacket_seconds; its connects are counted per window (CLOCK_MONOTONIC is shared by
the containers). iptables: the chains are trimmed to 0 (probe.py trim) and refilled to N (probe.py fill,
in the very shape the action left) between separate client runs. Per pair the relative change
B / A - 1; the report gives their mean with a 95 % interval (Student's t) and judges it two-sided
against +-goals["perpacket_within"]: a cost that shows, no cost (the interval inside the bound), or
unresolved (the interval too wide to tell).
"""

import json
import subprocess

import stats
from host import log
from settings import BAN_NETWORK, MANUAL_JAIL, WEB

# Port 9 is closed on the web host: the kernel answers each SYN with a RST (after the input hook, where
# the ban sets and chains are looked up), so nothing but the kernel's path is in the figure - no NGINX
# worker that the shared machine's scheduler holds up, whose full accept queue would drop SYNs and stall
# the loop for a retransmit.
SETTINGS = {"port": 9, "connect_timeout_s": 0.5, "bin_s": 0.005, "margin_s": 0.02, "delay_s": 1.0}
# Runs on the client: TCP connect attempts to the web host for a fixed time; each answer (refused, or
# accepted and closed with RST) is counted in bins of CLOCK_MONOTONIC, which all containers share with the
# web host, so the bins line up with its switches. Attempts that got no answer are counted apart, in the
# bin they started in (a window holding one is left out).
CONNECT_LOOP = """import json, socket, struct, sys, time
host, port, seconds, timeout, bin_s = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
linger = struct.pack("ii", 1, 0)
counts, stalls = {}, {}
started = time.monotonic()
end = started + seconds
now = started
while now < end:
    began = now
    try:
        conn = socket.create_connection((host, port), timeout=timeout)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        conn.close()
        answered = True
    except ConnectionRefusedError:
        answered = True
    except OSError:
        answered = False
    now = time.monotonic()
    if answered:
        slot = int((now - started) / bin_s)
        counts[slot] = counts.get(slot, 0) + 1
    else:
        slot = int((began - started) / bin_s)
        stalls[slot] = stalls.get(slot, 0) + 1
print(json.dumps({"t0": started, "bin_s": bin_s, "counts": counts, "stalls": stalls,
                  "failed": sum(stalls.values()), "rate": round(sum(counts.values()) / (now - started), 1)}))
"""


def client_command(args, seconds):
    return ["python3", "-c", CONNECT_LOOP, WEB, SETTINGS["port"], seconds, SETTINGS["connect_timeout_s"],
            SETTINGS["bin_s"]]


def connect_rate(host, args):
    """One connect loop of the client: {'rate', 'failed', ...}."""
    done = host.exec("client", client_command(args, args.perpacket_seconds), timeout=args.perpacket_seconds + 60)
    return json.loads(done.stdout)


def answered_rate(loop):
    """A whole loop's rate of answers; None when an attempt stalled it."""
    return None if loop["failed"] else loop["rate"]


def window_rate(loop, start, end, margin):
    """Answers per second of the client loop between two switches (monotonic), leaving `margin` after the
    first; None for a window in which an attempt got no answer (it stalled the loop)."""
    # Whole bins only (rounded first: 0.52 / 0.01 is 51.99999... in floating point).
    low = int(round((start + margin - loop["t0"]) / loop["bin_s"], 6)) + 1
    high = int(round((end - loop["t0"]) / loop["bin_s"], 6))
    stalls = loop.get("stalls") or {}
    if high <= low or any(str(slot) in stalls or slot in stalls for slot in range(low - 1, high)):
        return None
    connects = sum(loop["counts"].get(str(slot), loop["counts"].get(slot, 0)) for slot in range(low, high))
    return round(connects / ((high - low) * loop["bin_s"]), 1)


def toggled_pairs(host, args):
    """(0-ban rates, N-ban rates) of args.perpacket_pairs pairs switched on the live nftables ruleset while
    one client loop runs throughout (probe.py toggle)."""
    seconds = SETTINGS["delay_s"] + 2 * args.perpacket_pairs * args.perpacket_seconds + 1.5
    client = subprocess.Popen(["docker", "exec", host.container("client")]
                              + [str(item) for item in client_command(args, seconds)],
                              stdout=subprocess.PIPE, universal_newlines=True)
    try:
        switched = host.probe("toggle", host.backend, BAN_NETWORK, args.perpacket_pairs, args.perpacket_seconds,
                              SETTINGS["delay_s"], timeout=seconds + 120)
        loop = json.loads(client.communicate(timeout=seconds + 60)[0])
    finally:
        if client.poll() is None:
            client.kill()
            client.communicate()
    moments = switched["moments"]
    rates = {"A": [], "B": []}
    for (state, start), (_next, end) in zip(moments, moments[1:]):
        rates[state].append(window_rate(loop, start, end, SETTINGS["margin_s"]))
    return rates["A"], rates["B"], {"failed": loop["failed"], "loop_rate": loop["rate"], "rules": switched["rules"]}


def trimmed_pairs(host, args, held, where):
    """(0-ban rates, N-ban rates) of args.perpacket_pairs pairs, trimming and refilling between runs (iptables:
    its chains cannot be switched in one cheap step)."""
    baseline, banned = [], []
    for _pair in range(args.perpacket_pairs):
        host.probe("trim", host.backend, BAN_NETWORK, 0, timeout=600)
        baseline.append(answered_rate(connect_rate(host, args)))
        host.probe("fill", host.backend, BAN_NETWORK, held, json.dumps(where), timeout=600)
        banned.append(answered_rate(connect_rate(host, args)))
    return baseline, banned, {}


def top_up(host, size):
    """Makes the firewall hold `size` bans when the ban daemon could not get there; the note, or None."""
    held = host.banned_in_firewall()
    if held >= size:
        return None
    host.freeze_fail2ban()
    if held == 0:
        host.thaw_fail2ban()
        host.reset()
        # One ban through the system gives the set or chain (and its rule) to copy.
        first = str(next(BAN_NETWORK.hosts()))
        if host.kind == "crowdsec":
            host.exec("web", ["cscli", "decisions", "add", "-i", first, "-d", "4h"])
        else:
            host.exec("web", ["fail2ban-client", "set", MANUAL_JAIL, "banip", first])
        host.probe("wait", host.backend, BAN_NETWORK, 1, 30)
        host.freeze_fail2ban()
    filled = host.probe("fill", host.backend, BAN_NETWORK, size, timeout=600)
    return ("the ban daemon did not get to %s bans within the cap, so %s of them were loaded straight into the "
            "firewall (%.1f s), in the very set or rule shape its action creates"
            % (format(size, ","), format(filled["added"], ","), filled["seconds"]))


def measure(host, args, size, note=None):
    """args.perpacket_pairs interleaved pairs (0 bans, `size` bans) on the frozen firewall."""
    idle_after = host.wait_fail2ban_idle()
    host.freeze_fail2ban()
    where = host.probe("target", host.backend, BAN_NETWORK)["target"]
    held = host.banned_in_firewall()
    try:
        if host.backend == "nftables":
            baseline, banned, extra = toggled_pairs(host, args)
            method = "toggle"
        else:
            baseline, banned, extra = trimmed_pairs(host, args, held, where)
            method = "trim-fill"
    finally:
        host.thaw_fail2ban()
    complete = [(before, after) for before, after in zip(baseline, banned) if before and after]
    extra["pairs_left_out"] = len(banned) - len(complete)
    change = stats.paired_change([before for before, _after in complete], [after for _before, after in complete])
    entry = dict(extra, bans=held, pairs=len(complete), method=method, baseline=baseline, banned=banned,
                 baseline_rate=stats.summarize(baseline), banned_rate=stats.summarize(banned), change=change,
                 verdict=stats.verdict(change["ci95"], args.perpacket_within), fail2ban_idle_after_s=idle_after,
                 banned_in_firewall=host.banned_in_firewall())
    if note:
        entry["note"] = note
    ci = change["ci95"] or {}
    log("perpacket %s N=%d (%s): %s answers/s with 0, %s with N; change %+.2f%% [%+.2f%%, %+.2f%%]: %s" % (
        host.action, held, method, entry["baseline_rate"]["median"], entry["banned_rate"]["median"],
        100 * ci.get("mean", 0), 100 * ci.get("low", 0), 100 * ci.get("high", 0), entry["verdict"]))
    return entry


def run(host, args, size):
    """The per-packet cost of `size` bans: those the system holds, topped up if it fell short."""
    return measure(host, args, size, top_up(host, size))
