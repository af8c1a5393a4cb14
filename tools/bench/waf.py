# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Phase "waf": the AWS edge mirror (floodguard_wafv2.py in the web host's real fail2ban) against moto.

moto (PyPI moto[server], the version of requirements.txt) runs in a container of its own on the bench
network. It answers in milliseconds and AWS then takes seconds to minutes to reach its edge locations,
so this measures this side only:
  latency   seconds from the local ban (`fail2ban-client set JAIL banip` has returned) to the address
            being in the IP set, the clock stopped when the GetIPSet that shows it has returned (polled
            every 10 ms), with the role's flushdelay
  burst     10,000 bans in one banip: seconds until all are in the sets, and the API calls they cost
"""

import ipaddress
import json
import os
import re
import subprocess
import time

import settings
import stats
import testbed
from host import HERE, REPO, log

SETTINGS = {"bans": 10000, "burst_runs": 3, "flushdelay_s": 1, "cap_s": 120, "jail": "bench-waf",
            "moto_port": 5000}
MOTO_HOST = "moto"
# On the bench network, after web, attacker and client (settings.py).
MOTO_ADDRESS = str(ipaddress.ip_network(settings.SUBNET).network_address + 40)
PROBE = "/usr/local/bin/floodguard-bench-waf"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def moto_version():
    """moto's version pin of requirements.txt (the one home of it)."""
    with open(os.path.join(REPO, "requirements.txt")) as handle:
        return re.search(r"^moto\[server\]==(\S+)", handle.read(), re.M).group(1)


