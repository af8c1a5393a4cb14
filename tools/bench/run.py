# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""`make bench`: measures the defence on local Debian test hosts and writes results.json, results.md, timeline.png.

Brings up its own testbed (tools/testbed.py: web, attacker, client on 172.29.50.0/24), converges the web
host (tools/bench/converge.yml: demo API + playbooks/site.yml), then per ban action (nftables, then
iptables-multiport, each a re-converge with -e fail2ban_banaction=...):

  latency      attack-to-ban: first rejected request -> first request whose packets are dropped
  timeline     (first action only) requests per second served/rejected/dropped around a ban, for the plot
  scale        N addresses of 198.18.0.0/15 banned by one fail2ban_ban task, until all are in the firewall;
               then `systemctl restart fail2ban` until all are back; memory at N
  perpacket    a legitimate (allowlisted) client's request rate and p99 latency with 0 and N bans

Every measurement is bounded in time (--cap): a run that does not finish records how far it got. The
testbed is removed at the end (--keep to keep it). Results: bench/results/<UTC timestamp>/.

  tools/bench.sh                          full run
  BENCH_QUICK=1 tools/bench.sh            quick: N = 1,000 and 10,000, fewer repeats
  tools/bench.sh --only latency,timeline  a subset
"""

import argparse
import datetime
import ipaddress
import itertools
import json
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.dirname(HERE))
import testbed  # noqa: E402  (tools/testbed.py)

TESTBED = "bench"
SUBNET = "172.29.50.0/24"
WEB, ATTACKER, CLIENT = "172.29.50.10", "172.29.50.20", "172.29.50.30"
ATTACKER_EXTRA = 60
URL = "http://%s/api/ping" % WEB
# Addresses banned for "scale": the benchmarking range (RFC 2544); they only ever become set elements.
BAN_NETWORK = ipaddress.IPv4Network("198.18.0.0/15")
MANUAL_JAIL = "manual"
ACTIONS = ("nftables", "iptables-multiport")
PHASES = ("latency", "timeline", "scale", "perpacket")
FLOOD_DIR = "/usr/local/lib/floodguard-bench"
PROBE = "/usr/local/bin/floodguard-bench-probe"
GOALS = {
    "latency_p95_s": 1.0,
    "ban_s": {10000: 10.0, 100000: 60.0},
    "restore_s": {10000: 10.0},
    "perpacket_within": 0.05,
}


def log(message):
    print("[bench %s] %s" % (datetime.datetime.now().strftime("%H:%M:%S"), message), flush=True)


class Bench:
    def __init__(self, args):
        self.args = args
        self.started = time.time()
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        self.out = os.path.join(REPO, "bench", "results", stamp)
        os.makedirs(os.path.join(self.out, "logs"), exist_ok=True)
        self.state = None
        self.attack_sources = []
        self.load_at_start = round(os.getloadavg()[0], 1)
        self.results = {
            "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "command": args.command_line,
            "settings": {
                "quick": args.quick, "only": list(args.only), "actions": list(args.actions),
                "sizes": args.sizes, "perpacket_sizes": args.perpacket_sizes, "scale_repeats": args.repeats,
                "scale_repeats_100000_and_more": args.large_repeats, "budget_s": args.budget,
                "latency_runs": args.latency_runs, "perpacket_repeats": args.perpacket_repeats,
                "cap_s": args.cap, "distro": args.distro,
            },
            "goals": {"latency_p95_s": GOALS["latency_p95_s"],
                      "ban_s": {str(k): v for k, v in GOALS["ban_s"].items()},
                      "restore_s": {str(k): v for k, v in GOALS["restore_s"].items()},
                      "perpacket_within": GOALS["perpacket_within"]},
            "converge_s": {}, "latency": {}, "timeline": None, "scale": {}, "perpacket": {}, "notes": [],
        }

    # ---- plumbing -------------------------------------------------------------------------------------

    def container(self, host):
        return testbed.container_name(TESTBED, host)

    def exec(self, host, argv, timeout=120, check=True, stdin=None):
        done = subprocess.run(["docker", "exec", "-i" if stdin is not None else "-t=false", self.container(host)]
                              + list(argv), input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True, timeout=timeout, check=False)
        if check and done.returncode != 0:
            raise RuntimeError("%s on %s failed (rc %d): %s" % (" ".join(argv[:4]), host, done.returncode,
                                                                (done.stderr or done.stdout).strip()[-2000:]))
        return done

    def probe(self, *argv, timeout=120):
        return json.loads(self.exec("web", ["python3", PROBE] + [str(item) for item in argv],
                                    timeout=timeout).stdout)

    def playbook(self, playbook, extra, logname, timeout, json_output=False):
        """Runs ansible-playbook on the testbed; returns (rc, stdout). Output also goes to logs/<logname>."""
        varsfile = os.path.join(self.out, "logs", logname + ".vars.json")
        with open(varsfile, "w") as handle:
            json.dump(extra, handle)
        env = dict(os.environ, ANSIBLE_FORCE_COLOR="false", ANSIBLE_NOCOLOR="1",
                   ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_DEPRECATION_WARNINGS="false")
        if json_output:
            env["ANSIBLE_STDOUT_CALLBACK"] = "ansible.posix.json"
        argv = ["ansible-playbook", "-i", self.inventory, playbook, "-e", "@" + varsfile]
        # Straight into the log file, so that a long converge can be followed (tail -f).
        logfile = os.path.join(self.out, "logs", logname + ".log")
        with open(logfile, "w") as handle:
            process = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, env=env,
                                       universal_newlines=True, start_new_session=True)
            try:
                returncode = process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                handle.write("\n[bench] killed after %s s\n" % timeout)
                returncode = None
        with open(logfile) as handle:
            return returncode, handle.read()

    # ---- testbed --------------------------------------------------------------------------------------

    def up(self):
        if self.args.reuse and os.path.exists(os.path.join(testbed.state_dir(TESTBED), "state.json")):
            log("reusing the testbed that is up")
            self.state = testbed.load_state(TESTBED)
            self.inventory = os.path.join(testbed.state_dir(TESTBED), "inventory.yml")
            self.attack_sources = list(self.state["hosts"]["attacker"]["extra_addresses"])
            used = set(self.exec("web", ["sh", "-c", "grep -ho 'Ban [0-9.]*' /var/log/fail2ban.log | cut -d' ' -f2"],
                                 check=False).stdout.split())
            self.attack_sources = [address for address in self.attack_sources if address not in used]
            self.copy_tools()
            return
        log("testbed up: web %s, attacker %s (+%d addresses), client %s" % (WEB, ATTACKER, ATTACKER_EXTRA, CLIENT))
        argv = ["up", "--name", TESTBED, "--distro", self.args.distro, "--subnet", SUBNET,
                "--host", "web:" + WEB, "--host", "attacker:" + ATTACKER, "--host", "client:" + CLIENT,
                "--extra-addresses", "attacker:%d" % ATTACKER_EXTRA, "--extra-start", "100"]
        if testbed.main(argv) != 0:
            raise RuntimeError("tools/testbed.py up failed (see above)")
        self.state = testbed.load_state(TESTBED)
        self.inventory = os.path.join(testbed.state_dir(TESTBED), "inventory.yml")
        self.attack_sources = list(self.state["hosts"]["attacker"]["extra_addresses"])
        self.copy_tools()

    def copy_tools(self):
        for host in ("attacker", "client"):
            self.exec(host, ["mkdir", "-p", FLOOD_DIR])
            subprocess.run(["docker", "cp", os.path.join(REPO, "tools", "flood.py"),
                            "%s:%s/flood.py" % (self.container(host), FLOOD_DIR)], check=True)
        subprocess.run(["docker", "cp", os.path.join(HERE, "probe.py"), "%s:%s" % (self.container("web"), PROBE)],
                       check=True)

    def down(self):
        if self.state is not None and not self.args.keep:
            log("testbed down")
            testbed.down(TESTBED, quiet=True)

    def converge(self, action):
        marker = "/etc/floodguard-bench-action"
        if self.args.reuse and self.exec("web", ["cat", marker], check=False).stdout.strip() == action:
            log("web is converged with %s already (--reuse)" % action)
            self.record_jail_action(action)
            self.reset(action)
            return
        log("converge web with fail2ban_banaction=%s" % action)
        started = time.monotonic()
        # The client is allowlisted in NGINX only, so that it can measure at full speed without a 429; not
        # in fail2ban, whose nftables action lets allowlisted addresses skip the ban sets (the per-packet
        # figure must pay for those lookups, as any user's packets do).
        extra = {"fail2ban_banaction": action, "nginx_ratelimit_allowlist": [CLIENT + "/32"]}
        rc, output = self.playbook(os.path.join(HERE, "converge.yml"), extra, "converge-" + action, timeout=1800)
        if rc != 0:
            print(output[-4000:], file=sys.stderr)
            raise RuntimeError("converging the web host failed; log: %s/logs/converge-%s.log" % (self.out, action))
        self.results["converge_s"][action] = round(time.monotonic() - started, 1)
        self.exec("web", ["sh", "-c", "echo %s > %s" % (action, marker)])
        self.record_jail_action(action)
        nft = backend(action) == "nftables"
        self.results.setdefault("machine", {})["nft" if nft else "iptables"] = self.first_line(
            ["nft", "--version"] if nft else ["iptables", "--version"])
        self.reset(action)

    def record_jail_action(self, action):
        """What fail2ban runs for the manual jail with this fail2ban_banaction (stock or floodguard action)."""
        done = self.exec("web", ["fail2ban-client", "get", MANUAL_JAIL, "actions"], check=False)
        self.results.setdefault("jail_actions", {})[action] = (done.stdout.strip().splitlines() or [""])[-1]

    def first_line(self, argv):
        done = self.exec("web", argv, check=False)
        text = (done.stdout or done.stderr).strip() if done.returncode == 0 else ""
        return text.splitlines()[0] if text else ""

    def versions(self):
        first_line = self.first_line
        meminfo = open("/proc/meminfo").read().split("\n")[0].split()
        os_release = dict(line.split("=", 1) for line in open("/etc/os-release").read().split("\n") if "=" in line)
        self.results.setdefault("machine", {}).update({
            "nproc": os.cpu_count(),
            "cpu": next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                         if line.startswith("model name")), platform.processor()),
            "memory_gib": round(int(meminfo[1]) / 1024 / 1024, 1),
            "kernel": platform.release(),
            "host_distro": os_release.get("PRETTY_NAME", "").strip('"'),
            "testbed_distro": first_line(["sh", "-c", ". /etc/os-release; echo $PRETTY_NAME"]),
            "fail2ban": first_line(["fail2ban-server", "--version"]),
            "nginx": first_line(["nginx", "-v"]),
            "python_on_web": first_line(["python3", "--version"]),
        })

    # ---- fail2ban state -------------------------------------------------------------------------------

    def reset(self, action):
        """Fresh fail2ban: no bans in its database or the firewall, every jail running."""
        script = r"""
