# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bench phase "botnet" (issue 13): thousands of attacking addresses at once, per system, same floods.

The attacker sends from addresses added to its loopback (one in each /24 of 10.128.0.0/9, so that no
prefix escalation can help; the web host routes them back to it), every address above the per-client
rate (tools/botnet_flood.py --burst --parallel), bursting again until banned or refused often enough for
every system's detection (SETTINGS["flood"]). Per run, with a fresh ban daemon (host.reset()):
  banned     from the flood's start (the attacker's clock, the same kernel clock as the web host's) until
             a read of the firewall that holds 99 % of the addresses has *finished*; the uncertainty is
             that read's end minus the previous read's start (probe.py's count, as scale.py reads it)
  legitimate a well-behaved client on the bench's client container, from an address of its own that is
             NOT allowlisted (allowlisted clients bypass the guard), one request every legit_interval_s:
             its share of 2xx from the flood's start until the 99 % point (or the flood's end)
  upstream   requests gunicorn answered per second (its access log in the journal, whose rate limit the
             phase lifts on the bench host) from the flood's start until it ended: the peak, against the
             guard's cap (nginx_ratelimit's defaults: rate, and rate + burst + 1 for any one second)
  cpu        CPU seconds of the ban daemons (fail2ban-server with its children; CrowdSec: crowdsec and
             its bouncer) from just before the flood until the 99 % read, as a share of one core
  detection  fail2ban's "Found" lines for the flood (the lines it counted) against NGINX's rejection
             lines written: lines/s until the last one was counted, and the lag from the moment NGINX's
             error log stopped growing (seen by the poll) to fail2ban's last "Found"
