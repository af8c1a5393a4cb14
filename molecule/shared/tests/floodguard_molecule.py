# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the testinfra tests of the scenarios share: their hosts, their addresses, floods with tools/flood.py and
waits with deadlines instead of fixed sleeps. A scenario's tests load it from here::

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "tests"))
"""

from __future__ import annotations

import json
import os
import shlex
import time

import testinfra

DISTRO = os.environ.get("MOLECULE_DISTRO", "bookworm")
# Where the scenarios' converge.yml puts tools/flood.py on the flooding hosts.
FLOOD = "/usr/local/bin/floodguard-flood"


def container(scenario, role):
    """Container name of a scenario host: fg-<scenario>-<distro>-<role>, as the scenarios' molecule.yml name them."""
    return "fg-%s-%s-%s" % (scenario, DISTRO, role)


def docker_host(scenario, role):
    return testinfra.get_host("docker://" + container(scenario, role))


def addresses_by_label(host, label):
    """IPv4 addresses of a host whose label matches (prepare.yml labels the extra ones), in numeric order."""
    out = host.check_output("ip -4 -o addr show label %s", label)
    found = [line.split()[3].split("/")[0] for line in out.splitlines() if " inet " in line]
    return sorted(found, key=lambda address: tuple(int(part) for part in address.split(".")))


def flood(host, url, sources, requests, duration, **options):
    """Runs tools/flood.py on host from the given source addresses; returns its JSON report.

    options: concurrency, rate, timeout, stop_after_drops, timeline (see flood.py --help).
    """
    argv = ["python3", FLOOD, url, "--requests", str(requests), "--duration", str(duration)]
    for source in sources:
        argv += ["--source", source]
    for name, value in sorted(options.items()):
        flag = "--" + name.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif value is not None and value is not False:
            argv += [flag, str(value)]
    result = host.run(" ".join(shlex.quote(arg) for arg in argv))
    assert result.rc == 0, "flood failed on %s: %s" % (host.backend.get_pseudo_hostname(), result.stderr)
    return json.loads(result.stdout)


def wait_until(what, check, deadline_s, interval_s=0.5):
    """Polls check() until it returns a true value or the deadline passes; returns (value, seconds waited).

    A check that fails an assertion (a command that failed) counts as not yet.
    """
    started = time.monotonic()
    while True:
        try:
            value = check()
        except AssertionError:
            value = None
        waited = time.monotonic() - started
        if value:
            return value, waited
        if waited > deadline_s:
            raise AssertionError("%s: not within %s s" % (what, deadline_s))
        time.sleep(interval_s)