def docker(*argv, timeout=300):
    """`docker ARGV...`; RuntimeError with its output when it fails."""
    done = subprocess.run(["docker"] + list(argv), check=False, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError("docker %s failed (rc %d): %s" % (" ".join(argv[:4]), done.returncode, done.stdout[-2000:]))
    return done.stdout


def moto_up(distro):
    """moto in its own container on the bench network (labelled as the testbed's: `down` removes it too)."""
    name = testbed.container_name(settings.TESTBED, MOTO_HOST)
    docker("rm", "-f", name)
    # No systemd: moto_server alone, for at most an hour.
    docker("run", "-d", "--name", name, "--hostname", MOTO_HOST, "--label", "%s=%s" % (testbed.LABEL, settings.TESTBED),
           "--network", testbed.network_name(settings.TESTBED), "--ip", MOTO_ADDRESS,
           "-v", "%s:/etc/ssl/certs/host-ca.crt:ro" % CA_BUNDLE, "-e", "PIP_CERT=/etc/ssl/certs/host-ca.crt",
           "--entrypoint", "sleep", testbed.image(distro), "3600")
    # Debian's python3-venv is in the image's apt cache (tools/build-test-image.sh).
    docker("exec", name, "apt-get", "install", "-y", "-q", "python3-venv", timeout=600)
    docker("exec", name, "python3", "-m", "venv", "/opt/moto")
    docker("exec", name, "/opt/moto/bin/pip", "install", "--quiet", "moto[server]==%s" % moto_version(), timeout=600)
    docker("exec", "-d", name, "/opt/moto/bin/moto_server", "-H", "0.0.0.0", "-p", str(SETTINGS["moto_port"]))
    return name


def web_ready(host, endpoint):
    """python3-boto3 (Debian's, as the role installs it) and the probe on the web host; waits for moto."""
    host.exec("web", ["apt-get", "install", "-y", "-q", "python3-boto3"], timeout=600)
    # moto takes any key; fail2ban's action finds these through boto3's chain, as an instance profile on EC2.
    host.exec("web", ["mkdir", "-p", "-m", "0700", "/root/.aws"])
    host.exec("web", ["tee", "/root/.aws/credentials"],
              stdin="[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    host.copy(os.path.join(HERE, "waf_probe.py"), "web", PROBE)
    check = ("import sys, time, urllib.request\nfor _ in range(150):\n    try:\n        urllib.request.urlopen(%r, "
             "timeout=1)\n        sys.exit(0)\n    except Exception:\n        time.sleep(0.2)\nsys.exit(1)\n" % endpoint)
    host.exec("web", ["python3", "-c", check], timeout=60)


def probe(host, *argv, timeout=300):
    return json.loads(host.exec("web", ["python3", PROBE] + [str(item) for item in argv], timeout=timeout).stdout)


def run(host, args):
    """args.latency_runs single bans, then SETTINGS["burst_runs"] bursts; moto removed at the end."""
    runs = max(1, args.latency_runs)
    bursts = SETTINGS["burst_runs"] if not args.quick else 1
    endpoint = "http://%s:%d" % (MOTO_ADDRESS, SETTINGS["moto_port"])
    jail = SETTINGS["jail"]
    result = {"moto_version": moto_version(), "endpoint": endpoint, "runs": runs, "burst_runs": bursts}
    log("waf: moto %s in its own container at %s" % (result["moto_version"], MOTO_ADDRESS))
    started = time.monotonic()
    moto = moto_up(args.distro)
    try:
        result["moto_setup_s"] = round(time.monotonic() - started, 1)
        web_ready(host, endpoint)
        probe(host, "setup", endpoint, jail, "bench-latency", 1, SETTINGS["flushdelay_s"])
        samples = probe(host, "latency", endpoint, jail, runs, 50, timeout=runs * 40 + 60)["seconds"]
        result["latency_s"] = dict(stats.summarize(samples), samples=samples)
        log("waf latency: %s" % stats.spread(result["latency_s"], lambda value: "%.3f s" % value, "ban"))
        result["bursts"] = []
        for index in range(bursts):
            sets = SETTINGS["bans"] // 10000 + 1
            probe(host, "setup", endpoint, jail, "bench-burst%d" % (index + 1), sets, SETTINGS["flushdelay_s"])
            outcome = probe(host, "burst", endpoint, jail, SETTINGS["bans"], SETTINGS["cap_s"],
                            timeout=SETTINGS["cap_s"] + 120)
            result["bursts"].append(outcome)
            log("waf burst %d: %s" % (index + 1, outcome))
        done = [item for item in result["bursts"] if item["in_sets"] == item["bans"] and item["api_calls"]]
        result["burst_api_calls"] = stats.summarize([item["api_calls"]["total"] for item in done])
        result["burst_seconds"] = stats.summarize([item["seconds_to_edge"] for item in done])
        if len(done) < bursts:
            result["problem"] = "%d of %d bursts did not all reach the sets within %d s" % (
                bursts - len(done), bursts, SETTINGS["cap_s"])
    except Exception as exc:  # keep what was measured; the report says what failed
        result["problem"] = "%s: %s" % (type(exc).__name__, exc)
        log("waf: %s" % result["problem"])
    finally:
        subprocess.run(["docker", "rm", "-f", moto], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        host.exec("web", ["rm", "-f", "/etc/fail2ban/jail.d/zz-floodguard-bench-waf.local"], check=False)
        host.exec("web", ["fail2ban-client", "stop", jail], check=False)
    return result


def seconds(value):
    return "–" if value is None else "%.3f s" % value


def banip_text(waf):
    values = [item["banip_s"] for item in waf.get("bursts", []) if item.get("banip_s") is not None]
    return stats.spread(stats.summarize(values), lambda value: "%.2f s" % value) or "–"


def latency_cell(latency):
    if not latency.get("n"):
        return "not measured"
    figures = [seconds(latency.get(key)) for key in ("p50", "p95", "min", "max")]
    return "p50 %s, p95 %s, %s–%s, %d bans" % tuple(figures + [latency["n"]])


def section(results):
    """The report's section (report.py SECTIONS)."""
    waf = results.get("waf")
    if not waf:
        return []
    latency = waf.get("latency_s") or {"n": 0}
    calls = waf.get("burst_api_calls") or {}
    lines = ["## AWS edge (WAFv2 IP sets, against moto)", "",
             "The fail2ban action `floodguard_wafv2.py` in the web host's fail2ban, writing to moto %s (PyPI "
             "`moto[server]`) in a container of its own on the bench network. moto answers in milliseconds: this "
             "measures this side only. AWS then takes seconds to minutes to bring a change to every edge "
             "location." % waf["moto_version"], "",
             "| Figure | Value |", "|---|---|",
             "| local ban → address in the IP set (flushdelay %s s) | %s |" % (SETTINGS["flushdelay_s"],
                                                                               latency_cell(latency)),
             "| API calls for %s bans in one burst | %s |" % (
                 format(SETTINGS["bans"], ","), stats.spread(calls, lambda value: "%d" % value) or "not measured"),
             "| burst: banip → all in the sets | %s |" % (
                 stats.spread(waf.get("burst_seconds"), lambda value: "%.2f s" % value) or "not measured"),
             ""]
    if waf.get("problem"):
        lines += ["> Note: the phase did not finish: %s" % waf["problem"], ""]
    by_operation = [item["api_calls"]["by_operation"] for item in waf.get("bursts", []) if item.get("api_calls")]
    if by_operation:
        operations = "; ".join(", ".join("%s %d" % pair for pair in sorted(item.items())) for item in by_operation)
        lines += ["Calls per burst by operation: %s. The clock of a single ban starts when `fail2ban-client set "
                  "JAIL banip` has returned (fail2ban has run the jail's actions) and stops when the `GetIPSet` "
                  "that shows the address has returned, polled every 10 ms. The jail holds only the edge action; "
                  "in a real jail the firewall action runs first, in the same call. fail2ban itself takes %s to "
                  "take in a banip of %s addresses: what arrives after a write has started goes into the next one, "
                  "and every write reads every set first (%d sets per burst)." % (
                      operations, banip_text(waf), format(SETTINGS["bans"], ","), SETTINGS["bans"] // 10000 + 1), ""]
    return lines
