# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Phase "operator": playbooks/ban.yml with N addresses as one comma-separated survey string, run through
ansible-runner as AWX runs a job template (private data dir: env/extravars, inventory, project), timed
until the firewall holds all N. floodguard only (the other systems have no ban.yml).

Also the ip_addresses filter alone on the controller with the same string (its de-duplication must stay
linear: 10 times the addresses, about 10 times the time).
"""

import itertools
import json
import os
import shutil
import subprocess
import sys
import time

import settings
import stats
from host import REPO, log
from settings import BAN_NETWORK, MANUAL_JAIL

SETTINGS = {"runs": 3, "survey_separator": ", "}
# The project of the job template: the collection's playbook, as AWX's project would hold it.
PROJECT_PLAYBOOK = "---\n- name: Ban (the collection's playbook, as an AWX job template runs it)\n" \
                   "  ansible.builtin.import_playbook: floodguard.shield.ban\n"


def survey_string(size):
    return SETTINGS["survey_separator"].join(str(address) for address in itertools.islice(BAN_NETWORK.hosts(), size))


def filter_seconds(text):
    """Seconds the ip_addresses filter takes for `text` on the controller, and how many addresses it gave."""
    sys.path.insert(0, os.path.join(REPO, ".cache", "collections"))
    from ansible_collections.floodguard.shield.plugins.filter.ip_addresses import ip_addresses
    started = time.monotonic()
    addresses = ip_addresses(text)
    return round(time.monotonic() - started, 3), len(addresses)


def private_data_dir(host, folder, text):
    """An ansible-runner private data dir: the survey's extra vars, the testbed inventory, the project."""
    shutil.rmtree(folder, ignore_errors=True)
    for part in ("env", "inventory", "project"):
        os.makedirs(os.path.join(folder, part))
    with open(os.path.join(folder, "env", "extravars"), "w") as handle:
        json.dump({"jail": MANUAL_JAIL, "ips": text, "target": "web"}, handle)
    shutil.copyfile(host.inventory, os.path.join(folder, "inventory", "hosts.yml"))
    with open(os.path.join(folder, "project", "ban.yml"), "w") as handle:
        handle.write(PROJECT_PLAYBOOK)


def runner_run(host, args, size, folder):
    """One ansible-runner run of ban.yml with `size` addresses; timed until the firewall holds them."""
    host.reset()
    waiter = host.probe_process("wait", host.backend, BAN_NETWORK, size, args.cap)
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_DEPRECATION_WARNINGS="false")
    argv = [os.path.join(os.path.dirname(sys.executable), "ansible-runner"), "run", folder, "-p", "ban.yml",
            "--rotate-artifacts", "1"]
    started = time.time()
    done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, env=env,
                          timeout=args.cap + 120, check=False)
    runner_s = round(time.time() - started, 3)
    waited = host.waited(waiter, args.cap + 60)
    run = {"of": size, "rc": done.returncode, "runner_s": runner_s, "done": bool(waited.get("done"))
           and done.returncode == 0}
    if done.returncode != 0:
        run["problem"] = "ansible-runner rc %d: %s" % (done.returncode, done.stdout.strip()[-600:])
    if waited.get("done"):
        run.update(firewall_s=round(waited["epoch"] - started, 3),
                   uncertainty_s=round(waited["epoch"] - max(waited["epoch_lower"], started), 3))
    # Until both the job has ended (what the operator waits for in AWX) and the firewall holds all.
    run["seconds"] = max(runner_s, run.get("firewall_s") or 0) if run["done"] else None
    return run


def run(host, args):
    if host.action != settings.OURS:
        return None
    size = max(args.sizes)
    text = survey_string(size)
    tenth = survey_string(size // 10)
    filter_s, unique = filter_seconds(text)
    filter_tenth_s, _unique = filter_seconds(tenth)
    folder = os.path.join(host.logs, "runner")
    private_data_dir(host, folder, text)
    runs = []
    for index in range(SETTINGS["runs"]):
        runs.append(runner_run(host, args, size, folder))
        log("operator path (ban.yml via ansible-runner) N=%d #%d: runner %.1f s, firewall %s s" % (
            size, index + 1, runs[-1]["runner_s"], runs[-1].get("firewall_s")))
    host.reset()
    # Its copies of the inventory and extra vars (100,000 addresses) are no results to keep.
    shutil.rmtree(folder, ignore_errors=True)
    return {"size": size, "survey_chars": len(text), "filter_s": filter_s, "filter_unique": unique,
            "filter_tenth_s": filter_tenth_s, "runs": runs,
            "summary": stats.summarize_runs([dict(item, seconds=item["seconds"]) for item in runs]),
            "runner_summary": stats.summarize([item["runner_s"] for item in runs if item["rc"] == 0])}


def section(results):
    """The operator path's part of the report."""
    entries = results.get("operator") or {}
    entry = entries.get(results["settings"].get("ours", settings.OURS))
    if not entry:
        return []
    from report import count, seconds, goal_check
    from stats import spread
    limit = (results["goals"].get("operator_s") or {}).get(str(entry["size"]))
    goal = " Goal: under %s s: %s." % (limit, goal_check(entry["summary"].get("median"), limit)) if limit else ""
    problems = ["- run %d: %s" % (index + 1, item["problem"]) for index, item in enumerate(entry["runs"])
                if item.get("problem")]
    return (["## 6. Operator path at scale", "",
             "`playbooks/ban.yml` with %s addresses given as one comma-separated survey string (%s characters), run "
             "by ansible-runner as AWX runs a job template, timed until the job had ended and the firewall held all "
             "of them: %s (ansible-runner alone: %s).%s The `ip_addresses` filter alone takes %s for them on the "
             "controller (%s for a tenth: its de-duplication is linear) and shares `plugins/module_utils/"
             "_addresses.py` with the module." % (
                 count(entry["size"]), count(entry["survey_chars"]), spread(entry["summary"], seconds) or "not finished",
                 spread(entry["runner_summary"], seconds) or "–", goal, seconds(entry["filter_s"]),
                 seconds(entry["filter_tenth_s"])), ""] + problems + ([""] if problems else []))
