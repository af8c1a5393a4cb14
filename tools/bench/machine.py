# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the benchmark ran on: the machine and the software versions on the web host."""

import os
import platform


def _first(path, prefix):
    with open(path) as handle:
        return next((line for line in handle if line.startswith(prefix)), "")


def _os_release():
    with open("/etc/os-release") as handle:
        return dict(line.rstrip("\n").split("=", 1) for line in handle if "=" in line)


def describe(host):
    """The controller's CPUs, memory, kernel and distro; the web host's distro and daemons."""
    return {
        "nproc": os.cpu_count(),
        "cpu": _first("/proc/cpuinfo", "model name").partition(":")[2].strip() or platform.processor(),
        "memory_gib": round(int(_first("/proc/meminfo", "MemTotal").split()[1]) / 1024 / 1024, 1),
        "kernel": platform.release(),
        "host_distro": _os_release().get("PRETTY_NAME", "").strip('"'),
        "testbed_distro": host.first_line(["sh", "-c", ". /etc/os-release; echo $PRETTY_NAME"]),
        "fail2ban": host.first_line(["fail2ban-server", "--version"]),
        "nginx": host.first_line(["nginx", "-v"]),
        "python_on_web": host.first_line(["python3", "--version"]),
    }


def firewall(host):
    """{'nft' or 'iptables': version} of the web host's current back end."""
    if host.backend == "nftables":
        return {"nft": host.first_line(["nft", "--version"])}
    return {"iptables": host.first_line(["iptables", "--version"])}


def crowdsec(host):
    """Versions of CrowdSec and its firewall bouncer on the web host."""
    version = host.exec("web", ["dpkg-query", "-W", "-f", "${Version}", "crowdsec"], check=False).stdout.strip()
    bouncer = host.exec("web", ["dpkg-query", "-W", "-f", "${Version}", "crowdsec-firewall-bouncer"],
                        check=False).stdout.strip()
    return {"crowdsec": "crowdsec %s" % version, "crowdsec_bouncer": "crowdsec-firewall-bouncer %s" % bouncer}