set -u
systemctl kill --signal=SIGKILL fail2ban >/dev/null 2>&1
systemctl stop fail2ban >/dev/null 2>&1
systemctl reset-failed fail2ban >/dev/null 2>&1
rm -f /var/lib/fail2ban/fail2ban.sqlite3
for table in $(nft list tables 2>/dev/null | awk '$3 ~ /f2b|floodguard/ {print $2 "/" $3}'); do
  nft delete table "${table%%/*}" "${table#*/}"
done
if command -v iptables >/dev/null 2>&1; then
  for tool in iptables ip6tables; do
    $tool -S INPUT 2>/dev/null | grep -- '-j f2b-' | sed 's/^-A //' | while read -r rule; do
      $tool -D $rule
    done
    for chain in $($tool -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^f2b-/ {print $2}'); do
      $tool -F "$chain"; $tool -X "$chain"
    done
  done
fi
systemctl start fail2ban
for i in $(seq 1 100); do
  fail2ban-client status %s >/dev/null 2>&1 && exit 0
  sleep 0.2
done
echo "fail2ban did not come back within 20 s" >&2
exit 1
""" % MANUAL_JAIL
        self.exec("web", ["sh", "-c", script], timeout=120)

    def banned_in_firewall(self, action):
        return self.probe("count", backend(action), BAN_NETWORK)["count"]

    # ---- measurements ---------------------------------------------------------------------------------

    def flood(self, host, sources, extra_args, timeout=180):
        """Runs tools/flood.py on `host`; returns (epoch of its start, its JSON report)."""
        return self.floods(host, [([URL] + [item for source in sources for item in ("--source", source)]
                                   + extra_args)], timeout)[0]

    def floods(self, host, argvs, timeout=180):
        """Runs tools/flood.py once per argv, back to back in one process on `host`: [(start epoch, report)].

        Each epoch is taken right before flood.run() starts its clock, so that the report's times line up
        with fail2ban's log within a millisecond, and consecutive runs follow each other without a gap.
        """
        code = ("import json, sys, time; sys.path.insert(0, %r); import flood\n"
                "for argv in %r:\n"
                "    args = flood.parse_args(argv); started = time.time(); report = flood.run(args)\n"
                "    report['started_epoch'] = started; print(json.dumps(report))\n" % (FLOOD_DIR, argvs))
        done = self.exec(host, ["python3", "-c", code], timeout=timeout)
        reports = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
        return [(report["started_epoch"], report) for report in reports]

    def fail2ban_ban_epoch(self, address, jail="nginx-req-limit"):
        """Time of fail2ban's 'Ban <address>' notice (its log file), as an epoch; None if absent."""
        done = self.exec("web", ["grep", "-h", "] Ban %s" % address, "/var/log/fail2ban.log"], check=False)
        for line in done.stdout.splitlines():
            if "[%s]" % jail in line and line.rstrip().endswith(" Ban " + address):
                stamp = line[:23]
                moment = datetime.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f")
                return moment.timestamp()
        return None

    def latency(self, action):
        runs = []
        timeout = 1.0
        for index in range(self.args.latency_runs):
            source = self.attack_sources.pop(0)
            started, report = self.flood("attacker", [source], [
                "--requests", "3000", "--duration", "15", "--concurrency", "2", "--timeout", str(timeout),
                "--stop-after-drops", "2"])
            summary = report["sources"][source]
            run = {"source": source, "sent": summary["sent"], "served": summary["served"],
                   "rejected": summary["rejected"], "dropped": summary["dropped"]}
            if summary["first_reject_s"] is not None and summary["first_drop_s"] is not None:
                # When the earliest request that got no answer was sent: a connect that timed out, or a
                # connection opened just before the ban whose answer the firewall then dropped (that one is
                # recorded as failed only after its read timeout, and would hide the ban's moment).
                drop_sent = summary["first_unanswered_sent_s"]
                run["latency_s"] = round(drop_sent - summary["first_reject_s"], 3)
                ban_epoch = self.fail2ban_ban_epoch(source)
                if ban_epoch is not None:
                    run["reject_to_fail2ban_ban_s"] = round(ban_epoch - (started + summary["first_reject_s"]), 3)
                    run["fail2ban_ban_to_drop_s"] = round(started + drop_sent - ban_epoch, 3)
            else:
                run["latency_s"] = None
                run["problem"] = "no rejection" if summary["first_reject_s"] is None else "never dropped"
            runs.append(run)
            log("latency %s run %d: %s" % (action, index + 1, run.get("latency_s")))
            time.sleep(0.3)
        values = [run["latency_s"] for run in runs if run["latency_s"] is not None]
        self.results["latency"][action] = {
            "runs": runs, "summary": summarize(values),
            "failed_runs": len(runs) - len(values),
            "reject_to_fail2ban_ban_s": summarize([r["reject_to_fail2ban_ban_s"] for r in runs
                                                   if "reject_to_fail2ban_ban_s" in r]),
            "fail2ban_ban_to_drop_s": summarize([r["fail2ban_ban_to_drop_s"] for r in runs
                                                 if "fail2ban_ban_to_drop_s" in r]),
        }

    def timeline(self, action):
        """One attacker address: 6 s at 4 req/s (under the limit), then 8 s at 30 req/s; a client at 5 req/s."""
        source = self.attack_sources.pop(0)
        log("timeline (%s) from %s" % (action, source))
        timeout = 0.5
        client_result = {}

        def client():
            client_result["started"], client_result["report"] = self.flood("client", [CLIENT], [
                "--rate", "5", "--requests", "75", "--duration", "15", "--concurrency", "2", "--timeline"])

        thread = threading.Thread(target=client)
        thread.start()
        (calm_started, calm), (attack_started, attack) = self.floods("attacker", [
            [URL, "--source", source, "--rate", "4", "--requests", "24", "--duration", "6", "--concurrency", "2",
             "--timeout", str(timeout), "--timeline"],
            [URL, "--source", source, "--rate", "30", "--requests", "240", "--duration", "8", "--concurrency", "20",
             "--timeout", str(timeout), "--timeline"]])
        thread.join()
        origin = calm_started
        series = []
        for started, report in ((calm_started, calm), (attack_started, attack)):
            for bucket in report["sources"][source].get("timeline", []):
                series.append(dict(bucket, t=round(started - origin + bucket["t"], 2)))
        summary = attack["sources"][source]
        ban_epoch = self.fail2ban_ban_epoch(source)
        self.results["timeline"] = {
            "action": action, "source": source, "timeout_s": timeout,
            "attacker": series,
            "client": [dict(bucket, t=round(client_result["started"] - origin + bucket["t"], 2))
                       for bucket in client_result["report"]["sources"][CLIENT].get("timeline", [])],
            "first_reject_t": None if summary["first_reject_s"] is None else
            round(attack_started - origin + summary["first_reject_s"], 3),
            "first_drop_sent_t": None if summary["first_unanswered_sent_s"] is None else
            round(attack_started - origin + summary["first_unanswered_sent_s"], 3),
            "fail2ban_ban_t": None if ban_epoch is None else round(ban_epoch - origin, 3),
            "client_summary": {key: client_result["report"]["sources"][CLIENT][key]
                               for key in ("sent", "served", "rejected", "dropped", "latency_ms")},
        }

    def frozen_count(self, action):
        """Bans in the firewall, counted after freezing fail2ban (SIGSTOP) so that the count is stable."""
        self.exec("web", ["systemctl", "kill", "--signal=SIGSTOP", "fail2ban"], check=False)
        return self.banned_in_firewall(action)

    def ban_run(self, action, size):
        """Bans `size` addresses with one fail2ban_ban task; waits until the firewall holds them all."""
        addresses = [str(address) for address in itertools.islice(BAN_NETWORK.hosts(), size)]
        cap = self.args.cap
        waiter = subprocess.Popen(["docker", "exec", self.container("web"), "python3", PROBE, "wait",
                                   backend(action), str(BAN_NETWORK), str(size), str(cap)],
                                  stdout=subprocess.PIPE, universal_newlines=True)
        outcome = {}

        def ban():
            outcome["rc"], outcome["output"] = self.playbook(
                os.path.join(HERE, "ban.yml"), {"bench_ban_jail": MANUAL_JAIL, "bench_ban_ips": addresses},
                "ban-%s-%d" % (action, size), timeout=cap + 30, json_output=True)

        thread = threading.Thread(target=ban)
        thread.start()
        try:
            waited = json.loads(waiter.communicate(timeout=cap + 60)[0])
        except (subprocess.TimeoutExpired, ValueError):
            waiter.kill()
            waiter.communicate()
            waited = {"done": False}
        at_cap = None
        if not waited["done"]:
            # Count what the firewall holds at the cap: freeze fail2ban first (the ban task then ends at its
            # own timeout), so that the count is of that moment.
            at_cap = self.frozen_count(action)
        thread.join()
        rc, output = outcome.get("rc"), outcome.get("output", "")
        run = {"done": waited["done"], "of": size}
        task = None
        if rc is not None:
            try:
                task = json.loads(output[output.index("{"):])["plays"][0]["tasks"][0]
            except (ValueError, KeyError, IndexError):
                run["problem"] = "no task report from ansible-playbook (rc %s), see the log" % rc
        if task is not None:
            host_result = next(iter(task["hosts"].values()))
            start = parse_iso(task["task"]["duration"]["start"])
            run["task_s"] = round(parse_iso(task["task"]["duration"]["end"]) - start, 3)
            run["batches"] = host_result.get("batches")
            if host_result.get("failed"):
                run["problem"] = "fail2ban_ban failed: %s" % host_result.get("msg")
            elif waited["done"]:
                # From the task's start to the first poll that found every ban in the firewall.
                run["seconds"] = round(waited["epoch"] - start, 3)
                run["count"] = waited["count"]
        if "seconds" not in run:
            run["done"] = False
            run["cap_s"] = cap
            run["count"] = at_cap if at_cap is not None else self.frozen_count(action)
        return run

    def restore_run(self, action, size):
        """`systemctl restart fail2ban`; time until the firewall holds all `size` bans again."""
        cap = self.args.cap
        script = ("set -e; t0=$(date +%%s.%%N); systemctl restart fail2ban; t1=$(date +%%s.%%N); "
                  "echo \"$t0 $t1\"; exec python3 %s wait %s %s %d %d"
                  % (PROBE, backend(action), BAN_NETWORK, size, cap))
        done = self.exec("web", ["sh", "-c", script], timeout=cap + 300)
        first, _newline, rest = done.stdout.partition("\n")
        t0, t1 = first.split()
        waited = json.loads(rest)
        run = {"done": waited["done"], "of": size, "restart_command_s": round(float(t1) - float(t0), 3)}
        if waited["done"]:
            run["seconds"] = round(waited["epoch"] - float(t0), 3)
            run["count"] = waited["count"]
        else:
            run["cap_s"] = cap
            run["count"] = self.frozen_count(action)
        return run

    def memory(self):
        sample = self.probe("memory")
        zones = sample["nginx_zones"]
        return {"fail2ban_rss_mib": None if sample["fail2ban_rss_kb"] is None else
                round(sample["fail2ban_rss_kb"] / 1024, 1),
                "nginx_zone_resident_kib": zones[0]["resident_kb"] if zones else None,
                "nginx_zone_size_kib": zones[0]["size_kb"] if zones else None}

    def perpacket_run(self):
        """The allowlisted client, as fast as 4 connections go, for --perpacket-seconds."""
        _summary, report = self.flood("client", [CLIENT], [
            "--requests", "5000", "--duration", str(self.args.perpacket_seconds), "--concurrency", "4",
            "--timeout", "5"])
        summary = report["sources"][CLIENT]
        return {"rate": round(summary["served"] / report["elapsed_s"], 1), "served": summary["served"],
                "sent": summary["sent"], "p99_ms": summary["latency_ms"].get("p99"),
                "p50_ms": summary["latency_ms"].get("p50")}

    def fail2ban_cpu_s(self):
        """CPU seconds fail2ban-server has used (all its threads), from /proc/<pid>/stat; None if not running."""
        script = ('pid=$(systemctl show -p MainPID --value fail2ban); [ "$pid" -gt 0 ] && '
                  'cut -d" " -f14,15 /proc/$pid/stat && getconf CLK_TCK')
        done = self.exec("web", ["sh", "-c", script], check=False)
        words = done.stdout.split()
        if done.returncode != 0 or len(words) != 3:
            return None
        return (int(words[0]) + int(words[1])) / float(words[2])

    def wait_fail2ban_idle(self, limit_s=60):
        """Seconds until fail2ban uses under 5% of a CPU (after a ban or restore it still writes its database)."""
        started = time.monotonic()
        before = self.fail2ban_cpu_s()
        while before is not None and time.monotonic() - started < limit_s:
            time.sleep(1)
            after = self.fail2ban_cpu_s()
            if after is None or after - before < 0.05:
                break
            before = after
        return round(time.monotonic() - started, 1)

    def perpacket(self, action, size, note=None):
        # Only the firewall's cost is wanted, not fail2ban's CPU work that follows a ban or restore (database
        # rows, log lines): wait until fail2ban is idle, then freeze it while the client measures. Frozen,
        # it changes nothing; the kernel's sets and rules keep working.
        # With N bans, each run is paired with one right after it on the same sets or chains emptied down to
        # one ban (probe.py trim, then fill again): a baseline from the start of the bench, minutes away, drifts
        # more on a shared machine than the effect that is measured.
        idle_after = self.wait_fail2ban_idle()
        self.exec("web", ["systemctl", "kill", "--signal=SIGSTOP", "fail2ban"], check=False)
        runs, paired = [], []
        held = self.banned_in_firewall(action)
        try:
            for _repeat in range(self.args.perpacket_repeats):
                runs.append(self.perpacket_run())
                if size:
                    self.probe("trim", backend(action), BAN_NETWORK, 1, timeout=600)
                    paired.append(self.perpacket_run())
                    self.probe("fill", backend(action), BAN_NETWORK, held, timeout=600)
        finally:
            self.exec("web", ["systemctl", "kill", "--signal=SIGCONT", "fail2ban"], check=False)
        held = self.banned_in_firewall(action)
        entry = {"runs": runs, "banned_in_firewall": held, "fail2ban_idle_after_s": idle_after,
                 "rate": summarize([run["rate"] for run in runs]),
                 "p99_ms": summarize([run["p99_ms"] for run in runs if run["p99_ms"] is not None])}
        if paired:
            entry["paired_baseline"] = {"runs": paired, "rate": summarize([run["rate"] for run in paired]),
                                        "p99_ms": summarize([run["p99_ms"] for run in paired if run["p99_ms"] is not None])}
            # Per pair: the rate with N bans relative to the rate with one, right after it.
            entry["paired_change"] = summarize([round(run["rate"] / base["rate"] - 1, 4)
                                                for run, base in zip(runs, paired) if base["rate"]])
        if note:
            entry["note"] = note
        self.results["perpacket"].setdefault(action, {})[str(size)] = entry
        log("perpacket %s N=%d: %s req/s, p99 %s ms" % (action, size, entry["rate"]["median"],
                                                        entry["p99_ms"]["median"]))

    def scale(self, action, phases):
        """Per size: repeats of (reset, ban, memory, restart + restore, memory); per-packet at the sizes asked."""
        results = self.results["scale"].setdefault(action, {})
        if "perpacket" in phases:
            self.reset(action)
            self.perpacket(action, 0)
        given_up = None
        for size in self.args.sizes:
            entry = results.setdefault(str(size), {"ban": [], "restore": [], "memory": []})
            if given_up is not None:
                entry["skipped"] = "not run: %d bans did not finish within %d s" % (given_up, self.args.cap)
            repeats = self.args.large_repeats if size >= 100000 else self.args.repeats
            for repeat in range(repeats if given_up is None else 0):
                if self.over_budget():
                    entry["cut"] = "%d of %d runs: the bench's time budget (--budget %d s) ran out" % (
                        repeat, repeats, self.args.budget)
                    break
                self.reset(action)
                ban = self.ban_run(action, size)
                entry["ban"].append(ban)
                log("ban %s N=%d #%d: %s" % (action, size, repeat + 1, describe(ban)))
                entry["memory"].append(dict(self.memory(), after="ban"))
                if not ban["done"]:
                    given_up = size
                    entry["restore"].append({"done": False, "skipped": "the bans did not finish"})
                    break
                if "restore" in self.args.skip:
                    continue
                restore = self.restore_run(action, size)
                entry["restore"].append(restore)
                log("restore %s N=%d #%d: %s" % (action, size, repeat + 1, describe(restore)))
                entry["memory"].append(dict(self.memory(), after="restore"))
                if not restore["done"]:
                    break
            entry["ban_summary"] = summarize_runs(entry["ban"])
            entry["restore_summary"] = summarize_runs(entry["restore"])
            if "perpacket" in phases and size in self.args.perpacket_sizes:
                self.perpacket_at(action, size)
        if "perpacket" in phases:
            for size in self.args.perpacket_sizes:
                if str(size) not in self.results["perpacket"].get(action, {}):
                    self.reset(action)
                    self.perpacket_at(action, size)
        self.reset(action)

    def over_budget(self):
        over = time.time() - self.started > self.args.budget
        if over and not self.results.get("over_budget"):
            self.results["over_budget"] = True
            self.results["notes"].append("the time budget of %d s ran out: later repeats were skipped (see the "
                                         "run counts)" % self.args.budget)
        return over

    def perpacket_at(self, action, size):
        """Per-packet cost with `size` bans: those fail2ban holds, topped up directly if it fell short."""
        held = self.banned_in_firewall(action)
        note = None
        if held < size:
            # fail2ban could not get there within the cap: freeze it (SIGSTOP, so that it adds nothing more;
            # killed, systemd would restart it and its action would flush the set) and load the rest straight
            # into the firewall in the very shape its action uses.
            freeze = ["systemctl", "kill", "--signal=SIGSTOP", "fail2ban"]
            self.exec("web", freeze, check=False)
            if held == 0:
                self.reset(action)
                # One ban through fail2ban gives the set or chain (and its rule) to copy.
                self.exec("web", ["fail2ban-client", "set", MANUAL_JAIL, "banip", str(next(BAN_NETWORK.hosts()))])
                self.exec("web", freeze, check=False)
            filled = self.probe("fill", backend(action), BAN_NETWORK, size, timeout=600)
            note = ("fail2ban did not get to %s bans within the cap, so %s of them were loaded straight into the "
                    "firewall (%.1f s), in the very set or rule shape its action creates"
                    % (format(size, ","), format(filled["added"], ","), filled["seconds"]))
        self.perpacket(action, size, note)

    # ---- the whole run --------------------------------------------------------------------------------

    def run(self):
        phases = self.args.only
        self.up()
        for index, action in enumerate(self.args.actions):
            self.converge(action)
            if index == 0:
                self.versions()
            self.results.setdefault("memory_idle", {})[action] = self.memory()
            if "latency" in phases:
                self.latency(action)
            if "timeline" in phases and self.results["timeline"] is None:
                self.timeline(action)
            if "scale" in phases or "perpacket" in phases:
                if "scale" not in phases:
                    self.args.repeats = 1
                self.scale(action, phases)
            self.save()

    def save(self):
        self.results["wall_s"] = round(time.time() - self.started, 1)
        # How busy the machine was (other work skews every figure): 1-minute load average, start and end.
        self.results.setdefault("load_average", {}).setdefault("start", self.load_at_start)
        self.results["load_average"]["end"] = round(os.getloadavg()[0], 1)
        with open(os.path.join(self.out, "results.json"), "w") as handle:
            json.dump(self.results, handle, indent=2)
        import report  # tools/bench/report.py
        with open(os.path.join(self.out, "results.md"), "w") as handle:
            handle.write(report.markdown(self.results))
        if self.results.get("timeline"):
            report.plot(self.results["timeline"], os.path.join(self.out, "timeline.png"))


def backend(action):
    """The firewall a fail2ban_banaction value writes to (what probe.py reads)."""
    return "iptables-multiport" if action.startswith("iptables") else "nftables"


# ---- statistics -------------------------------------------------------------------------------------

def parse_iso(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def percentile(values, pct):
    ordered = sorted(values)
    return ordered[max(1, math.ceil(pct / 100.0 * len(ordered))) - 1]


def summarize(values):
    values = [value for value in values if value is not None]
    if not values:
        return {"n": 0, "median": None, "min": None, "max": None, "p95": None}
    return {"n": len(values), "median": round(statistics.median(values), 3), "min": min(values),
            "max": max(values), "p50": percentile(values, 50), "p95": percentile(values, 95)}


def summarize_runs(runs):
    finished = [run["seconds"] for run in runs if run.get("done")]
    unfinished = [run for run in runs if not run.get("done") and "count" in run]
    summary = summarize(finished)
    summary["runs"] = len(runs)
    summary["unfinished"] = [{"count": run["count"], "of": run["of"], "cap_s": run.get("cap_s")} for run in unfinished]
    return summary


def describe(run):
    if run.get("done"):
        return "%d in %.2f s" % (run["of"], run["seconds"])
    return "not finished (%s of %s)" % (run.get("count"), run.get("of"))


def parse_args(argv):
    quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0],
                                     epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(PHASES),
                        help="comma-separated phases: %s (default: all)" % ",".join(PHASES))
    parser.add_argument("--actions", default=",".join(ACTIONS), help="fail2ban_banaction values to compare, in order (default: %(default)s)")
    parser.add_argument("--sizes", default="1000,10000" if quick else "1000,10000,100000",
                        help="ban counts for scale (default: %(default)s)")
    parser.add_argument("--perpacket-sizes", default="10000" if quick else "10000,100000",
                        help="ban counts for the per-packet cost, besides 0 (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=1 if quick else 3, help="runs per scale size")
    parser.add_argument("--latency-runs", type=int, default=5 if quick else 20, help="attacks per action")
    parser.add_argument("--perpacket-repeats", type=int, default=2 if quick else 5)
    parser.add_argument("--perpacket-seconds", type=float, default=3.0 if quick else 5.0)
    parser.add_argument("--large-repeats", type=int, default=1 if quick else 2, help="runs per scale size >= 100,000")
    parser.add_argument("--cap", type=int, default=90, help="seconds a ban or restore run may take (default 90)")
    parser.add_argument("--budget", type=int, default=2700,
                        help="seconds for the whole bench; scale repeats past it are skipped (default 2700)")
    parser.add_argument("--skip", default="", help="comma-separated: restore")
    parser.add_argument("--distro", default="bookworm", choices=testbed.DISTROS)
    parser.add_argument("--keep", action="store_true", help="leave the testbed up at the end")
    parser.add_argument("--reuse", action="store_true",
                        help="development: use the testbed left by --keep, skip converges it already has")
    parser.add_argument("--docs", choices=("auto", "yes", "no"), default="auto",
                        help="update docs/benchmarks.md: auto = after a complete full run (default)")
    args = parser.parse_args(argv)
    args.quick = quick
    args.only = [item for item in args.only.split(",") if item]
    unknown = set(args.only) - set(PHASES)
    if unknown:
        parser.error("unknown phase(s) %s: choose from %s" % (", ".join(sorted(unknown)), ", ".join(PHASES)))
    args.actions = [item for item in args.actions.split(",") if item]
    if not args.actions:
        parser.error("--actions: give at least one fail2ban_banaction value, e.g. %s" % ",".join(ACTIONS))
    args.sizes = [int(item) for item in args.sizes.split(",") if item]
    args.perpacket_sizes = [int(item) for item in args.perpacket_sizes.split(",") if item]
    args.skip = [item for item in args.skip.split(",") if item]
    if args.latency_runs * len(args.actions) + 1 > ATTACKER_EXTRA:
        parser.error("--latency-runs: at most %d per action (one attacker address each)"
                     % ((ATTACKER_EXTRA - 1) // len(args.actions)))
    full = all(item.startswith("--docs") for item in argv)
    args.docs = args.docs == "yes" or (args.docs == "auto" and full and not quick)
    args.command_line = " ".join(["make bench"] + (["(BENCH_QUICK=1)"] if quick else []) + argv)
    return args


def publish(bench):
    """The latest complete full run becomes docs/benchmarks.md (and its plot docs/benchmarks-timeline.png)."""
    docs = os.path.join(REPO, "docs")
    os.makedirs(docs, exist_ok=True)
    bench.results["docs"] = True
    bench.save()
    shutil.copyfile(os.path.join(bench.out, "results.md"), os.path.join(docs, "benchmarks.md"))
    if os.path.exists(os.path.join(bench.out, "timeline.png")):
        shutil.copyfile(os.path.join(bench.out, "timeline.png"), os.path.join(docs, "benchmarks-timeline.png"))
    log("updated docs/benchmarks.md")


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    sys.path.insert(0, HERE)
    bench = Bench(args)
    log("results in %s" % bench.out)

    def interrupted(signum, _frame):
        raise KeyboardInterrupt("signal %d" % signum)

    signal.signal(signal.SIGTERM, interrupted)
    failed = False
    try:
        bench.run()
    except (Exception, KeyboardInterrupt) as exc:  # keep what was measured, then clean up
        failed = True
        bench.results["notes"].append("run aborted: %s: %s" % (type(exc).__name__, exc))
        log("ABORTED: %s: %s" % (type(exc).__name__, exc))
    finally:
        try:
            bench.save()
        finally:
            bench.down()
    if not failed and args.docs:
        publish(bench)
    latest = os.path.join(REPO, "bench", "results", "latest")
    if os.path.islink(latest) or not os.path.exists(latest):
        if os.path.islink(latest):
            os.remove(latest)
        os.symlink(os.path.basename(bench.out), latest)
    log("done in %.0f s: %s" % (time.time() - bench.started, os.path.join(bench.out, "results.md")))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
