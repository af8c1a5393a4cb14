# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Measurements taken on the benchmark's web host (copied there by tools/bench/run.py; stdlib only).

  probe.py count nftables|iptables-multiport NETWORK   addresses of NETWORK the firewall holds (JSON)
  probe.py wait  nftables|iptables-multiport NETWORK COUNT LIMIT_S
                                                     polls until the firewall holds COUNT of them (JSON)
  probe.py restart nftables|iptables-multiport NETWORK COUNT LIMIT_S
                                                     `systemctl restart fail2ban`, then waits as `wait` does
  probe.py memory                                    fail2ban's resident memory, NGINX's shared zones (JSON)
  probe.py fill  nftables|iptables-multiport NETWORK COUNT
                                                     tops the firewall up to COUNT addresses of NETWORK, in
                                                     the shape fail2ban's action left (same set / same rule)
  probe.py trim  nftables|iptables-multiport NETWORK KEEP
                                                     removes addresses of NETWORK until KEEP are left

Counting reads the ruleset as the kernel holds it (`nft list ruleset`, `iptables-save`): an address counts
once it drops packets, whatever fail2ban reports. Set elements may be ranges or prefixes (interval sets).
"""

import ipaddress
import itertools
import json
import re
import subprocess
import sys
import time

ADDRESS = r"\d{1,3}(?:\.\d{1,3}){3}"
ELEMENT = re.compile(r"(%s)(?:-(%s)|/(\d{1,2}))?" % (ADDRESS, ADDRESS))
ENV = {"LC_ALL": "C", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}


def ruleset(backend):
    argv = ["nft", "list", "ruleset"] if backend == "nftables" else ["iptables-save", "-t", "filter"]
    # stderr: nft warns about tables that iptables-nft manages (Docker's DNS rules); not our business.
    return subprocess.run(argv, check=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          universal_newlines=True, env=ENV).stdout


def count(backend, network):
    """Addresses of `network` in the firewall: set elements (nftables) or source rules (iptables)."""
    low, high = int(network.network_address), int(network.broadcast_address)
    total = 0
    for match in ELEMENT.finditer(ruleset(backend)):
        first = int(ipaddress.IPv4Address(match.group(1)))
        if match.group(2):
            last = int(ipaddress.IPv4Address(match.group(2)))
        elif match.group(3):
            last = first + 2 ** (32 - int(match.group(3))) - 1
        else:
            last = first
        total += max(0, min(last, high) - max(first, low) + 1)
    return total


def address_sets():
    """(family, table, set) of every IPv4 address set, from the terse ruleset (no elements listed)."""
    text = subprocess.run(["nft", "-t", "list", "ruleset"], check=True, stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, universal_newlines=True, env=ENV).stdout
    found, table, name = [], None, None
    for line in text.splitlines():
        words = line.split()
        if words[:1] == ["table"] and len(words) >= 3:
            table = words[1:3]
        elif words[:1] == ["set"] and len(words) >= 2:
            name = words[1]
        elif words[:2] == ["type", "ipv4_addr"] and table and name:
            found.append((table[0], table[1], name))
    return found


def holds(sample, sets):
    """Whether one IPv4 set of `sets` holds every address of `sample` (`nft get element`, no dump)."""
    for family, table, name in sets:
        done = subprocess.run(["nft", "get", "element", family, table, name, "{ %s }" % ", ".join(sample)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV, check=False)
        if done.returncode == 0:
            return True
    return False


def wait(backend, network, wanted, limit_s):
    """Polls until the first `wanted` addresses of `network` are in the firewall, or `limit_s` passed.

    nftables: dumping a set of 100,000 elements takes a second or more, and the kernel restarts a dump
    whenever the set changes meanwhile - while bans pour in it may never finish. So first a sample of the
    addresses is looked up (the last ones in both numeric and text order, and some spread over the range),
    which costs nothing, and only then the whole set is counted, once. iptables rules change one at a time
    and are simply counted. `count` is None when the limit passed (the caller counts once bans stop).
    """
    addresses = [str(address) for address in itertools.islice(network.hosts(), wanted)]
    sample = sorted(set(addresses[-32:] + addresses[::max(1, wanted // 64)] + sorted(addresses)[-8:]))
    started = time.monotonic()
    polls = 0
    sets, sets_read = [], None
    while True:
        # A poll's time is when it starts: the kernel's state is read from that moment on.
        epoch, now = time.time(), time.monotonic() - started
        polls += 1
        if backend == "nftables":
            if sets_read is None or now - sets_read > 2:
                sets, sets_read = address_sets(), now
            held = count(backend, network) if holds(sample, sets) else None
        else:
            held = count(backend, network)
        if held is not None and held >= wanted:
            return {"count": held, "wanted": wanted, "seconds": round(now, 3), "done": True, "polls": polls,
                    "epoch": epoch, "last_poll_s": round(time.monotonic() - started - now, 3)}
        if now >= limit_s:
            return {"count": None, "wanted": wanted, "seconds": round(now, 3), "done": False, "polls": polls,
                    "epoch": epoch}
        # Polling costs CPU that the bans need too (2 cores): a few times a second is enough.
        time.sleep(0.05 if wanted <= 1000 else 0.2)


def restart(backend, network, wanted, limit_s):
    """Restarts fail2ban, then waits as wait() does until the firewall holds `wanted` addresses again."""
    restart_epoch = time.time()
    subprocess.run(["systemctl", "restart", "fail2ban"], check=True, env=ENV)
    restart_command_s = round(time.time() - restart_epoch, 3)
    result = wait(backend, network, wanted, limit_s)
    result.update(restart_epoch=restart_epoch, restart_command_s=restart_command_s)
    return result


def main_pid(unit):
    out = subprocess.run(["systemctl", "show", "-p", "MainPID", "--value", unit], stdout=subprocess.PIPE,
                         universal_newlines=True, env=ENV, check=False).stdout.strip()
    return int(out) if out.isdigit() and out != "0" else None


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


def nginx_zones():
    """NGINX's shared zones (anonymous shared mappings of 1 MiB or more: limit_req/limit_conn zones).

    Resident size = the sum over NGINX's processes of the mapping's Pss (proportional share), which counts
    each resident page of the zone once however many workers touched it.
    """
    pids = subprocess.run(["pgrep", "-x", "nginx"], stdout=subprocess.PIPE, universal_newlines=True, check=False).stdout.split()
    zones = {}
    for pid in pids:
        try:
            with open("/proc/%s/smaps" % pid) as handle:
                text = handle.read()
        except OSError:
            continue
        current = None
        for line in text.splitlines():
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                fields = line.split(None, 5)
                name = fields[5] if len(fields) > 5 else ""
                current = fields[0] if name.startswith("/dev/zero") or name.startswith("/SYSV") else None
            elif current and line.startswith("Size:"):
                size = int(line.split()[1])
                if size < 1024:
                    current = None
                else:
                    zones.setdefault(current, {"size_kb": size, "resident_kb": 0})
            elif current and line.startswith("Pss:"):
                zones[current]["resident_kb"] += int(line.split()[1])
    return sorted(zones.values(), key=lambda zone: -zone["size_kb"])


def memory():
    pid = main_pid("fail2ban")
    return {"fail2ban_rss_kb": rss_kb(pid) if pid else None, "nginx_zones": nginx_zones()}


def set_elements(text, network):
    """{(family, table, set): [single addresses of `network`]} from `nft list ruleset` text."""
    found = {}
    table = set_name = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("table "):
            table, set_name = stripped.split()[1:3], None
        elif stripped.startswith("set "):
            set_name = stripped.split()[1]
        elif stripped.startswith("chain "):
            set_name = None
        if table and set_name:
            for match in ELEMENT.finditer(stripped):
                if not match.group(2) and not match.group(3) and ipaddress.IPv4Address(match.group(1)) in network:
                    found.setdefault((table[0], table[1], set_name), []).append(match.group(1))
    return found


def banned_source(line, network):
    """The address of `network` that an `iptables-save` rule line (-A ...) bans, else None."""
    match = re.search(r"-s (%s)/32 " % ADDRESS, line) if line.startswith("-A ") else None
    if match and ipaddress.IPv4Address(match.group(1)) in network:
        return match.group(1)
    return None


def nft_elements(verb, family, table, set_name, addresses):
    """`nft add|delete element` for addresses, 5,000 per transaction."""
    for index in range(0, len(addresses), 5000):
        script = "%s element %s %s %s { %s }\n" % (verb, family, table, set_name, ", ".join(addresses[index:index + 5000]))
        subprocess.run(["nft", "-f", "-"], input=script, check=True, universal_newlines=True, env=ENV)


def fill(backend, network, wanted):
    """Adds addresses of `network` (in order, skipping those held) until the firewall holds `wanted`."""
    text = ruleset(backend)
    if backend == "nftables":
        held_by_set = set_elements(text, network)
        if not held_by_set:
            raise SystemExit("no nftables set holds addresses of %s yet: ban one through fail2ban first" % network)
        target_set = next(iter(held_by_set))
    else:
        template = next((line for line in text.splitlines() if banned_source(line, network)), None)
        if template is None:
            raise SystemExit("no iptables rule bans addresses of %s yet: ban one through fail2ban first" % network)
    held = set()
    for match in ELEMENT.finditer(text):
        # A single address: a set element, or an iptables source written as a.b.c.d/32.
        if not match.group(2) and match.group(3) in (None, "32") and ipaddress.IPv4Address(match.group(1)) in network:
            held.add(match.group(1))
    missing = []
    for address in network.hosts():
        if len(held) + len(missing) >= wanted:
            break
        if str(address) not in held:
            missing.append(str(address))
    started = time.monotonic()
    if backend == "nftables":
        nft_elements("add", *target_set, missing)
    else:
        # Inserted at the top, as fail2ban's iptables actionban does (-I <chain> 1): appended after
        # the chain's final RETURN, a rule would never be looked at.
        chain = template.split()[1]
        inserted = re.sub(r"^-A %s " % re.escape(chain), "-I %s 1 " % chain, template)
        for index in range(0, len(missing), 5000):
            lines = ["*filter"] + [re.sub(r"-s %s/32 " % ADDRESS, "-s %s/32 " % item, inserted, count=1)
                                   for item in missing[index:index + 5000]] + ["COMMIT", ""]
            subprocess.run(["iptables-restore", "--noflush"], input="\n".join(lines), check=True,
                           universal_newlines=True, env=ENV)
    return {"added": len(missing), "seconds": round(time.monotonic() - started, 3),
            "count": count(backend, network)}


def trim(backend, network, keep):
    """Removes addresses of `network` from the firewall until it holds only the first `keep` of them.

    For the per-packet comparison: with fail2ban frozen, the same sets or chains are emptied and refilled
    (fill), so that "N bans" and "no bans" are measured minutes apart at most, not a whole bench apart.
    """
    text = ruleset(backend)
    started = time.monotonic()
    if backend == "nftables":
        for target_set, addresses in set_elements(text, network).items():
            nft_elements("delete", *target_set, sorted(addresses, key=ipaddress.IPv4Address)[keep:])
    else:
        # Rewrite the chains that ban addresses of the network: flush them, then put back every other rule
        # (in order) and the first `keep` bans, in one iptables-restore.
        chains = dict.fromkeys(line.split()[1] for line in text.splitlines() if banned_source(line, network))
        kept, held = [], 0
        for line in text.splitlines():
            if not line.startswith("-A ") or line.split()[1] not in chains:
                continue
            if banned_source(line, network):
                if held >= keep:
                    continue
                held += 1
            kept.append(line)
        script = ["*filter"] + ["-F %s" % chain for chain in chains] + kept + ["COMMIT", ""]
        subprocess.run(["iptables-restore", "--noflush"], input="\n".join(script), check=True,
                       universal_newlines=True, env=ENV)
    return {"seconds": round(time.monotonic() - started, 3), "count": count(backend, network)}


def main(argv):
    command = argv[0]
    if command == "memory":
        result = memory()
    else:
        backend, network = argv[1], ipaddress.IPv4Network(argv[2])
        if command == "count":
            result = {"count": count(backend, network)}
        elif command == "wait":
            result = wait(backend, network, int(argv[3]), float(argv[4]))
        elif command == "restart":
            result = restart(backend, network, int(argv[3]), float(argv[4]))
        elif command == "fill":
            result = fill(backend, network, int(argv[3]))
        elif command == "trim":
            result = trim(backend, network, int(argv[3]))
        else:
            raise SystemExit("unknown command %r: count, wait, restart, memory, fill or trim" % command)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
