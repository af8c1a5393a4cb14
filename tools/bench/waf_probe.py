# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run on the bench's web host by tools/bench/waf.py: the AWS edge action in real fail2ban, against moto.

A jail of its own (JAIL, written by setup) holds only the action floodguard_wafv2.py, with fresh IP sets
in moto for every measurement, so that its API call count starts at 0. Every answer is JSON on stdout.

  waf_probe.py setup ENDPOINT JAIL NAME SETS FLUSHDELAY   create SETS IPv4 sets NAME-1.. and start JAIL
                                                          with the action on them (or move it to them)
  waf_probe.py latency ENDPOINT JAIL RUNS FIRST_OCTET     RUNS bans, one at a time: seconds from the
                                                          local ban to the address in the set
  waf_probe.py burst ENDPOINT JAIL BANS CAP_S             BANS bans in one banip: seconds until all are
                                                          in the sets, and the API calls they cost
"""

import json
import os
import re
import subprocess
import sys
import time

import boto3

REGION = "eu-west-1"
SCOPE = "REGIONAL"
JAIL_FILE = "/etc/fail2ban/jail.d/zz-floodguard-bench-waf.local"
STATE = "/var/lib/fail2ban/floodguard-bench-waf.json"
LOG = "/var/log/fail2ban.log"
POLL_S = 0.01
# One ban that takes longer failed: a bench run stops by itself.
SAMPLE_CAP_S = 30


def client(endpoint):
    return boto3.client("wafv2", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="testing",
                        aws_secret_access_key="testing")


def fail2ban(*argv):
    return subprocess.run(["fail2ban-client"] + list(argv), check=True, stdout=subprocess.PIPE,
                          universal_newlines=True).stdout


def sets_of(jail):
    with open(STATE) as handle:
        return json.load(handle)[jail]


def contents(aws, refs):
    addresses = set()
    for ref in refs:
        name, set_id = ref.split(":")
        addresses.update(aws.get_ip_set(Name=name, Scope=SCOPE, Id=set_id)["IPSet"]["Addresses"])
    return addresses


def empty_previous_sets(aws, jail):
    """Unbans everything (the action then empties its sets), so that the next run starts from no bans."""
    try:
        previous = sets_of(jail)
    except (OSError, ValueError, KeyError):
        return
    fail2ban("unban", "--all")
    deadline = time.monotonic() + 60
    while contents(aws, previous) and time.monotonic() < deadline:
        time.sleep(0.2)


def setup(endpoint, jail, name, count, flushdelay):
    aws = client(endpoint)
    empty_previous_sets(aws, jail)
    refs = []
    for index in range(int(count)):
        summary = aws.create_ip_set(Name="%s-%d" % (name, index + 1), Scope=SCOPE, IPAddressVersion="IPV4",
                                    Addresses=[])["Summary"]
        refs.append("%s:%s" % (summary["Name"], summary["Id"]))
    # The manual jail's filter and journal match: only banip bans here.
    with open(JAIL_FILE, "w") as handle:
        handle.write("[%s]\nenabled = true\nfilter = floodguard-manual\nbackend = systemd\n"
                     "journalmatch = _SYSTEMD_UNIT=floodguard-manual-ban.service\nbantime = 1h\n"
                     "action = floodguard_wafv2.py[ipsets=\"%s\", region=%s, endpoint=\"%s\", flushdelay=%s, "
                     "reconciledelay=0]\n" % (jail, " ".join(refs), REGION, endpoint, flushdelay))
    with open(STATE, "w") as handle:
        json.dump({jail: refs}, handle)
    # A full reload starts a new jail (a jail reload needs it running); a running one keeps its action,
    # whose reload() takes the new sets with a new client, so its API call count starts again at 0.
    fail2ban("reload")
    for _attempt in range(100):
        if subprocess.run(["fail2ban-client", "status", jail], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, check=False).returncode == 0:
            return {"ip_sets": refs}
        time.sleep(0.2)
    raise RuntimeError("fail2ban did not start the jail %s within 20 s" % jail)


def latency(endpoint, jail, runs, first_octet):
    aws = client(endpoint)
    refs = sets_of(jail)
    samples = []
    for index in range(int(runs)):
        address = "10.%d.%d.%d" % (int(first_octet), index // 250, index % 250 + 1)
        fail2ban("set", jail, "banip", address)
        # fail2ban-client returns once the jail has banned it: its actions' ban() ran in that call.
        banned = time.monotonic()
        while address + "/32" not in contents(aws, refs):
            if time.monotonic() - banned > SAMPLE_CAP_S:
                raise RuntimeError("%s not in the IP set %d s after its ban: see /var/log/fail2ban.log (the action's "
                                   "errors)" % (address, SAMPLE_CAP_S))
            time.sleep(POLL_S)
        samples.append(round(time.monotonic() - banned, 4))  # after the confirming read has returned
    return {"seconds": samples}


def parse_api_calls(line):
    """{total, by_operation} of the action's log line '... (API calls 3: get_ip_set 2, update_ip_set 1)'."""
    found = re.search(r"\(API calls (\d+): ([a-z_]+ \d+(?:, [a-z_]+ \d+)*)\)\s*$", line)
    if not found:
        return None
    by_operation = dict((name, int(number)) for name, number in
                        (item.rsplit(" ", 1) for item in found.group(2).split(", ")))
    return {"total": int(found.group(1)), "by_operation": by_operation}


def api_calls(jail, offset):
    """The action's API calls on its current sets: its last 'edge updated' line in fail2ban's log (and how many
    there are after offset, the log's size when the run started)."""
    with open(LOG) as handle:
        handle.seek(offset)
        lines = [line.strip() for line in handle if "[%s] floodguard_wafv2: edge updated" % jail in line]
    parsed = parse_api_calls(lines[-1]) if lines else None
    return dict(parsed, syncs=len(lines), line=lines[-1]) if parsed else None


def burst(endpoint, jail, bans, cap_s):
    aws = client(endpoint)
    refs = sets_of(jail)
    wanted = set("10.%d.%d.%d/32" % (200 + index // 65536, index // 256 % 256, index % 256) for index in range(int(bans)))
    offset = os.path.getsize(LOG)
    started = time.monotonic()
    fail2ban("set", jail, "banip", *sorted(cidr.split("/")[0] for cidr in wanted))
    banned = time.monotonic()
    held = set()
    while time.monotonic() - started < float(cap_s):
        held = contents(aws, refs) & wanted
        if held == wanted:
            break
        time.sleep(0.1)
    done = time.monotonic()
    time.sleep(1.5)  # the log line of the last sync
    return {"bans": len(wanted), "in_sets": len(held), "banip_s": round(banned - started, 3),
            "seconds_to_edge": round(done - started, 3), "api_calls": api_calls(jail, offset)}


def main(argv):
    command, rest = argv[0], argv[1:]
    result = {"setup": setup, "latency": latency, "burst": burst}[command](*rest)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
