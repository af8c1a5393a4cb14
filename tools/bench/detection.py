# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Phase "detection": how many NGINX rejection lines per second fail2ban parses, per filter variant.

The issue's "Detection keeps up": a 10,000-address flood writes tens of thousands of rejection lines in
seconds. On the web host (tools/bench/detection_probe.py, through stdin), a temporary jail per variant
reads a log of its own with the default jail's backend; synthetic lines, each from a new address (nothing
is banned: the parse alone), are written at once (burst rate) and then at rising steady rates (the highest
with every line counted within 1 s). On floodguard's defaults only: nothing is banned, so the ban action
of the other fail2ban systems would not change the figure (CrowdSec parses with its own agent).
"""

import json
import os

import settings
import stats
from host import log

HERE = os.path.dirname(os.path.abspath(__file__))
VARIANTS = ("stock", "datepattern", "prefregex", "compact")
SETTINGS = {"variants": list(VARIANTS), "runs": 3, "burst_lines": 20000,
            "rates": [2000, 4000, 8000, 16000, 32000], "steady_s": 3,
            "quick_runs": 2, "quick_rates": [2000, 8000, 16000]}
LABELS = {
    "stock": "Debian's nginx-limit-req (the role's default jail)",
    "datepattern": "the same, explicit `datepattern = ^%Y/%m/%d %H:%M:%S`",
    "prefregex": "the same, with a `prefregex` on `[error] ... limiting requests,`",
    "compact": "a rejections-only access log (`$msec $remote_addr`), `failregex = ^<HOST>$`",
}


def run(host, args):
    """The variants' rates on floodguard's fail2ban; None for the other systems."""
    if host.action != settings.OURS:
        return None
    options = {"variants": SETTINGS["variants"], "burst_lines": SETTINGS["burst_lines"], "steady_s": SETTINGS["steady_s"],
               "runs": SETTINGS["quick_runs" if args.quick else "runs"],
               "rates": SETTINGS["quick_rates" if args.quick else "rates"]}
    with open(os.path.join(HERE, "detection_probe.py"), encoding="utf-8") as probe:
        done = host.exec("web", ["python3", "-", json.dumps(options)], stdin=probe.read(), timeout=900)
    results = json.loads(done.stdout)
    for name in SETTINGS["variants"]:
        log("detection %s %s: burst %s lines/s, steady %s lines/s" % (
            args.action, name, results[name]["burst_lines_per_s"], results[name]["steady_lines_per_s"]))
    return results


def section(results):
    """The report's section on detection (results["detection"])."""
    detection = results.get("detection")
    if not detection:
        return []
    lines = ["## Detection rate", "",
             "Rejection lines per second that fail2ban parses (its \"Total failed\"), each line from a new address so "
             "that only the parse is measured: all at once (%s lines; median and range of the runs) and the highest "
             "steady rate tried at which every line was counted within 1 s. A 10,000-address flood of the botnet "
             "scenario writes 20,000 lines in about 10 s." % "{:,}".format(SETTINGS["burst_lines"]), "",
             "| system | filter | burst lines/s | range | steady lines/s, lag < 1 s | load |",
             "| --- | --- | ---: | --- | ---: | ---: |"]
    for system in sorted(detection):
        measured = detection[system]
        for name in VARIANTS:
            if name not in measured:
                continue
            bursts = [value for value in measured[name]["burst_lines_per_s"] if value is not None]
            steady = measured[name]["steady_lines_per_s"]
            lines.append("| %s | %s | %s | %s | %s | %s |" % (
                system, LABELS[name], "-" if not bursts else "{:,}".format(round(stats.median(bursts))),
                "-" if not bursts else "%s-%s" % ("{:,}".format(min(bursts)), "{:,}".format(max(bursts))),
                "-" if steady is None else "{:,}".format(steady), measured.get("load_average", "-")))
    return lines + [""]
