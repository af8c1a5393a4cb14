# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Phase "lb": the NGINX ban back end behind a load balancer (issue #11).

Adds a host `lb` (HAProxy appending X-Forwarded-For, as an ALB does; tools/bench/lb.yml) in front of the web
host, converges the web host with the README's ALB variables and nothing else about bans (so that
playbooks/site.yml bans inside NGINX), then measures:
  latency     an attacker (a fresh address per run) floods through the LB: from the arrival of its first
              answer 429 (rejected) to the arrival of its first answer 403 (the ban inside NGINX)
  burst       NGINX reloads (its journal) and master/worker PIDs around one fail2ban_ban of 1,000 addresses
  scale       N addresses by one fail2ban_ban task: from the task's start until a read of NGINX's ban count
              (management socket) that returns N has finished
  memory      PSS of every NGINX process (smaps_rollup) with 0 bans and with the largest N
  restart     `systemctl restart nginx` with those N: from the command's start (on the web host) until a read
              of the ban count that returns N has finished (init_by_lua loads the action's state file)
  perrequest  interleaved pairs, as perpacket.py judges the firewall: full HTTP requests of the client with
              the ban list flushed (A) and with N bans (B), fail2ban frozen; mean change with its 95 % interval
It runs after the per-action phases (it leaves the web host converged for the LB) and removes `lb`.
"""

import ipaddress
import itertools
import json
import os
import subprocess
import threading
import time

import scale
import stats
from host import ACTION_MARKER, CONVERGED_VARS_FILE, HERE, log, testbed
from settings import ATTACKER, BAN_NETWORK, CLIENT, MANUAL_JAIL, SUBNET

LB = str(ipaddress.IPv4Network(SUBNET).network_address + 5)
SOCKET = "/run/floodguard-nginx/ban.sock"
BAN_STATUS = 403
SETTINGS = {
    "lb": LB, "lb_software": "HAProxy (Debian), option forwardfor", "ban_status": BAN_STATUS,
    # Attack sources: extra addresses of the attacker from subnet address + this offset (one per run).
    "attack_offset": 200,
    "attack": {"requests": 2000, "duration_s": 15, "concurrency": 2, "timeout_s": 1.0, "pause_s": 0.3},
    "burst": 1000, "sizes": [10000, 100000], "repeats": 3, "quick_sizes": [10000], "quick_repeats": 1,
    "cap_s": 120, "poll_s": 0.05,
}
# Polls NGINX's ban count of a jail over the management socket (on the web host, stdlib only) until it
# reaches the wanted count; the epoch is taken once the confirming read has finished.
POLL = r"""import http.client, json, socket, sys, time
class Unix(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(sys.argv[1])
def count():
    connection = Unix("floodguard-ban", timeout=10)
    connection.request("GET", "/count?jail=" + sys.argv[2])
    return int(connection.getresponse().read())
wanted, limit, pause = int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
started, polls = time.time(), 0
while True:
    held = count()
    polls += 1
    now = time.time()
    if held >= wanted or now - started > limit:
        print(json.dumps({"done": held >= wanted, "count": held, "epoch": now, "polls": polls}))
        break
    time.sleep(pause)
"""
PSS = "for pid in $(pgrep -x nginx); do cat /proc/$pid/smaps_rollup; done"


def alb_vars(lb):
    """The README's ALB variables (examples/ec2/group_vars/web.yml) with the LB's address as the ALB's subnet."""
    subnets = [lb + "/32"]
    return {"floodguard_alb_subnets": subnets, "nginx_ratelimit_real_ip_enabled": True,
            "nginx_ratelimit_real_ip_from": subnets, "nginx_ratelimit_real_ip_header": "X-Forwarded-For",
            "nginx_ratelimit_real_ip_recursive": True, "nginx_ratelimit_allowlist": subnets,
            "fail2ban_ignoreip": subnets}


def element(address):
    """An address as NGINX's ban back end takes it: hex of the packed address, prefix length."""
    network = ipaddress.ip_network(address)
    return "%s/%d" % (network.network_address.packed.hex(), network.prefixlen)


def pss_kib(text):
    """Sum of the Pss: lines of smaps_rollup texts (KiB)."""
    return sum(int(line.split()[1]) for line in text.splitlines() if line.startswith("Pss:"))


def dict_used_kib(stats_text):
    """KiB the ban dict uses, from the management socket's /stats answer ("capacity BYTES free BYTES")."""
    words = stats_text.split()
    values = dict(zip(words[::2], words[1::2]))
    if not {"capacity", "free"} <= set(values):
        return None
    return {"used_kib": (int(values["capacity"]) - int(values["free"])) // 1024,
            "capacity_kib": int(values["capacity"]) // 1024}


def reload_count(journal):
    """Reloads of nginx.service in `journalctl -u nginx -o cat` text (systemd logs "Reloading ...")."""
    return sum(1 for line in journal.splitlines() if line.startswith("Reloading"))


def ban_latency(summary, status=BAN_STATUS):
    """(seconds from the first rejection's answer to the first ban answer, problem) of a flood.py summary."""
    rejected, banned = summary.get("first_reject_s"), (summary.get("first_status_s") or {}).get(str(status))
    if rejected is None:
        return None, "no rejection"
    if banned is None:
        return None, "never answered %d" % status
    if banned < rejected:
        return None, "answered %d before the first rejection (banned already?)" % status
    return round(banned - rejected, 3), None


def processes_changed(before, after):
    """Reloads and worker restarts between two process() samples."""
    return {"reloads": after["reloads"] - before["reloads"], "master_replaced": before["master"] != after["master"],
            "workers_replaced": len(set(before["workers"]) - set(after["workers"]))}


class Nginx:
    """NGINX on the web host: its ban back end's management socket, processes and memory."""

    def __init__(self, host):
        self.host = host

    def manage(self, operation, jail=MANUAL_JAIL, body=None):
        argv = ["curl", "-sSf", "--unix-socket", SOCKET, "http://floodguard-ban/%s?jail=%s" % (operation, jail)]
        if body is not None:
            argv[1:1] = ["-X", "POST", "--data-binary", "@-"]
        return self.host.exec("web", argv, stdin=body, timeout=300).stdout.strip()

    def count(self, jail=MANUAL_JAIL):
        return int(self.manage("count", jail))

    def empty(self, jail=MANUAL_JAIL):
        """Flushes the jail in NGINX after host.reset(): fail2ban's action flushes it too when it starts, but that
        may come after the jail answers (reset.sh's check), and a poll before it would read the last run's bans."""
        self.manage("flush", jail, body="")
        held = self.count(jail)
        if held:
            raise RuntimeError("NGINX still holds %d bans of %s after a flush" % (held, jail))

    def process(self):
        master = self.host.exec("web", ["systemctl", "show", "-p", "MainPID", "--value", "nginx"]).stdout.strip()
        workers = self.host.exec("web", ["pgrep", "-P", master], check=False).stdout.split()
        journal = self.host.exec("web", ["journalctl", "-u", "nginx", "-o", "cat", "--no-pager"]).stdout
        return {"master": master, "workers": sorted(workers), "reloads": reload_count(journal)}

    def memory(self):
        return {"pss_kib": pss_kib(self.host.exec("web", ["sh", "-c", PSS]).stdout),
                "dict": dict_used_kib(self.manage("stats"))}

    def poller(self, wanted, cap_s):
        return subprocess.Popen(["docker", "exec", self.host.container("web"), "python3", "-c", POLL, SOCKET,
                                 MANUAL_JAIL, str(wanted), str(cap_s), str(SETTINGS["poll_s"])],
                                stdout=subprocess.PIPE, universal_newlines=True)


def restart_restore(nginx, size):
    """Seconds from `systemctl restart nginx` until NGINX holds `size` bans again (its state files)."""
    started = float(nginx.host.exec("web", ["sh", "-c", "date +%s.%N; systemctl restart nginx"]).stdout.split()[0])
    waited = json.loads(nginx.poller(size, SETTINGS["cap_s"]).communicate(timeout=SETTINGS["cap_s"] + 60)[0])
    run = {"of": size, "done": waited["done"], "count": waited["count"]}
    if waited["done"]:
        run["seconds"] = round(waited["epoch"] - started, 3)
    log("lb restart of NGINX with %d bans: %s" % (size, run))
    return run


def ban_addresses(size):
    return [str(address) for address in itertools.islice(BAN_NETWORK.hosts(), size)]


def timed_ban(host, nginx, size, logname):
    """One fail2ban_ban task of `size` addresses; from its start to the read that finds them all in NGINX."""
    waiter = nginx.poller(size, SETTINGS["cap_s"])
    outcome = {}

    def ban():
        outcome["rc"], outcome["output"] = host.playbook(
            os.path.join(HERE, "ban.yml"), {"bench_ban_jail": MANUAL_JAIL, "bench_ban_ips": ban_addresses(size)},
            logname, timeout=SETTINGS["cap_s"] + 60, json_output=True)

    thread = threading.Thread(target=ban)
    thread.start()
    try:
        waited = json.loads(waiter.communicate(timeout=SETTINGS["cap_s"] + 60)[0])
    except (subprocess.TimeoutExpired, ValueError):
        waiter.kill()
        waiter.communicate()
        waited = {"done": False, "count": None}
    thread.join()
    run = {"of": size, "done": False, "count": waited.get("count")}
    task = scale.ban_task(outcome.get("output", "")) if outcome.get("rc") is not None else None
    if task is None:
        run["problem"] = "no task report from ansible-playbook (rc %s), see %s.log" % (outcome.get("rc"), logname)
        return run
    start = scale.parse_iso(task["task"]["duration"]["start"])
    run["task_s"] = round(scale.parse_iso(task["task"]["duration"]["end"]) - start, 3)
    if waited["done"] and waited["epoch"] <= start:
        run["problem"] = "NGINX held %s bans before the task started (a previous run's)" % run.pop("count")
    elif waited["done"]:
        run.update(done=True, seconds=round(waited["epoch"] - start, 3), polls=waited["polls"])
    return run


def add_attack_sources(host, count):
    """`count` fresh addresses on the attacker (one per attack), from subnet address + attack_offset."""
    first = ipaddress.IPv4Network(SUBNET).network_address + SETTINGS["attack_offset"]
    sources = [str(first + index) for index in range(count)]
    container = host.container("attacker")
    iface = testbed.interface_of(container, ATTACKER)
    present = host.exec("attacker", ["ip", "-4", "-o", "addr", "show"]).stdout
    script = "".join("addr add %s/32 dev %s label %s:lb\n" % (source, iface, iface)
                     for source in sources if " %s/" % source not in present)
    if script:
        host.exec("attacker", ["ip", "-4", "-batch", "-"], stdin=script)
    return sources


def attack(host, source):
    """One flood from `source` through the LB: its latency and fail2ban's "Ban" in between."""
    options = SETTINGS["attack"]
    argv = ["http://%s/api/ping" % LB, "--source", source, "--requests", str(options["requests"]),
            "--duration", str(options["duration_s"]), "--concurrency", str(options["concurrency"]),
            "--timeout", str(options["timeout_s"])]
    started, report = host.floods("attacker", [argv])[0]
    summary = report["sources"][source]
    latency, problem = ban_latency(summary)
    run = {"source": source, "sent": summary["sent"], "statuses": summary["statuses"], "latency_s": latency,
           "first_reject_s": summary["first_reject_s"],
           "first_ban_answer_s": summary["first_status_s"].get(str(BAN_STATUS))}
    if problem:
        run["problem"] = problem
        return run
    ban_epoch = host.fail2ban_ban_epoch(source)
    if ban_epoch is not None:
        run["reject_to_fail2ban_ban_s"] = round(ban_epoch - (started + summary["first_reject_s"]), 3)
        run["fail2ban_ban_to_403_s"] = round(started + run["first_ban_answer_s"] - ban_epoch, 3)
    return run


def latency(host, args):
    runs = []
    for source in add_attack_sources(host, args.latency_runs):
        runs.append(attack(host, source))
        log("lb latency run %d: %s" % (len(runs), runs[-1]["latency_s"]))
        time.sleep(SETTINGS["attack"]["pause_s"])
    values = [item["latency_s"] for item in runs if item["latency_s"] is not None]
    return {"runs": runs, "summary": stats.summarize(values), "failed_runs": len(runs) - len(values),
            "reject_to_fail2ban_ban_s": stats.summarize([item.get("reject_to_fail2ban_ban_s") for item in runs]),
            "fail2ban_ban_to_403_s": stats.summarize([item.get("fail2ban_ban_to_403_s") for item in runs])}


def burst(host, nginx):
    host.reset()
    nginx.empty()
    before = nginx.process()
    run = timed_ban(host, nginx, SETTINGS["burst"], "lb-burst")
    after = nginx.process()
    run.update(processes_changed(before, after), before=before, after=after)
    log("lb burst of %d: %s" % (SETTINGS["burst"], run))
    return run


def ban_scale(host, nginx, args, results):
    quick = getattr(args, "quick", False)
    sizes = SETTINGS["quick_sizes"] if quick else SETTINGS["sizes"]
    repeats = SETTINGS["quick_repeats"] if quick else SETTINGS["repeats"]
    for size in sizes:
        entry = results.setdefault(str(size), {"ban": []})
        for _repeat in range(repeats):
            host.reset()
            nginx.empty()
            entry["ban"].append(timed_ban(host, nginx, size, "lb-ban-%d-%d" % (size, len(entry["ban"]) + 1)))
            log("lb ban N=%d #%d: %s" % (size, len(entry["ban"]), entry["ban"][-1]))
        entry["ban_summary"] = stats.summarize_runs(entry["ban"])
    return sizes[-1]


# The per-request client: a new connection per request, this many at a time, for args.perpacket_seconds.
REQUEST_CLIENT = {"concurrency": 4, "requests": 5000, "timeout_s": 5}


def request_rate(host, seconds):
    """Requests per second the client got served in one run straight to the web host (None: some failed)."""
    _started, flood = host.flood("client", [CLIENT], [
        "--requests", str(REQUEST_CLIENT["requests"]), "--duration", str(seconds),
        "--concurrency", str(REQUEST_CLIENT["concurrency"]), "--timeout", str(REQUEST_CLIENT["timeout_s"])])
    summary = flood["sources"][CLIENT]
    if summary["served"] < summary["sent"]:
        return None
    return round(summary["served"] / flood["elapsed_s"], 1)


def per_request(host, nginx, args, size):
    """NGINX's per-request cost of `size` bans, judged as the firewall's per-packet cost is (perpacket.py):
    args.perpacket_pairs interleaved pairs A (ban list flushed) B (`size` bans), the mean change with its 95 %
    interval, two-sided. Full HTTP requests: the ban lookup is in NGINX, after the kernel."""
    elements = "".join(element(address) + "\n" for address in ban_addresses(size))
    seconds = max(1.0, args.perpacket_seconds)
    host.wait_fail2ban_idle()
    host.freeze_fail2ban()
    baseline, banned = [], []
    try:
        held = nginx.count()
        for _pair in range(args.perpacket_pairs):
            nginx.manage("flush", body="")
            baseline.append(request_rate(host, seconds))
            nginx.manage("add", body=elements)
            banned.append(request_rate(host, seconds))
    finally:
        host.thaw_fail2ban()
    complete = [(before, after) for before, after in zip(baseline, banned) if before and after]
    change = stats.paired_change([before for before, _after in complete], [after for _before, after in complete])
    entry = {"bans": held, "pairs": len(complete), "pairs_left_out": len(banned) - len(complete),
             "baseline": baseline, "banned": banned, "baseline_rate": stats.summarize(baseline),
             "banned_rate": stats.summarize(banned), "change": change,
             "verdict": stats.verdict(change["ci95"], args.perpacket_within)}
    log("lb per-request N=%d: %s req/s with 0, %s with N: %s" % (
        held, entry["baseline_rate"]["median"], entry["banned_rate"]["median"], entry["verdict"]))
    return entry


def converge(host, extra, logname):
    log("converge lb and web (README's ALB variables%s)" % (", no request limits" if "nginx_ratelimit_limits"
                                                            in extra else ""))
    started = time.monotonic()
    rc, output = host.playbook(os.path.join(HERE, "lb.yml"), extra, logname, timeout=1800)
    if rc != 0:
        raise RuntimeError("converging lb and web failed; log: %s/%s.log (%s)" % (host.logs, logname, output[-500:]))
    # The per-action phases converge again after this (--reuse compares these markers).
    host.exec("web", ["tee", ACTION_MARKER], stdin="lb\n")
    host.exec("web", ["rm", "-f", CONVERGED_VARS_FILE])
    return round(time.monotonic() - started, 1)


def run(host, args):
    """Every measurement of this phase (see the module's docstring); the lb host is removed at the end."""
    results = {"converge_s": {}, "scale": {}}
    nginx = Nginx(host)
    host.add_host("lb", LB)
    try:
        results["converge_s"]["alb"] = converge(host, alb_vars(LB), "converge-lb")
        results["jail_action"] = host.jail_action(MANUAL_JAIL)
        host.reset()
        results["memory_0"] = nginx.memory()
        results["latency"] = latency(host, args)
        results["burst"] = burst(host, nginx)
        largest = ban_scale(host, nginx, args, results["scale"])
        results["memory_n"] = dict(nginx.memory(), bans=nginx.count())
        results["restart"] = restart_restore(nginx, largest)
        # The per-request client is not allowlisted (the lookup is what is measured), so the request limits
        # are lifted for it; the bans stay in NGINX's shared dict across the reload.
        results["converge_s"]["no_limits"] = converge(host, dict(alb_vars(LB), nginx_ratelimit_limits=[]),
                                                      "converge-lb-nolimits")
        results["per_request"] = per_request(host, nginx, args, largest)
        host.reset()
    finally:
        host.remove_host("lb")
    return results


def report_section(results):
    """The report's section of this phase (report.py SECTIONS)."""
    import report  # noqa: E402  (report.py imports this module for its SECTIONS)

    lb = results.get("lb")
    if not lb:
        return []
    settings = results["settings"]["phases"]["lb"]
    goal = results["goals"]["lb_latency_p95_s"]
    lines = ["## 6. Behind a load balancer: the NGINX ban back end", "",
             "The web host converged with `playbooks/site.yml` and the README's ALB variables only "
             "(`nginx_ratelimit_real_ip_enabled: true`, the LB trusted and allowlisted; the `%s` jail enforces "
             "with `%s`), behind %s at %s; the attacker sends through the LB." % (
                 results["settings"]["manual_jail"], lb.get("jail_action"), settings["lb_software"],
                 settings["lb"]), ""]
    latency_entry = lb.get("latency")
    if latency_entry:
        summary = latency_entry["summary"]
        lines += ["Attack-to-enforced-ban latency through the LB: from the moment the attacker receives its first "
                  "answer 429 (rejected by limit_req) to the moment it receives its first answer %d (refused by the "
                  "ban inside NGINX), one fresh attacker address per run, %d connections. Goal: p95 under %s s." % (
                      settings["ban_status"], settings["attack"]["concurrency"], goal), ""]
        lines += report.table(
            ["Runs", "p50", "p95", "min–max", "429 → fail2ban \"Ban\"", "\"Ban\" → first %d" % settings["ban_status"],
             "Goal"],
            [["%d%s" % (summary["n"], " (+%d failed)" % latency_entry["failed_runs"] if latency_entry["failed_runs"]
                        else ""), report.seconds(summary.get("p50")), report.seconds(summary.get("p95")),
              "%s–%s" % (report.seconds(summary.get("min")), report.seconds(summary.get("max"))),
              report.seconds(latency_entry["reject_to_fail2ban_ban_s"].get("median")),
              report.seconds(latency_entry["fail2ban_ban_to_403_s"].get("median")),
              report.goal_check(summary.get("p95"), goal)]])
    burst_entry = lb.get("burst")
    if burst_entry:
        lines += ["Burst of %s bans (one `fail2ban_ban` task): %s until NGINX held them all; NGINX reloads during "
                  "it: %d; master replaced: %s; workers replaced: %d of %d (PIDs before and after)." % (
                      report.count(burst_entry["of"]), report.seconds(burst_entry.get("seconds")),
                      burst_entry["reloads"], "yes" if burst_entry["master_replaced"] else "no",
                      burst_entry["workers_replaced"], len(burst_entry["before"]["workers"])), ""]
    if lb.get("scale"):
        lines += ["Time to ban N addresses of %s in NGINX: one `fail2ban_ban` task, from the task's start until a "
                  "read of NGINX's ban count over the management socket that returns N has finished." % (
                      results["settings"]["ban_network"]), ""]
        lines += report.table(["Bans", "Enforced in NGINX", "The task alone, per run"],
                              [[report.count(size), report.timed_cell(entry, "ban"),
                                ", ".join(report.seconds(item["task_s"]) for item in entry["ban"] if "task_s" in item)
                                or "–"] for size, entry in sorted(lb["scale"].items(), key=lambda item: int(item[0]))])
        problems = ["%s bans, run %d: %s" % (report.count(size), index + 1, item["problem"])
                    for size, entry in lb["scale"].items() for index, item in enumerate(entry["ban"])
                    if item.get("problem")]
        lines += ["- Not counted: " + problem + "." for problem in problems] + ([""] if problems else [])
    if lb.get("memory_n"):
        shared = lb["memory_n"]["dict"] or {}
        lines += ["NGINX's memory (PSS summed over its master and workers, smaps_rollup): %s KiB with 0 bans, "
                  "%s KiB with %s bans (%.1f → %.1f MiB); its ban dict then used %s of %s KiB." % (
                      report.count(lb["memory_0"]["pss_kib"]), report.count(lb["memory_n"]["pss_kib"]),
                      report.count(lb["memory_n"]["bans"]), lb["memory_0"]["pss_kib"] / 1024.0,
                      lb["memory_n"]["pss_kib"] / 1024.0, report.count(shared.get("used_kib", 0)),
                      report.count(shared.get("capacity_kib", 0))), ""]
    restart = lb.get("restart")
    if restart:
        lines += ["`systemctl restart nginx` with %s bans: %s from the command's start until a read of the ban count "
                  "returned them all again (loaded from the action's state file by `init_by_lua`)." % (
                      report.count(restart["of"]), report.seconds(restart["seconds"]) if restart["done"] else
                      "**not all back within %s s** (%s)" % (settings["cap_s"], restart["count"])), ""]
    entry = lb.get("per_request")
    if entry:
        ci = entry["change"].get("ci95") or {}
        lines += ["Per-request cost, judged as the firewall's per-packet cost (section 4: interleaved pairs, the mean "
                  "change with its 95 %% interval, two-sided), but with full HTTP requests straight to the web "
                  "host, since the ban lookup is in NGINX (the client is not allowlisted, so every request pays it; "
                  "request limits are lifted for this part): %s req/s with the ban list flushed, %s with %s bans; "
                  "change %+.1f%% [%+.1f%%, %+.1f%%] over %d pairs: **%s**." % (
                      report.spread(entry["baseline_rate"], report.rate),
                      report.spread(entry["banned_rate"], report.rate), report.count(entry["bans"]),
                      100 * ci.get("mean", 0), 100 * ci.get("low", 0), 100 * ci.get("high", 0), entry["pairs"],
                      entry["verdict"]), ""]
    return lines
