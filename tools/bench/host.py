# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The benchmark's testbed (tools/testbed.py) as the phases use it: commands, floods, playbooks, fail2ban state.

One Host per run. Its `action` is the system of settings.SYSTEMS the web host is set up as (converge()):
floodguard or fail2ban converged with a fail2ban_banaction (fail2ban's stock nftables actions through a
jail.d override), or CrowdSec installed on top (crowdsec.sh; fail2ban stopped).
"""

import datetime
import json
import os
import re
import signal
import subprocess
import sys
import time

import settings

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.dirname(HERE))
import testbed  # noqa: E402  (tools/testbed.py)

FLOOD_DIR = "/usr/local/lib/floodguard-bench"
PROBE = "/usr/local/bin/floodguard-bench-probe"
# Which system the web host was last set up as (for --reuse), and the variables of its last converge (JSON).
ACTION_MARKER = "/etc/floodguard-bench-action"
CONVERGED_VARS_FILE = "/etc/floodguard-bench-converged-vars.json"
# fail2ban's stock nftables actions instead of floodguard_nftables.py (system "fail2ban-nftables").
STOCK_OVERRIDE = "/etc/fail2ban/jail.d/zz-floodguard-bench-stock.local"
# System "floodguard-f2b-waits": floodguard with fail2ban's own sleep step (sleepinterval=0), for comparison.
WAITS_OVERRIDE = "/etc/fail2ban/jail.d/zz-floodguard-bench-waits.local"
CROWDSEC_UNITS = ("crowdsec", "crowdsec-firewall-bouncer")
FLOOD = os.path.join(REPO, "tools", "flood.py")
# Runs tools/flood.py once per argv (JSON list in argv[1]) back to back in one process; each report
# carries the epoch taken right before flood.run() starts its clock, so that its times line up with
# fail2ban's log within a millisecond, and consecutive runs follow each other without a gap.
FLOODS = """import json, sys, time
sys.path.insert(0, %r)
import flood
for argv in json.loads(sys.argv[1]):
    args = flood.parse_args(argv)
    started = time.time()
    report = flood.run(args)
    report["started_epoch"] = started
    print(json.dumps(report))