floodguard runs its defaults (guard and escalation on); the peers run on the original recipe's NGINX and
fail2ban (settings.RECIPE_VARS: no guard, no escalation), as their system's converge set them up. The
phase runs last for each system: floodguard's known-client variant converges once more and leaves the web
host so (the next system's converge sees that). Results: results["botnet"][system].
"""

import datetime
import json
import math
import os
import re
import subprocess
import time

import stats
from host import FLOOD_DIR, PROBE, REPO, log
from settings import ATTACK_JAIL, ATTACKER, CLIENT, WEB

# One home for the guard's cap: the role's defaults (the bench converges them).
DEFAULTS = os.path.join(REPO, "roles", "nginx_ratelimit", "defaults", "main.yml")
GUARD_LOG_UNIT = "floodguard-demo-api"
SETTINGS = {
    # A size whose first flood did not reach `share` banned within cap_s is not repeated: capped runs give no
    # median, and a peer that cannot keep up costs the cap each time. Quick: one flood of quick_sizes, and
    # no known-client variant.
    "sizes": [1000, 10000], "quick_sizes": [1000], "runs": 3, "quick_runs": 1, "share": 0.99,
    # START,COUNT,STEP of tools/botnet_flood.py: one address per /24 (no prefix reaches the escalation's K).
    "first_address": "10.128.0.1", "step": 256, "route": "10.128.0.0/9",
    # Each address: one connection with 8 pipelined requests (5r/s burst 5 lets 6 through: 2 rejections,
    # the jail's maxretry); the sources start over spread_s.
    # An address whose burst failed under the load (no answer in timeout_s, or 5xx only) tries again, up to
    # `rounds` bursts (tools/botnet_flood.py --rounds).
    # --parallel: the 8 on 8 connections at once (pipelined ones are answered at the upstream's pace and
    # then stay under the rate). Sources sending at once: `concurrency` (each holds `burst` connections).
    # A source stops once it got no connection (banned) or was refused in until_refused bursts: 3 x 2
    # rejection lines, enough for fail2ban's maxretry 2 and for CrowdSec's nginx-req-limit-exceeded bucket.
    # duration_s: the flood ends with the poll (cap_s + 2 s after the flood's start), not later.
    "flood": {"burst": 8, "parallel": True, "rounds": 10, "until_refused": 3, "spread_s": 1.0, "concurrency": 250,
              "timeout_s": 1.0, "duration_s": 32.0},
    "legit": {"address": "172.29.50.31", "interval_s": 0.25, "lead_s": 1.0},
    "cap_s": 30, "poll_pause_s": 0.2, "settle_s": 1.0,
    # The guard's reserved share (issue 13: a known client must not lose out to the botnet's first bursts):
    # the largest flood again, with the legitimate client in nginx_ratelimit_guard_known_clients.
    "known_client_systems": ["floodguard"],
}
KNOWN_VARS = {"nginx_ratelimit_guard_known_clients": [SETTINGS["legit"]["address"]]}
FLOOD_TOOL = os.path.join(REPO, "tools", "botnet_flood.py")
REMOTE_TOOL = FLOOD_DIR + "/botnet_flood.py"
GUNICORN_TIME = re.compile(r"\[(\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\] \"[A-Z]+ ")
FOUND = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) .*\[(?P<jail>[^\]]+)\] Found (?P<address>\S+)")
JOURNALD_DROPIN = "/etc/systemd/journald.conf.d/floodguard-bench.conf"

# Runs on the web host (python3 - CONFIG): reads the firewall with probe.py's count until it holds the
# wanted count and NGINX's error log has stopped growing for settle_s, or until the deadline; prints
# {"reads": [[start, end, count, error log size], ...], "cpu": [[epoch, seconds], ...]}.
POLL = r"""
import ipaddress, json, os, runpy, subprocess, sys, time
config = json.loads(sys.argv[1])
count = runpy.run_path(config["probe"], run_name="probe")["count"]
network = ipaddress.ip_network(config["network"])


def cpu():
    total, pids = 0.0, []
    for unit in config["units"]:
        pid = subprocess.run(["systemctl", "show", "-p", "MainPID", "--value", unit], capture_output=True,
                             text=True).stdout.strip()
        pids.append(pid)
        try:
            with open("/proc/%s/stat" % pid) as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        total += sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    return [time.time(), round(total, 3), pids]


def size():
    try:
        return os.path.getsize(config["error_log"])
    except OSError:
        return 0


reads, samples = [], [cpu()]
deadline = time.time() + config["limit_s"]
reached_at = stable_since = None
while time.time() < deadline:
    started = time.time()
    held = count(config["backend"], network)
    grown = size()
    ended = time.time()
    if reads and grown != reads[-1][3]:
        stable_since = None
    elif stable_since is None:
        stable_since = ended
    reads.append([round(started, 4), round(ended, 4), held, grown])
    if reached_at is None and held >= config["wanted"]:
        reached_at = ended
        samples.append(cpu())
    if reached_at is not None and stable_since is not None and ended - stable_since >= config["settle_s"]:
        break
    time.sleep(config["pause_s"])
samples.append(cpu())
print(json.dumps({"reads": reads, "cpu": samples}))
"""


# ---- pure code: the figures from what the hosts recorded --------------------------------------------------

def flood_addresses(first, count, step):
    """tools/botnet_flood.py's START,COUNT,STEP for `count` attacking addresses."""
    return "%s,%d,%d" % (first, count, step)


def wanted(count, share):
    """Addresses that make `share` of `count` (99 % of 10,000: 9,900)."""
    return int(math.ceil(count * share - 1e-9))


def reached(reads, goal, flood_start):
    """The first read that held `goal` addresses: seconds from the flood's start until it finished, and its
    uncertainty (its end minus the previous read's start: the moment lies in between). reads: [start, end,
    count, ...] in order. Not reached: done False with the largest count read."""
    previous_start = flood_start
    for read in reads:
        start, end, count = read[0], read[1], read[2]
        if count >= goal and end >= flood_start:
            return {"done": True, "seconds": round(end - flood_start, 3),
                    "uncertainty_s": round(end - max(previous_start, flood_start), 3), "count": count, "of": goal}
        previous_start = start
    return {"done": False, "count": max([read[2] for read in reads] or [0]), "of": goal}


def log_stopped_growing(reads):
    """Epoch of the first read that saw NGINX's error log at its final size, and its uncertainty (since the
    previous read); (None, None) without reads."""
    if not reads:
        return None, None
    final = reads[-1][3]
    for index, read in enumerate(reads):
        if read[3] == final:
            since = reads[index - 1][1] if index else read[0]
            return read[1], round(read[1] - since, 3)
    return None, None


def upstream_per_second(journal, since, until):
    """Requests gunicorn logged per second of its clock (its access log lines) in [since, until)."""
    counts = {}
    for stamp in GUNICORN_TIME.findall(journal):
        moment = int(datetime.datetime.strptime(stamp, "%d/%b/%Y:%H:%M:%S %z").timestamp())
        if int(since) <= moment < until:
            counts[moment] = counts.get(moment, 0) + 1
    return counts


def legit_share(requests, from_s, until_s):
    """The legitimate client's requests ([sent s after its start, outcome]) sent in [from_s, until_s): sent,
    2xx, their share (None for none); until_s None: to the end."""
    during = [outcome for sent, outcome in requests if sent >= from_s and (until_s is None or sent < until_s)]
    ok = sum(1 for outcome in during if str(outcome).startswith("2"))
    return {"sent": len(during), "2xx": ok, "share": round(ok / float(len(during)), 4) if during else None}


def found_epochs(fail2ban_log, jail, prefix, since):
    """Epochs of fail2ban's "[jail] Found ADDRESS" lines for addresses starting with `prefix`, from `since` on."""
    epochs = []
    for line in fail2ban_log.splitlines():
        match = FOUND.match(line)
        if match and match.group("jail") == jail and match.group("address").startswith(prefix):
            # fail2ban's local time, read as host.fail2ban_ban_epoch reads it (the hosts share the clock and zone)
            moment = datetime.datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
            if moment >= since:
                epochs.append(moment)
    return epochs


def detection(lines_written, found, flood_start, log_end, log_end_uncertainty):
    """Lines NGINX wrote and fail2ban counted, lines/s until the last was counted, and the lag from the
    error log's last growth to fail2ban's last "Found" (negative values mean it kept up: 0)."""
    if not found:
        return {"lines_written": lines_written, "found": 0, "lines_per_s": None, "lag_s": None}
    last = max(found)
    result = {"lines_written": lines_written, "found": len(found),
              "lines_per_s": round(len(found) / max(last - flood_start, 1e-3), 1), "lag_s": None,
              "lag_uncertainty_s": log_end_uncertainty}
    if log_end is not None:
        result["lag_s"] = round(max(0.0, last - log_end), 3)
    return result


def cpu_share(samples):
    """(CPU seconds, share of one core in %) from the first sample to the second (the 99 % read, or the end)."""
    if len(samples) < 2 or samples[1][0] <= samples[0][0]:
        return None, None
    used = samples[1][1] - samples[0][1]
    return round(used, 3), round(100.0 * used / (samples[1][0] - samples[0][0]), 1)


def guard_cap(defaults_text):
    """The guard's rate and burst from nginx_ratelimit's defaults (YAML text): (rate, burst)."""
    values = {}
    for key in ("nginx_ratelimit_guard_rate", "nginx_ratelimit_guard_burst"):
        match = re.search(r"^%s:\s*(\d+)\s*$" % key, defaults_text, re.MULTILINE)
        values[key] = int(match.group(1)) if match else None
    return values["nginx_ratelimit_guard_rate"], values["nginx_ratelimit_guard_burst"]


def cap_per_second(rate, burst, zones):
    """The most limit_req lets through in any one second: rate, plus each zone's burst and the request its
    clock admits at once (the known clients' zone has the same burst as the public one); None if unknown."""
    if rate is None or burst is None:
        return None
    return rate + zones * (burst + 1)


def one_run(size, flood, legit, poll, upstream, lines_written, found, cap):
    """The figures of one run from what the hosts recorded (pure: see run_once for where each comes from)."""
    start = flood["start"]
    goal = wanted(size, SETTINGS["share"])
    timing = reached(poll["reads"], goal, start)
    until = timing["seconds"] if timing["done"] else flood.get("flood_done_s")
    legit_offset = start - legit["start"]
    requests = legit["legit"]["requests"]
    during = legit_share(requests, legit_offset, None if until is None else until + legit_offset)
    after = legit_share(requests, until + legit_offset, None) if until is not None else legit_share([], 0, None)
    cpu_s, core = cpu_share(poll["cpu"])
    log_end, log_end_uncertainty = log_stopped_growing(poll["reads"])
    peak = max(upstream.values()) if upstream else 0
    return dict(timing, size=size, legit_during=during, legit_after=after,
                upstream_peak_rps=peak, upstream_total=sum(upstream.values()),
                upstream_at_or_under_cap=None if cap is None else peak <= cap,
                cpu_s=cpu_s, cpu_core_percent=core,
                detection=detection(lines_written, found, start, log_end, log_end_uncertainty),
                flood={key: flood.get(key) for key in ("statuses", "retry_after", "flood_done_s", "duration_s", "sources")},
                # The raw poll, relative to the flood's start: [read start, read end, count, error log bytes].
                reads=[[round(read[0] - start, 3), round(read[1] - start, 3)] + list(read[2:]) for read in poll["reads"]],
                cpu_samples=[[round(sample[0] - start, 3)] + list(sample[1:]) for sample in poll["cpu"]])


def summary(runs):
    """Per size: stats of the runs' seconds (summarize_runs) and medians of the other figures."""
    def med(pick):
        return stats.median([pick(run) for run in runs if pick(run) is not None])

    shares = [run["legit_during"]["share"] for run in runs if run["legit_during"]["share"] is not None]

    result = stats.summarize_runs(runs)
    result.update({
        "legit_share_median": stats.median(shares),
        "legit_share_min": min(shares) if shares else None,
        "upstream_peak_rps_max": max([run["upstream_peak_rps"] for run in runs] or [None]),
        "cpu_core_percent_median": med(lambda run: run["cpu_core_percent"]),
        "lines_per_s_median": med(lambda run: run["detection"]["lines_per_s"]),
        "lag_s_median": med(lambda run: run["detection"]["lag_s"]),
    })
    return result


# ---- on the testbed -------------------------------------------------------------------------------------

def _popen(host, name, argv, stdin=None):
    """A command started on a host now; its script (stdin) written and closed at once, so that it runs while
    the caller goes on (communicate() would only send it when the caller waits for the end)."""
    process = subprocess.Popen(["docker", "exec", "-i", host.container(name)] + [str(item) for item in argv],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               universal_newlines=True)
    process.stdin.write(stdin or "")
    process.stdin.close()
    process.stdin = None  # written: communicate() only reads
    return process


def _finish(process, timeout, what):
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise RuntimeError("%s did not finish within %d s" % (what, timeout)) from None
    if process.returncode != 0:
        raise RuntimeError("%s failed (rc %d): %s" % (what, process.returncode, (err or out).strip()[-1500:]))
    return json.loads(out.strip().splitlines()[-1])


def prepare_testbed(host, largest):
    """The attacker's addresses (on lo), the web host's route back, the client's own non-allowlisted address,
    the flood tool on attacker and client, and journald without a rate limit on the web host (idempotent).
    NGINX's connections and open files are the role's (nginx_ratelimit_worker_*)."""
    for name in ("attacker", "client"):
        host.exec(name, ["mkdir", "-p", FLOOD_DIR])
        host.copy(FLOOD_TOOL, name, REMOTE_TOOL)
    spec = flood_addresses(SETTINGS["first_address"], largest, SETTINGS["step"])
    host.exec("attacker", ["sh", "-c", "python3 %s 127.0.0.1 --duration 1 --ip-batch lo --sources %s | ip -force -batch - "
                           ">/dev/null 2>&1; true" % (REMOTE_TOOL, spec)], timeout=120)
    host.exec("web", ["ip", "-4", "route", "replace", SETTINGS["route"], "via", ATTACKER])
    host.exec("client", ["sh", "-c", "dev=$(ip -o -4 addr show | awk '$4 ~ /^%s\\// {print $2; exit}'); "
                         "ip addr replace %s/32 dev \"$dev\"" % (re.escape(CLIENT), SETTINGS["legit"]["address"])])
    if host.exec("web", ["test", "-e", JOURNALD_DROPIN], check=False).returncode != 0:
        host.exec("web", ["sh", "-c", "mkdir -p %s && printf '[Journal]\\nRateLimitIntervalSec=0\\nRateLimitBurst=0\\n' > %s "
                          "&& systemctl restart systemd-journald" % (os.path.dirname(JOURNALD_DROPIN), JOURNALD_DROPIN)])


def run_once(host, size, cap, error_log):
    """One flood of `size` addresses against a fresh ban daemon; its figures (one_run)."""
    host.reset()
    if host.kind == "fail2ban":
        host.wait_fail2ban_idle(20)
    flood_cfg, legit_cfg = SETTINGS["flood"], SETTINGS["legit"]
    log_offset = int(host.first_line(["stat", "-c", "%s", error_log]) or 0)
    f2b_offset = int(host.first_line(["stat", "-c", "%s", "/var/log/fail2ban.log"]) or 0)
    config = {"probe": PROBE, "network": SETTINGS["route"], "backend": host.backend, "units": list(host.units),
              "wanted": wanted(size, SETTINGS["share"]), "error_log": error_log, "pause_s": SETTINGS["poll_pause_s"],
              "settle_s": SETTINGS["settle_s"], "limit_s": SETTINGS["cap_s"] + legit_cfg["lead_s"] + 2}
    since = time.time()
    poller = _popen(host, "web", ["python3", "-", json.dumps(config)], stdin=POLL)
    legit_s = legit_cfg["lead_s"] + SETTINGS["cap_s"]
    legit = _popen(host, "client", ["python3", REMOTE_TOOL, WEB, "--legit", legit_cfg["address"], "--legit-interval",
                                    legit_cfg["interval_s"], "--legit-after", min(60, legit_s), "--duration", legit_s,
                                    "--timeout", flood_cfg["timeout_s"]])
    time.sleep(legit_cfg["lead_s"])
    flood_argv = ["python3", REMOTE_TOOL, WEB, "--sources", flood_addresses(SETTINGS["first_address"], size, SETTINGS["step"]),
                  "--burst", flood_cfg["burst"], "--rounds", flood_cfg["rounds"], "--until-refused", flood_cfg["until_refused"],
                  "--spread", flood_cfg["spread_s"], "--concurrency", flood_cfg["concurrency"],
                  "--timeout", flood_cfg["timeout_s"], "--duration", flood_cfg["duration_s"]]
    attack = _popen(host, "attacker", flood_argv + (["--parallel"] if flood_cfg["parallel"] else []))
    bound = flood_cfg["duration_s"] + 60
    flood = _finish(attack, bound, "the flood on the attacker")
    poll = _finish(poller, bound, "the poll on the web host")
    legit_result = _finish(legit, bound, "the legitimate client")
    until = flood["start"] + (flood.get("duration_s") or flood_cfg["duration_s"]) + 1
    journal = host.exec("web", ["journalctl", "-u", GUARD_LOG_UNIT, "-o", "cat", "--no-pager", "--since",
                                "@%d" % int(since)], timeout=120).stdout
    upstream = upstream_per_second(journal, flood["start"], until)
    lines = host.exec("web", ["sh", "-c", "tail -c +%d %s | grep -c 'limiting requests' || true"
                              % (log_offset + 1, error_log)]).stdout.strip()
    found = []
    if host.kind == "fail2ban":
        text = host.exec("web", ["sh", "-c", "tail -c +%d /var/log/fail2ban.log | grep ' Found ' || true" % (f2b_offset + 1)],
                         timeout=120).stdout
        found = found_epochs(text, ATTACK_JAIL, SETTINGS["first_address"].rsplit(".", 3)[0] + ".", since)
    result = one_run(size, flood, legit_result, poll, upstream, int(lines or 0), found, cap)
    log("botnet %s N=%d: 99%% after %s s (±%s), legit %s, upstream peak %s/s, CPU %s%%"
        % (host.action, size, result.get("seconds"), result.get("uncertainty_s"), result["legit_during"]["share"],
           result["upstream_peak_rps"], result["cpu_core_percent"]))
    return result


def measured(host, sizes, runs, cap, error_log):
    """{size: {"summary", "runs"}} of up to `runs` floods per size (none more after one that missed the share)."""
    done = {}
    for size in sizes:
        floods = []
        for _run in range(runs):
            floods.append(run_once(host, size, cap, error_log))
            if not floods[-1].get("done"):
                break
        done[str(size)] = {"summary": summary(floods), "runs": floods}
    return done


def run(host, args):
    """Every size SETTINGS["runs"] times (quick: quick_runs) on the system the web host runs; for the
    collection's defaults also the largest size with the legitimate client in the guard's known clients."""
    with open(DEFAULTS) as handle:
        rate, burst = guard_cap(handle.read())
    converged = host.converged_vars() or {}
    guarded = converged.get("nginx_ratelimit_guard_enabled", True)
    cap = cap_per_second(rate, burst, 1)
    sizes = SETTINGS["quick_sizes" if args.quick else "sizes"]
    prepare_testbed(host, max(sizes))
    error_log = host.first_line(["sh", "-c", "fail2ban-client get %s logpath 2>/dev/null | grep -o '/[^ ]*' | head -n1"
                                 % ATTACK_JAIL]) or "/var/log/nginx/error.log"
    runs = SETTINGS["quick_runs" if args.quick else "runs"]
    results = {"guard": guarded, "runs": runs, "guard_rate": rate, "guard_burst": burst, "cap_per_second": cap,
               "escalation": host.kind == "fail2ban" and converged.get("fail2ban_escalation_enabled", True),
               "sizes": {}}
    try:
        # Without the guard there is no cap to hold the upstream to.
        results["sizes"] = measured(host, sizes, runs, cap if guarded else None, error_log)
    finally:
        host.reset()
    if host.action in SETTINGS["known_client_systems"] and not args.quick:
        log("botnet: converge %s with %s" % (host.action, json.dumps(KNOWN_VARS)))
        host.converge_fail2ban([CLIENT + "/32"], KNOWN_VARS, "botnet-converge-%s-known-client" % host.action)
        results["known_client_cap_per_second"] = cap_per_second(rate, burst, 2)
        try:
            results["known_client"] = measured(host, [max(SETTINGS["sizes"])], runs,
                                               results["known_client_cap_per_second"], error_log)
        finally:
            host.reset()
    return results


# ---- the report -----------------------------------------------------------------------------------------

def _seconds(value):
    return "%.2f s" % value


def _cell(entry, pick):
    return "–" if entry is None or pick(entry) is None else pick(entry)


def section(results):
    """The report's section on botnet floods (results["botnet"]): systems side by side, goals of issue 13."""
    botnet = results.get("botnet")
    if not botnet:
        return []
    labels = results.get("settings", {}).get("system_labels", {})
    systems = [name for name in results.get("settings", {}).get("systems", sorted(botnet)) if name in botnet]
    sizes = sorted({int(size) for entry in botnet.values() for size in entry["sizes"]})

    def size_entry(system, size):
        return botnet[system]["sizes"].get(str(size), {}).get("summary")

    def percent(value):
        return "%.1f %%" % (100.0 * value)

    rows = [("upstream guard / prefix escalation",
             ["%s / %s" % ("on" if botnet[s]["guard"] else "off", "on" if botnet[s]["escalation"] else "off")
              for s in systems])]

    def banned(entry):
        return stats.spread(entry, _seconds) if entry.get("n") else "not reached in %d s (%s)" % (
            SETTINGS["cap_s"], ", ".join("%d of %d" % (u["count"], u["of"]) for u in entry["unfinished"]))

    for size in sizes:
        rows.append(("%s addresses: 99 %% banned after" % "{:,}".format(size),
                     [_cell(size_entry(s, size), banned) for s in systems]))
        rows.append(("%s: legitimate client's 2xx during the flood (median; lowest)" % "{:,}".format(size),
                     [_cell(size_entry(s, size), lambda e: None if e["legit_share_median"] is None else "%s; %s" % (
                         percent(e["legit_share_median"]), percent(e["legit_share_min"]))) for s in systems]))
        rows.append(("%s: upstream's peak requests/s (highest run)" % "{:,}".format(size),
                     [_cell(size_entry(s, size), lambda e: e["upstream_peak_rps_max"]) for s in systems]))
        rows.append(("%s: ban daemon's CPU until 99 %% (share of a core)" % "{:,}".format(size),
                     [_cell(size_entry(s, size), lambda e: None if e["cpu_core_percent_median"] is None else
                            "%.0f %%" % e["cpu_core_percent_median"]) for s in systems]))
        rows.append(("%s: fail2ban's detection, lines/s; lag after the last line" % "{:,}".format(size),
                     [_cell(size_entry(s, size), lambda e: None if e["lines_per_s_median"] is None else "%.0f; %s" % (
                         e["lines_per_s_median"], "–" if e["lag_s_median"] is None else _seconds(e["lag_s_median"])))
                      for s in systems]))
    known = {s: botnet[s]["known_client"][str(max(sizes))]["summary"] for s in systems
             if str(max(sizes)) in botnet[s].get("known_client", {})}
    if known:
        tag = "%s, legitimate client in nginx_ratelimit_guard_known_clients" % "{:,}".format(max(sizes))
        rows.append(("%s: 99 %% banned after" % tag, [_cell(known.get(s), banned) for s in systems]))
        rows.append(("%s: its 2xx during the flood (median; lowest)" % tag,
                     [_cell(known.get(s), lambda e: None if e["legit_share_median"] is None else "%s; %s" % (
                         percent(e["legit_share_median"]), percent(e["legit_share_min"]))) for s in systems]))
        known_cap = next(botnet[s]["known_client_cap_per_second"] for s in known)
        rows.append(("%s: upstream's peak requests/s (highest run; cap %s)" % (tag, known_cap),
                     [_cell(known.get(s), lambda e: e["upstream_peak_rps_max"]) for s in systems]))
    cap = next((entry["cap_per_second"] for entry in botnet.values() if entry.get("cap_per_second")), None)
    rate = next((entry["guard_rate"] for entry in botnet.values() if entry.get("guard_rate")), None)
    lines = ["## Botnet floods", "",
             "Each attacking address (one per /24 of %s, on the attacker's loopback) sends %d requests at once on as "
             "many connections, above the per-client rate, and again (up to %d bursts) until it gets no connection or "
             "was refused in %d bursts; the sources start within %.0f s. Times run from the "
             "flood's start until a read of the firewall that holds 99 %% of the addresses has finished (read ≤: "
             "that read's end minus the previous read's start). The legitimate client (the client container, from "
             "an address that is not allowlisted, %.0f requests/s) counts its 2xx from the flood's start until the "
             "99 %% point. The upstream's rate is what gunicorn logged per second; the guard's cap is %s requests/s "
             "(%s in any one second with its burst). CPU: fail2ban-server with its children, or CrowdSec's agent "
             "and bouncer. The peers run on the original recipe's NGINX and fail2ban: no guard, no escalation." % (
                 SETTINGS["route"], SETTINGS["flood"]["burst"], SETTINGS["flood"]["rounds"],
                 SETTINGS["flood"]["until_refused"], SETTINGS["flood"]["spread_s"],
                 1.0 / SETTINGS["legit"]["interval_s"], rate, cap), "",
             "| figure | %s |" % " | ".join(labels.get(s, s) for s in systems),
             "| --- |" + " ---: |" * len(systems)]
    for name, cells in rows:
        lines.append("| %s | %s |" % (name, " | ".join(str(cell) for cell in cells)))
    lines += [""] + goal_lines(botnet, results.get("settings", {}).get("ours", "floodguard")) + [""]
    return lines


def goal_lines(botnet, ours):
    """Issue 13's goals, judged on the collection's defaults (never in a timed test)."""
    entry = botnet.get(ours)
    large = entry and entry["sizes"].get("10000", {}).get("summary")
    if not large:
        return ["Goals of issue 13: not judged (no 10,000-address run of %s)." % ours]
    seconds = large.get("median")
    share = large.get("legit_share_min")
    peak, cap = large.get("upstream_peak_rps_max"), entry.get("cap_per_second")

    def verdict(ok):
        return "reached" if ok else "missed"
    known = entry.get("known_client", {}).get("10000", {}).get("summary")
    known_share = known.get("legit_share_min") if known else None
    known_line = [] if not known else [
        "- with the legitimate client in nginx_ratelimit_guard_known_clients (the guard's reserved share): its success "
        "%s (lowest run %s), upstream peak %s/s against %s" % (
            verdict(known_share is not None and known_share >= 0.99),
            "–" if known_share is None else "%.1f %%" % (100 * known_share), known.get("upstream_peak_rps_max"),
            entry.get("known_client_cap_per_second"))]
    return [
        "Goals of issue 13 (%s, 10,000 addresses):" % ours, "",
        "- 99 %% banned in under 5 s: %s (median %s)" % (verdict(seconds is not None and seconds < 5),
                                                         "not reached" if seconds is None else _seconds(seconds)),
        "- upstream at or under its cap: %s (peak %s/s, cap %s in any one second)" % (
            verdict(peak is not None and cap is not None and peak <= cap), peak, cap),
        "- legitimate client's success during the flood ≥ 99 %%: %s (lowest run %s)" % (
            verdict(share is not None and share >= 0.99), "–" if share is None else "%.1f %%" % (100 * share)),
    ] + known_line
