# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Phase "perpacket": what N bans cost every packet that is not banned, judged against 0 bans.

A quiet measurement: the allowlisted client (its own network namespace, a container on the same bridge)
sends TCP connect attempts to a closed port of the web host in a loop - each SYN passes the web host's
input hook, where the ban sets or chains are looked up, and the kernel answers with a RST - and counts
answers per second. No HTTP, no NGINX, no Django: nothing but the kernel's path.

The ban daemons are left to go idle, then frozen (SIGSTOP), so that only the firewall is compared. Then
args.perpacket_pairs interleaved pairs A B A B ...: A with 0 bans, B with N. One client loop runs
throughout while probe.py toggle switches the firewall, each state for args.perpacket_seconds: nftables
points the blocking rules at an empty twin set (A) and back at the ban set (B); iptables puts a RETURN at
the top of each ban chain (A) and takes it out (B). The loop's connects are counted per window, from one
switch's end to the next one's start (CLOCK_MONOTONIC is shared by the containers). Per pair the relative
change B / A - 1; the report gives their mean with a 95 % interval (Student's t) and judges it two-sided
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
# switch_s: what the client loop may run longer per switch, by backend (iptables-nft reads the whole table
# before it changes it: about 0.8 s at 100,000 rules; nft's rule replace takes milliseconds); the loop stops
# once toggle has ended. A window the loop did not cover to its end is left out.
SETTINGS = {"port": 9, "connect_timeout_s": 0.5, "bin_s": 0.005, "margin_s": 0.02, "delay_s": 1.0,
            "switch_s": {"nftables": 0.5, "iptables-multiport": 3.0}}
# Runs on the client: TCP connect attempts to the web host for a fixed time; each answer (refused, or
# accepted and closed with RST) is counted in bins of CLOCK_MONOTONIC, which all containers share with the
# web host, so the bins line up with its switches. Attempts that got no answer are counted apart, in the
# bin they started in (a window holding one is left out).
CONNECT_LOOP = """import json, os, socket, struct, sys, time
host, port, seconds, timeout, bin_s = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
stop_file = sys.argv[6]
linger = struct.pack("ii", 1, 0)
counts, stalls = {}, {}
started = time.monotonic()
end = started + seconds
now = look = started
while now < end:
    if now >= look:  # the caller ends the loop early by creating stop_file
        if os.path.exists(stop_file):
            break
        look = now + 0.1
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
print(json.dumps({"t0": started, "t_end": now, "bin_s": bin_s, "counts": counts, "stalls": stalls,
                  "failed": sum(stalls.values()), "rate": round(sum(counts.values()) / (now - started), 1)}))
"""


STOP_FILE = "/tmp/floodguard-bench-perpacket.stop"


def client_command(args, seconds):
    return ["python3", "-c", CONNECT_LOOP, WEB, SETTINGS["port"], seconds, SETTINGS["connect_timeout_s"],
            SETTINGS["bin_s"], STOP_FILE]


def window_rate(loop, start, end, margin):
    """Answers per second of the client loop between two switches (monotonic), leaving `margin` after the
    first; None for a window in which an attempt got no answer (it stalled the loop), or that runs past
    the loop's end."""
    if end > loop.get("t_end", end):
        return None
    # Whole bins only (rounded first: 0.52 / 0.01 is 51.99999... in floating point).
    low = int(round((start + margin - loop["t0"]) / loop["bin_s"], 6)) + 1
    high = int(round((end - loop["t0"]) / loop["bin_s"], 6))
    stalls = loop.get("stalls") or {}
    if high <= low or any(str(slot) in stalls or slot in stalls for slot in range(low - 1, high)):
        return None
    connects = sum(loop["counts"].get(str(slot), loop["counts"].get(slot, 0)) for slot in range(low, high))
    return round(connects / ((high - low) * loop["bin_s"]), 1)


def toggled_pairs(host, args):
    """(0-ban rates, N-ban rates) of args.perpacket_pairs pairs switched on the live ruleset while one client
    loop runs throughout (probe.py toggle), and what the switching reported."""
    seconds = SETTINGS["delay_s"] + 2 * args.perpacket_pairs * (args.perpacket_seconds + SETTINGS["switch_s"][host.backend]) + 1.5
    host.exec("client", ["rm", "-f", STOP_FILE])
    client = subprocess.Popen(["docker", "exec", host.container("client")]
                              + [str(item) for item in client_command(args, seconds)],
                              stdout=subprocess.PIPE, universal_newlines=True)
    try:
        switched = host.probe("toggle", host.backend, BAN_NETWORK, args.perpacket_pairs, args.perpacket_seconds,
                              SETTINGS["delay_s"], timeout=seconds + 120)
        host.exec("client", ["touch", STOP_FILE])
        loop = json.loads(client.communicate(timeout=seconds + 60)[0])
    finally:
        if client.poll() is None:
            client.kill()
            client.communicate()
    rates = window_rates(loop, switched["moments"], SETTINGS["margin_s"])
    switch_s = [done - began for _state, began, done in switched["moments"]]
    return rates["A"], rates["B"], {"failed": loop["failed"], "loop_rate": loop["rate"], "rules": switched["rules"],
                                    "switch_s_max": round(max(switch_s), 3), "banned_in_firewall": switched["count"]}


def window_rates(loop, moments, margin):
    """{"A": [...], "B": [...]}: the loop's rate in each state's window, from the end of its switch (plus
    `margin`) to the start of the next one; moments: [state, began, done] per switch, in order."""
    rates = {"A": [], "B": []}
    for (state, _began, done), (_next, next_began, _next_done) in zip(moments, moments[1:]):
        rates[state].append(window_rate(loop, done, next_began, margin))
    return rates


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
    held = host.banned_in_firewall()
    method = "toggle: empty twin set" if host.backend == "nftables" else "toggle: RETURN atop the ban chains"
    try:
        # extra["banned_in_firewall"]: toggle's count once the bans were back, the daemon still frozen (once
        # thawed, fail2ban-iptables' watches each read 100,000 rules at once).
        baseline, banned, extra = toggled_pairs(host, args)
    finally:
        host.thaw_fail2ban()
    complete = [(before, after) for before, after in zip(baseline, banned) if before and after]
    extra["pairs_left_out"] = len(banned) - len(complete)
    change = stats.paired_change([before for before, _after in complete], [after for _before, after in complete])
    entry = dict(extra, bans=held, pairs=len(complete), method=method, baseline=baseline, banned=banned,
                 baseline_rate=stats.summarize(baseline), banned_rate=stats.summarize(banned), change=change,
                 verdict=stats.verdict(change["ci95"], args.perpacket_within), fail2ban_idle_after_s=idle_after)
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