""" % FLOOD_DIR


def log(message):
    print("[bench %s] %s" % (datetime.datetime.now().strftime("%H:%M:%S"), message), flush=True)


class Host:
    """The testbed's three hosts (web, attacker, client), reached through `docker exec`."""

    def __init__(self, logs):
        self.logs = logs
        self.action = None
        self.state = None
        self.inventory = os.path.join(testbed.state_dir(settings.TESTBED), "inventory.yml")

    @property
    def spec(self):
        return settings.SYSTEMS[self.action]

    @property
    def backend(self):
        return self.spec["backend"]

    @property
    def kind(self):
        return self.spec["kind"]

    @property
    def units(self):
        """The systemd units that ban (what a restart restarts, a freeze stops, memory sums)."""
        return CROWDSEC_UNITS if self.kind == "crowdsec" else ("fail2ban",)

    # ---- testbed ---------------------------------------------------------------------------------------

    def up(self, distro, reuse):
        """Brings the testbed up (or takes the one left by --keep); returns the unused attacker addresses."""
        if reuse and os.path.exists(os.path.join(testbed.state_dir(settings.TESTBED), "state.json")):
            log("reusing the testbed that is up")
            self.state = testbed.load_state(settings.TESTBED)
            self.copy_tools()
            banned = set(self.fail2ban_log_bans())
            return [address for address in self.attack_sources() if address not in banned]
        log("testbed up: web %s, attacker %s (+%d addresses), client %s"
            % (settings.WEB, settings.ATTACKER, settings.ATTACKER_EXTRA, settings.CLIENT))
        argv = ["up", "--name", settings.TESTBED, "--distro", distro, "--subnet", settings.SUBNET,
                "--host", "web:" + settings.WEB, "--host", "attacker:" + settings.ATTACKER,
                "--host", "client:" + settings.CLIENT,
                "--extra-addresses", "attacker:%d" % settings.ATTACKER_EXTRA, "--extra-start", "100"]
        if testbed.main(argv) != 0:
            raise RuntimeError("tools/testbed.py up failed (see above)")
        self.state = testbed.load_state(settings.TESTBED)
        self.copy_tools()
        return self.attack_sources()

    def add_host(self, name, address):
        """A host of one phase's own (tools/testbed.py add_host) on the testbed's network; reused if it is up."""
        if name not in self.state["hosts"]:
            log("testbed: add %s %s" % (name, address))
            self.state = testbed.add_host(settings.TESTBED, name, address)

    def remove_host(self, name):
        if name in self.state["hosts"]:
            self.state = testbed.remove_host(settings.TESTBED, name)

    def attack_sources(self):
        return list(self.state["hosts"]["attacker"]["extra_addresses"])

    def down(self):
        log("testbed down")
        testbed.down(settings.TESTBED, quiet=True)

    def container(self, host):
        return testbed.container_name(settings.TESTBED, host)

    def copy(self, source, host, destination):
        subprocess.run(["docker", "cp", source, "%s:%s" % (self.container(host), destination)], check=True)

    def copy_tools(self):
        for host in ("attacker", "client"):
            self.exec(host, ["mkdir", "-p", FLOOD_DIR])
            self.copy(FLOOD, host, FLOOD_DIR + "/flood.py")
        self.copy(os.path.join(HERE, "probe.py"), "web", PROBE)

    # ---- commands --------------------------------------------------------------------------------------

    def exec(self, host, argv, timeout=120, check=True, stdin=None):
        """`docker exec` of an argv list on a host; RuntimeError naming the command when it fails."""
        done = subprocess.run(["docker", "exec", "-i" if stdin is not None else "-t=false", self.container(host)]
                              + [str(item) for item in argv], input=stdin, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, universal_newlines=True, timeout=timeout, check=False)
        if check and done.returncode != 0:
            raise RuntimeError("%s on %s failed (rc %d): %s" % (" ".join(str(item) for item in argv[:4]), host,
                                                                done.returncode,
                                                                (done.stderr or done.stdout).strip()[-2000:]))
        return done

    def first_line(self, argv):
        """The first line a command prints on the web host ('' when it fails)."""
        done = self.exec("web", argv, check=False)
        text = (done.stdout or done.stderr).strip() if done.returncode == 0 else ""
        return text.splitlines()[0] if text else ""

    def probe(self, *argv, timeout=120):
        """tools/bench/probe.py on the web host; its JSON answer."""
        return json.loads(self.exec("web", ["python3", PROBE, *argv], timeout=timeout).stdout)

    def probe_process(self, *argv):
        """probe.py on the web host, started in the background (the caller reads its JSON from stdout)."""
        return subprocess.Popen(["docker", "exec", self.container("web"), "python3", PROBE]
                                + [str(item) for item in argv], stdout=subprocess.PIPE, universal_newlines=True)

    @staticmethod
    def waited(process, timeout):
        """The JSON a probe_process() printed; {"done": False} when it did not answer within `timeout` s."""
        try:
            return json.loads(process.communicate(timeout=timeout)[0])
        except (subprocess.TimeoutExpired, ValueError):
            process.kill()
            process.communicate()
            return {"done": False}

    def playbook(self, playbook, extra, logname, timeout, json_output=False, inventory=None, forks=None):
        """ansible-playbook on the testbed with extra vars; (rc or None if killed at timeout, output).

        The output goes straight to logs/<logname>.log, so that a long converge can be followed (tail -f).
        inventory: another inventory file than the testbed's; forks: hosts handled at once.
        """
        varsfile = os.path.join(self.logs, logname + ".vars.json")
        with open(varsfile, "w") as handle:
            json.dump(extra, handle)
        env = dict(os.environ, ANSIBLE_FORCE_COLOR="false", ANSIBLE_NOCOLOR="1",
                   ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_DEPRECATION_WARNINGS="false")
        if json_output:
            env["ANSIBLE_STDOUT_CALLBACK"] = "ansible.posix.json"
        if forks:
            env["ANSIBLE_FORKS"] = str(forks)
        argv = ["ansible-playbook", "-i", inventory or self.inventory, playbook, "-e", "@" + varsfile]
        logfile = os.path.join(self.logs, logname + ".log")
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

    # ---- floods ----------------------------------------------------------------------------------------

    def flood(self, host, sources, options, timeout=180):
        """tools/flood.py on `host` against the API from `sources`; (epoch of its start, its JSON report)."""
        argv = [settings.URL] + [item for source in sources for item in ("--source", source)] + options
        return self.floods(host, [argv], timeout)[0]

    def floods(self, host, argvs, timeout=180):
        """tools/flood.py once per argv, back to back in one process on `host`: [(start epoch, report)]."""
        done = self.exec(host, ["python3", "-c", FLOODS, json.dumps(argvs)], timeout=timeout)
        reports = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
        return [(report["started_epoch"], report) for report in reports]

    # ---- the web host's defence -------------------------------------------------------------------------

    def converge(self, action, reuse, allowlist):
        """Sets the web host up as system `action`; seconds it took (None: reused)."""
        self.action = action
        if reuse and self.exec("web", ["cat", ACTION_MARKER], check=False).stdout.strip() == action:
            log("web is set up as %s already (--reuse)" % action)
            return None
        started = time.monotonic()
        if self.kind == "crowdsec":
            self.setup_crowdsec(allowlist)
        else:
            self.converge_fail2ban(allowlist)
        self.exec("web", ["tee", ACTION_MARKER], stdin=action + "\n")
        return round(time.monotonic() - started, 1)

    def converged_vars(self):
        """The variables of the web host's last converge (CONVERGED_VARS_FILE), or None."""
        text = self.exec("web", ["cat", CONVERGED_VARS_FILE], check=False).stdout
        try:
            return json.loads(text)
        except ValueError:
            return None

    def ensure_converged(self, wanted, allowlist, logname):
        """Runs converge.yml unless the last converge had exactly these variables (the system's, `wanted`:
        fail2ban_banaction None keeps the one the host has); the variables the host has now."""
        current = self.converged_vars() or {}
        wanted = dict(wanted, nginx_ratelimit_allowlist=list(allowlist))
        if wanted.get("fail2ban_banaction") is None:
            wanted["fail2ban_banaction"] = current.get("fail2ban_banaction", "nftables")
        if current == wanted:
            return current
        shown = {key: value for key, value in wanted.items() if key != "nginx_ratelimit_allowlist"}
        log("converge web with %s" % json.dumps(shown))
        rc, output = self.playbook(os.path.join(HERE, "converge.yml"), wanted, logname, timeout=1800)
        if rc != 0:
            print(output[-4000:], file=sys.stderr)
            raise RuntimeError("converging the web host failed; log: %s/%s.log" % (self.logs, logname))
        self.exec("web", ["tee", CONVERGED_VARS_FILE], stdin=json.dumps(wanted, sort_keys=True) + "\n")
        return wanted

    def converge_fail2ban(self, allowlist, variant=None, logname=None):
        """Converges with the system's fail2ban_banaction and variables (settings.SYSTEMS "vars"), `variant`
        on top (skipped when the last converge had them all), then puts fail2ban's stock nftables actions in
        place or takes them away, and restarts fail2ban."""
        self.exec("web", ["sh", "-c", "systemctl disable --now %s >/dev/null 2>&1; nft delete table ip crowdsec "
                          "2>/dev/null; nft delete table ip6 crowdsec6 2>/dev/null; rm -f %s; true"
                          % (" ".join(CROWDSEC_UNITS), " ".join((STOCK_OVERRIDE, WAITS_OVERRIDE)))])
        wanted = dict(self.spec.get("vars", {}), fail2ban_banaction=self.spec["banaction"], **(variant or {}))
        self.ensure_converged(wanted, allowlist, logname or "converge-" + self.action)
        current = self.exec("web", ["cat", "/etc/fail2ban/jail.d/floodguard-banactions.local"]).stdout
        if self.spec.get("stock"):
            log("fail2ban's stock nftables actions replace floodguard_nftables.py (%s)" % STOCK_OVERRIDE)
            self.exec("web", ["tee", STOCK_OVERRIDE], stdin=stock_actions(current))
        if self.spec.get("sleep_interval") is not None:
            log("fail2ban's sleep step of the actions: %s s (%s)" % (self.spec["sleep_interval"], WAITS_OVERRIDE))
            self.exec("web", ["tee", WAITS_OVERRIDE], stdin=sleep_interval_actions(current, self.spec["sleep_interval"]))
        self.exec("web", ["systemctl", "enable", "fail2ban"], check=False)
        self.exec("web", ["systemctl", "restart", "fail2ban"])

    def setup_crowdsec(self, allowlist):
        """NGINX converged with the system's variables (any fail2ban_banaction: fail2ban is stopped), then
        CrowdSec installed and configured on top (crowdsec.sh)."""
        self.ensure_converged(dict(self.spec.get("vars", {}), fail2ban_banaction=None), allowlist,
                              "converge-" + self.action)
        log("CrowdSec from Debian's packages, offline, bouncer polling every %s s" % self.spec["poll_s"])
        with open(os.path.join(HERE, "crowdsec.sh")) as handle:
            self.exec("web", ["sh", "-s", "setup", self.spec["poll_s"], settings.WEB]
                      + [item.split("/")[0] for item in allowlist], stdin=handle.read(), timeout=600)

    def jail_action(self, jail):
        """What fail2ban runs for `jail` (the stock action or floodguard's)."""
        done = self.exec("web", ["fail2ban-client", "get", jail, "actions"], check=False)
        return (done.stdout.strip().splitlines() or [""])[-1]

    def reset(self):
        """Fresh fail2ban (reset.sh: no bans in its database or the firewall, every jail running) or
        CrowdSec (crowdsec.sh reset: no decisions, the bouncer's set empty)."""
        if self.kind == "crowdsec":
            with open(os.path.join(HERE, "crowdsec.sh")) as handle:
                self.exec("web", ["sh", "-s", "reset"], stdin=handle.read(), timeout=120)
            return
        with open(os.path.join(HERE, "reset.sh")) as handle:
            self.exec("web", ["sh", "-s", settings.MANUAL_JAIL], stdin=handle.read(), timeout=120)

    def banned_in_firewall(self):
        return self.probe("count", self.backend, settings.BAN_NETWORK)["count"]

    def freeze_fail2ban(self):
        """SIGSTOP: the ban daemons change nothing more (killed, systemd would restart them and flush sets)."""
        self.exec("web", ["systemctl", "kill", "--signal=SIGSTOP", *self.units], check=False)

    def thaw_fail2ban(self):
        self.exec("web", ["systemctl", "kill", "--signal=SIGCONT", *self.units], check=False)

    def frozen_count(self):
        """Bans in the firewall, counted after freezing fail2ban so that the count is stable."""
        self.freeze_fail2ban()
        return self.banned_in_firewall()

    def fail2ban_log_bans(self):
        """Addresses fail2ban's log says it banned (any jail)."""
        done = self.exec("web", ["grep", "-ho", "Ban [0-9.]*", "/var/log/fail2ban.log"], check=False)
        return [line.split()[1] for line in done.stdout.splitlines() if len(line.split()) == 2]

    def fail2ban_ban_epoch(self, address, jail=settings.ATTACK_JAIL):
        """Time of fail2ban's 'Ban <address>' notice (its log file), as an epoch; None if absent (and for
        CrowdSec, whose log has whole seconds only)."""
        if self.kind != "fail2ban":
            return None
        done = self.exec("web", ["grep", "-h", "] Ban %s" % address, "/var/log/fail2ban.log"], check=False)
        for line in done.stdout.splitlines():
            if "[%s]" % jail in line and line.rstrip().endswith(" Ban " + address):
                return datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
        return None

    def fail2ban_cpu_s(self):
        """CPU seconds the ban daemon (fail2ban-server, crowdsec) has used (all its threads); None if not running."""
        pid = self.exec("web", ["systemctl", "show", "-p", "MainPID", "--value", self.units[0]], check=False).stdout
        if not pid.strip().isdigit() or int(pid) == 0:
            return None
        done = self.exec("web", ["cat", "/proc/%d/stat" % int(pid)], check=False)
        ticks = self.exec("web", ["getconf", "CLK_TCK"], check=False).stdout.strip()
        fields = done.stdout.rsplit(")", 1)[-1].split()
        if done.returncode != 0 or len(fields) < 13 or not ticks.isdigit():
            return None
        # utime and stime: fields 14 and 15 of /proc/<pid>/stat, 12 and 13 after the command name.
        return (int(fields[11]) + int(fields[12])) / float(ticks)

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

    def memory(self):
        """Resident memory of the ban daemons (their sum and each) and NGINX's largest shared zone."""
        sample = self.probe("memory", *self.units)
        zones = sample["nginx_zones"]
        units = {unit: None if kb is None else round(kb / 1024, 1) for unit, kb in sample["rss_kb"].items()}
        return {"rss_mib": None if None in units.values() else round(sum(units.values()), 1), "rss_units_mib": units,
                "nginx_zone_resident_kib": zones[0]["resident_kb"] if zones else None,
                "nginx_zone_size_kib": zones[0]["size_kb"] if zones else None}


def stock_actions(banactions):
    """floodguard-banactions.local with each floodguard_nftables.py action replaced by fail2ban's stock one
    (nftables-multiport, or nftables-allports for all ports), for the jail.d override of "fail2ban-nftables"."""
    def stock(match):
        name, port, protocol = match.group(1), match.group(2), match.group(3)
        if port in ("all", "", "0:65535"):
            return 'nftables-allports[name=%s, protocol="%s"]' % (name, protocol)
        return 'nftables-multiport[name=%s, port="%s", protocol="%s"]' % (name, port, protocol)

    return re.sub(r'floodguard_nftables\.py\[name=([^,\]]+), port="([^"]*)", protocol="([^"]*)"[^\]]*\]', stock,
                  banactions)


def sleep_interval_actions(banactions, interval):
    """floodguard-banactions.local with the sleepinterval option of every in-process action set to `interval`
    (the jail.d override of system "floodguard-f2b-waits")."""
    return re.sub(r'(floodguard_(?:nftables|nginx)\.py\[[^\n\]]*?)sleepinterval=[^,\]]*', r'\g<1>sleepinterval=%s' % interval,
                  banactions)
