# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs on the bench's web host (python3 - < this file, arguments as JSON on the command line): how many
rejection lines per second fail2ban parses, per filter variant.

For each variant a temporary jail (fail2ban-client add ... start; stopped at the end) reads a log file of
its own with the default jail's backend; the probe appends synthetic rejection lines, each from a new
address (so that nothing is banned: the parse alone is measured), and reads the jail's "Total failed"
over fail2ban's socket. Two measures: the burst rate (N lines at once, N / the time until all are counted)
and the highest steady rate, of those tried, at which every line was counted within 1 s of being written.
Prints one JSON object.
"""

import ipaddress
import json
import os
import subprocess
import sys
import time

SOCKET = "/var/run/fail2ban/fail2ban.sock"
# The NGINX error-log line (limit_req, at error level) and the compact line of a rejections-only access log.
ERROR_LINE = ('%s [error] 1234#1234: *%d limiting requests, excess: 5.120 by zone "one", client: %s, server: _, '
              'request: "GET /api/ping HTTP/1.1", host: "192.0.2.1"\n')
COMPACT_LINE = "%.3f %s\n"
STOCK_FAILREGEX = (r'^\s*\[[a-z]+\] \d+#\d+: \*\d+ limiting requests, excess: [\d\.]+ by zone "(?:[^"]+)", '
                   r'client: <HOST>,')
VARIANTS = {
    # Debian's nginx-limit-req filter as the role's default jail uses it.
    "stock": {"failregex": STOCK_FAILREGEX, "datepattern": "{^LN-BEG}", "line": "error"},
    # The same with the NGINX date format named, so fail2ban does not try its list of date templates.
    "datepattern": {"failregex": STOCK_FAILREGEX, "datepattern": "^%Y/%m/%d %H:%M:%S", "line": "error"},
    # And a prefregex that drops every other error-log line before the failregex runs.
    "prefregex": {"prefregex": r'^\s*\[error\] \d+#\d+: \*\d+ limiting requests, <F-CONTENT>.+</F-CONTENT>$',
                  "failregex": r'^excess: [\d\.]+ by zone "[^"]+", client: <HOST>,',
                  "datepattern": "^%Y/%m/%d %H:%M:%S", "line": "error"},
    # A log of rejections only (access_log ... if= on $limit_req_status): "$msec $remote_addr".
    "compact": {"failregex": r"^\s*<HOST>\s*$", "datepattern": "^{EPOCH}", "line": "compact"},
}


def command(*argv):
    from fail2ban.client.csocket import CSocket  # pylint: disable=import-outside-toplevel  # on the web host only
    return CSocket(SOCKET).send(list(argv))


def counted(jail):
    """The jail's "Total failed"."""
    status = command("status", jail)[1]
    return dict(dict(status)["Filter"])["Total failed"]


def jail_for(name, variant, path):
    jail = "fgbench-detect-%s" % name
    subprocess.run(["fail2ban-client", "stop", jail], capture_output=True, check=False)
    with open(path, "w"):
        pass
    argv_list = [["add", jail, "auto"], ["set", jail, "addlogpath", path, "tail"],
                 ["set", jail, "datepattern", variant["datepattern"]]]
    if "prefregex" in variant:
        argv_list.append(["set", jail, "prefregex", variant["prefregex"]])
    argv_list += [["set", jail, "addfailregex", variant["failregex"]],
                  ["set", jail, "maxretry", "1000000"], ["set", jail, "findtime", "60"], ["start", jail]]
    for argv in argv_list:
        code, answer = command(*argv)
        if code != 0:
            raise SystemExit("fail2ban-client %s: %s" % (" ".join(argv), answer))
    return jail


class Lines:
    """Synthetic rejection lines, each from a new address of 100.64.0.0/10 (never on the testbed)."""

    def __init__(self, kind):
        self.kind = kind
        self.next = int(ipaddress.ip_address("100.64.0.1"))

    def make(self, count):
        now = time.time()
        stamp = time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(now))
        out = []
        for _index in range(count):
            address = str(ipaddress.ip_address(self.next))
            self.next += 1
            out.append(ERROR_LINE % (stamp, self.next, address) if self.kind == "error" else COMPACT_LINE % (now, address))
        return "".join(out)


def wait_counted(jail, target, limit_s):
    deadline = time.time() + limit_s
    while time.time() < deadline:
        if counted(jail) >= target:
            return time.time()
        time.sleep(0.02)
    return None


def burst(jail, path, lines, count):
    """count lines written at once; lines/s until fail2ban counted them all (None if not within 60 s)."""
    base = counted(jail)
    text = lines.make(count)
    with open(path, "a") as log:
        start = time.time()
        log.write(text)
    done = wait_counted(jail, base + count, 60)
    return None if done is None else round(count / (done - start))


def steady(jail, path, lines, rate, seconds):
    """rate lines/s for seconds, in 0.1 s steps; the longest time a written line waited to be counted."""
    base = counted(jail)
    written = []  # (time, lines written so far)
    total = 0
    lag = 0.0
    start = time.time()
    with open(path, "a", buffering=1) as log:
        step = 0
        while time.time() - start < seconds:
            step += 1
            due = int(rate * 0.1 * step) - int(rate * 0.1 * (step - 1))
            log.write(lines.make(due))
            log.flush()
            total += due
            written.append((time.time(), total))
            now_counted = counted(jail) - base
            # The oldest line not counted yet was written at the first step whose total exceeds now_counted.
            pending = next((moment for moment, upto in written if upto > now_counted), None)
            if pending is not None:
                lag = max(lag, time.time() - pending)
            time.sleep(max(0.0, start + 0.1 * step - time.time()))
    done = wait_counted(jail, base + total, 30)
    if done is None:
        return None
    if written:
        lag = max(lag, done - written[-1][0])
    return round(lag, 3)


def main():
    options = json.loads(sys.argv[1])
    results = {}
    for name in options["variants"]:
        variant = VARIANTS[name]
        path = "/var/log/fgbench-detect-%s.log" % name
        jail = jail_for(name, variant, path)
        lines = Lines(variant["line"])
        try:
            time.sleep(0.5)
            bursts = [burst(jail, path, lines, options["burst_lines"]) for _run in range(options["runs"])]
            steady_ok = None
            lags = {}
            for rate in options["rates"]:
                lag = steady(jail, path, lines, rate, options["steady_s"])
                lags[str(rate)] = lag
                if lag is None or lag >= 1.0:
                    break
                steady_ok = rate
            results[name] = {"burst_lines_per_s": bursts, "steady_lag_s": lags, "steady_lines_per_s": steady_ok}
        finally:
            command("stop", jail)
            os.unlink(path)
    results["load_average"] = round(os.getloadavg()[0], 2)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
