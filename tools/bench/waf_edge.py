# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bench of the AWS edge mirror (roles/fail2ban/files/action.d/floodguard_wafv2.py) against moto.

Measures this side only (moto answers in milliseconds; AWS itself then takes seconds to minutes to
reach its edge locations):
  latency   seconds from the action's ban() (what fail2ban calls right after the firewall ban) to the
            address being in the IP set, polled every 10 ms, with the default flushdelay
  calls     AWS API calls for 10,000 bans: a burst (one banip call) and a trickle (1,000 bans/s)

    .venv/bin/python tools/bench/waf_edge.py [--bans 10000] [--samples 10] [--flushdelay 1] [--json FILE]

Needs moto[server] and boto3 (requirements.txt). fail2ban is not on PyPI: a stand-in of its
ActionBase is used when it is not installed.
"""

import argparse
import importlib.util
import json
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
import types

import boto3
from moto.server import ThreadedMotoServer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REGION = "eu-west-1"


def load_action(directory):
    try:
        import fail2ban.server.actions  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
    except ImportError:
        class ActionBase:
            def __init__(self, jail, name):
                self._jail = jail
                self._name = name
                self._logSys = logging.getLogger("fail2ban.bench")

        for name in ("fail2ban", "fail2ban.server"):
            sys.modules.setdefault(name, types.ModuleType(name))
        module = types.ModuleType("fail2ban.server.actions")
        module.ActionBase = ActionBase
        sys.modules["fail2ban.server.actions"] = module
    # The action and what it loads from its own directory (_wafv2.py and floodguard_ports.py are links to module_utils).
    for name in ("floodguard_wafv2.py", "floodguard_batching.py", "floodguard_ports.py", "_wafv2.py"):
        shutil.copy(os.path.join(ROOT, "roles/fail2ban/files/action.d", name), directory)
    spec = importlib.util.spec_from_file_location("floodguard_wafv2", os.path.join(directory, "floodguard_wafv2.py"))
    action = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(action)
    return action


class Jail:
    def __init__(self, name):
        self.name = name
        self.actions = types.SimpleNamespace(banManager=types.SimpleNamespace(getBanList=list), active=True)


def address(index):
    return "10.%d.%d.%d" % (index // 65536 % 256, index // 256 % 256, index % 256)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--bans", type=int, default=10000)
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--flushdelay", default="1", help="the action's flushdelay in seconds (default 1, the role's)")
    parser.add_argument("--json")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    endpoint = "http://%s:%d" % server.get_host_and_port()
    client = boto3.client("wafv2", endpoint_url=endpoint, region_name=REGION)
    directory = tempfile.mkdtemp(prefix="waf-bench-")
    results = {}
    try:
        module = load_action(directory)

        def new_action(run, sets):
            names = []
            for index in range(sets):
                summary = client.create_ip_set(Name="%s-%d" % (run, index), Scope="REGIONAL", IPAddressVersion="IPV4",
                                               Addresses=[])["Summary"]
                names.append("%s:%s" % (summary["Name"], summary["Id"]))
            action = module.Action(Jail(run), "floodguard_wafv2", ipsets=" ".join(names), region=REGION,
                                   endpoint=endpoint, statedir=directory, reconciledelay="0",
                                   flushdelay=args.flushdelay)
            action.start()
            return action, names

        def contents(ref):
            name, set_id = ref.split(":")
            return set(client.get_ip_set(Name=name, Scope="REGIONAL", Id=set_id)["IPSet"]["Addresses"])

        def settle(action):
            end = time.monotonic() + 300
            while action._pending and time.monotonic() < end:
                time.sleep(0.05)

        # Latency: one ban at a time, each once the previous one is at the edge.
        action, names = new_action("latency", 1)
        time.sleep(0.5)
        latencies = []
        for index in range(args.samples):
            cidr = address(index + 1) + "/32"
            started = time.monotonic()
            action.ban({"ip": address(index + 1)})
            while cidr not in contents(names[0]):
                time.sleep(0.01)
            latencies.append(time.monotonic() - started)
        action.stop()
        results["latency_s"] = {"median": round(statistics.median(latencies), 3), "max": round(max(latencies), 3),
                                "samples": len(latencies), "flushdelay_s": action._settings.flushdelay}

        sets = (args.bans + 9999) // 10000
        for run, rate in (("burst", None), ("trickle", 1000)):
            action, names = new_action(run, sets)
            started = time.monotonic()
            for index in range(args.bans):
                action.ban({"ip": address(index + 1)})
                if rate:
                    time.sleep(max(0.0, started + (index + 1) / rate - time.monotonic()))
            settle(action)
            elapsed = time.monotonic() - started
            action.stop()
            held = sum(len(contents(name)) for name in names)
            assert held == args.bans, "%s: %d of %d addresses in the sets" % (run, held, args.bans)
            results["calls_%s" % run] = {"bans": args.bans, "api_calls": action._ip_sets.api_calls(),
                                         "by_operation": dict(action._ip_sets.calls), "syncs": action.syncs,
                                         "seconds_to_edge": round(elapsed, 2)}
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)
    text = json.dumps(results, indent=2, sort_keys=True)
    print(text)
    if args.json:
        with open(args.json, "w") as handle:
            handle.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
