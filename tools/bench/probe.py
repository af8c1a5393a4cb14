# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Measurements taken on the benchmark's web host (copied there by tools/bench/run.py; stdlib only).

  probe.py count   BACKEND NETWORK            addresses of NETWORK the firewall drops (JSON: count, unhooked)
  probe.py target  BACKEND NETWORK            where the bans of NETWORK are (the set, or one iptables rule)
  probe.py wait    BACKEND NETWORK COUNT LIMIT_S
                                              polls until the firewall drops COUNT of them (JSON)
  probe.py restart BACKEND NETWORK COUNT LIMIT_S [UNIT...]
                                              `systemctl restart UNIT...` (fail2ban), waiting meanwhile as
                                              `wait` does for sets made after the restart began
  probe.py memory  [UNIT...]                  resident memory of the units (fail2ban), NGINX's zones (JSON)
  probe.py fill    BACKEND NETWORK COUNT
                                              tops the firewall up to COUNT addresses of NETWORK, in the
                                              shape the ban action left (same set / same rule)
  probe.py toggle  BACKEND NETWORK PAIRS WINDOW_S DELAY_S
                                              after DELAY_S, PAIRS times: WINDOW_S with 0 bans in effect (the
                                              blocking rules on an empty twin set, or a RETURN atop the ban
                                              chains), then WINDOW_S with the N held

BACKEND is nftables or iptables-multiport. Counting reads the ruleset as the kernel holds it (`nft list
ruleset`, `iptables-save`): an address counts once it drops packets, whatever fail2ban reports - that is,
when it is in a set that a rule of a hooked chain (or one it jumps to) drops or rejects with, or in a
DROP/REJECT rule of a chain INPUT reaches. Set elements may be ranges or prefixes (interval sets).
"""

import ipaddress
import json
import re
import socket
import struct
import subprocess
import sys
import threading
import time

ADDRESS = r"\d{1,3}(?:\.\d{1,3}){3}"
ELEMENT = re.compile(r"(%s)(?:-(%s)|/(\d{1,2}))?" % (ADDRESS, ADDRESS))
HANDLE = re.compile(r"# handle (\d+)")
ENV = {"LC_ALL": "C", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}


def ruleset(backend):
    # -a: with handles, which tell a set made after a restart from the one it replaced.
    argv = ["nft", "-a", "list", "ruleset"] if backend == "nftables" else ["iptables-save", "-t", "filter"]
    # stderr: nft warns about tables that iptables-nft manages (Docker's DNS rules); not our business.
    return subprocess.run(argv, check=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          universal_newlines=True, env=ENV).stdout


def handle_of(line):
    """The handle that `nft -a` prints at the end of a line ('table inet t { # handle 7'), else None."""
    match = HANDLE.search(line)
    return int(match.group(1)) if match else None


def nft_tables(text):
    """{(family, table): {"sets": {name: [lines]}, "chains": {name: [lines]}, "handles": {...}}} from `nft
    [-a] list ruleset` text; "handles" holds the table's handle (key None) and its sets' (key: name)."""
    tables, table, block, depth = {}, None, None, 0
    for line in text.splitlines():
        words = line.split()
        if depth == 0 and words[:1] == ["table"] and len(words) >= 3:
            table = tables.setdefault((words[1], words[2]), {"sets": {}, "chains": {}, "handles": {}})
            table["handles"][None] = handle_of(line)
        elif depth == 1 and table is not None and words[:1] in (["set"], ["map"], ["chain"]) and len(words) >= 2:
            kind = "chains" if words[0] == "chain" else "sets"
            block = table[kind].setdefault(words[1], [])
            if kind == "sets":
                table["handles"][words[1]] = handle_of(line)
        elif block is not None and depth >= 2:
            block.append(line.strip())
        depth += line.count("{") - line.count("}")
        if depth <= 1:
            block = None
        if depth <= 0:
            table, depth = None, 0
    return tables


def hooked_chains(chains):
    """Names of the chains packets reach: base chains on a hook, and chains they jump or go to."""
    reached = [name for name, lines in chains.items() if any(" hook " in " %s " % line for line in lines[:1])]
    for name in reached:
        for line in chains[name]:
            words = line.replace(";", " ").split()
            for verb, target in zip(words, words[1:]):
                if verb in ("jump", "goto") and target in chains and target not in reached:
                    reached.append(target)
    return reached


def blocking_sets(table):
    """Sets of a table that a reached chain's rule drops or rejects packets from (`... saddr @set ... drop`)."""
    used = []
    for name in hooked_chains(table["chains"]):
        for line in table["chains"][name]:
            words = line.split()
            if not set(words) & {"drop", "reject"}:
                continue
            for word in words:
                if word.startswith("@") and word[1:] in table["sets"] and word[1:] not in used:
                    used.append(word[1:])
    return used


def ipv4_int(text):
    """An IPv4 address as nft prints it, as an integer (without ipaddress: 100,000 per read)."""
    return struct.unpack("!I", socket.inet_aton(text))[0]


def span(match):
    """(first, last) address of an ELEMENT match as integers: an address, a range or a prefix."""
    first = ipv4_int(match.group(1))
    if match.group(2):
        return first, ipv4_int(match.group(2))
    if match.group(3):
        return first, first + 2 ** (32 - int(match.group(3))) - 1
    return first, first


def addresses_in(text, network):
    """Addresses of `network` that the elements in `text` cover (addresses, ranges, prefixes)."""
    low, high = int(network.network_address), int(network.broadcast_address)
    total = 0
    for match in ELEMENT.finditer(text):
        first, last = span(match)
        total += max(0, min(last, high) - max(first, low) + 1)
    return total


def set_identity(family, table_name, table, set_name):
    """What tells a set from one of the same name made later: the kernel gives a new table and a new set a
    handle never used before in their netns and table (a set deleted and made again gets a new one)."""
    return (family, table_name, table["handles"].get(None), set_name, table["handles"].get(set_name))


def nft_sets(text):
    """The identities (set_identity) of every set in `nft -a list ruleset` text."""
    return frozenset(set_identity(family, name, table, set_name)
                     for (family, name), table in nft_tables(text).items() for set_name in table["sets"])


def nft_count(text, network, stale=frozenset()):
    """(addresses of `network` in sets that a hooked chain blocks with, those in sets that none uses).

    Sets whose identity is in `stale` (those that existed before a restart) count as neither."""
    blocking = unused = 0
    for (family, table_name), table in nft_tables(text).items():
        used = blocking_sets(table)
        for name, lines in table["sets"].items():
            if stale and set_identity(family, table_name, table, name) in stale:
                continue
            held = addresses_in("\n".join(line for line in lines if not line.startswith("type ")), network)
            if name in used:
                blocking += held
            else:
                unused += held
    return blocking, unused


def iptables_reached(text):
    """Chains of `iptables-save` text that INPUT reaches (INPUT itself, and chains it jumps to)."""
    jumps = {}
    for line in text.splitlines():
        words = line.split()
        if words[:1] == ["-A"]:
            jumps.setdefault(words[1], []).extend(words[words.index("-j") + 1:][:1] if "-j" in words else [])
    # A target is a chain when some -A line fills it (DROP, REJECT, RETURN never are); one pass per rule.
    reached = ["INPUT"]
    seen = set(reached)
    index = 0
    while index < len(reached):  # grows while it is walked: the chains INPUT reaches, breadth first
        for target in jumps.get(reached[index], ()):
            if target not in seen and target in jumps:
                seen.add(target)
                reached.append(target)
        index += 1
    return reached


def iptables_count(text, network):
    """(addresses of `network` that rules reached from INPUT drop or reject, those in rules not reached)."""
    reached = iptables_reached(text)
    blocking = unused = 0
    for line in text.splitlines():
        words = line.split()
        if words[:1] != ["-A"] or "-s" not in words or "-j" not in words:
            continue
        if words[words.index("-j") + 1] not in ("DROP", "REJECT"):
            continue
        match = ELEMENT.fullmatch(words[words.index("-s") + 1].replace("/32", ""))
        held = addresses_in(match.group(0), network) if match else 0
        if words[1] in reached:
            blocking += held
        else:
            unused += held
    return blocking, unused


def count_detail(backend, network, stale=frozenset()):
    """{"count": addresses of `network` the firewall drops, "unhooked": those held where no packet looks}.

    `stale`: nftables set identities not to count (see nft_count)."""
    text = ruleset(backend)
    blocking, unused = nft_count(text, network, stale) if backend == "nftables" else iptables_count(text, network)
    return {"count": blocking, "unhooked": unused}


def count(backend, network, stale=frozenset()):
    """Addresses of `network` the firewall drops: in a set or rule that a hooked chain uses."""
    return count_detail(backend, network, stale)["count"]


def traced_read(network, trace, stale, clock):
    """One read of the nftables ruleset, recorded in `trace` as [read start, read end, addresses any set
    drops]: (the ruleset text, the addresses dropped by sets not in `stale`)."""
    started = clock()
    text = ruleset("nftables")
    dropped = nft_count(text, network)[0]
    trace.append([started, clock(), dropped])
    return text, nft_count(text, network, stale)[0] if stale else dropped


def wait(backend, network, wanted, limit_s, clock=time.time, pause=time.sleep, stale=frozenset, trace=None):
    """Polls until the first `wanted` addresses of `network` are in the firewall, or `limit_s` passed.

    The moment reported is when the confirming read had *finished* ("epoch"); the bans were complete at
    some moment after the previous read started ("epoch_lower"; the wait's start when the first read
    confirms), so "uncertainty_s" = epoch - epoch_lower includes the poll's own length and its pause.

    Every poll is a whole count (a read of 100,000 nftables elements takes about 0.6 s; `nft get element`
    of a sample is no cheaper, since nft reads the whole set for it). `stale()`: the set identities not
    to count at this poll (restart). `count` is None when the limit passed (the caller counts once bans stop).
    `trace` (nftables): a list that gets [read start, read end, addresses dropped by any set] per poll.
    """
    started = clock()
    lower = started
    polls = 0
    while True:
        read_started = clock()
        polls += 1
        if trace is not None and backend == "nftables":
            held = traced_read(network, trace, stale(), clock)[1]
        else:
            held = count(backend, network, stale()) if backend == "nftables" else count(backend, network)
        read_ended = clock()
        if held is not None and held >= wanted:
            return {"count": held, "wanted": wanted, "done": True, "polls": polls, "epoch": read_ended,
                    "epoch_lower": lower, "seconds": round(read_ended - started, 3),
                    "uncertainty_s": round(read_ended - lower, 3), "last_poll_s": round(read_ended - read_started, 3)}
        if read_ended - started >= limit_s:
            return {"count": None, "wanted": wanted, "seconds": round(read_ended - started, 3), "done": False,
                    "polls": polls, "epoch": read_ended}
        lower = read_started
        # Polling costs CPU that the bans need too (2 cores); iptables-save of a long chain is costly.
        pause(0.2 if backend != "nftables" and wanted > 1000 else 0.02)


def restart(backend, network, wanted, limit_s, units=("fail2ban",)):
    """Restarts `units`; times from the restart's start until the firewall holds `wanted` addresses again.

    nftables: the wait runs while `systemctl restart` does (it returns only when fail2ban's ExecStartPost
    has seen every restored ban listed, seconds after the firewall held them) and counts only sets made
    since the restart began; once the command has returned, every set counts (a daemon that keeps its set
    over a restart). iptables rules have no handles: there the wait starts when the command has returned.
    """
    trace = []
    if backend == "nftables":
        before = nft_sets(traced_read(network, trace, frozenset(), time.time)[0])
    else:
        before = frozenset()
    ended = {}

    def run():
        done = subprocess.run(["systemctl", "restart", *units], env=ENV, check=False)
        ended.update(epoch=time.time(), rc=done.returncode)

    restart_epoch = time.time()
    command = threading.Thread(target=run)
    command.start()
    if backend != "nftables":
        command.join()
    result = wait(backend, network, wanted, limit_s, stale=lambda: before if command.is_alive() else frozenset(),
                  trace=trace if backend == "nftables" else None)
    command.join()
    if ended["rc"]:
        raise SystemExit("systemctl restart %s failed (rc %s)" % (" ".join(units), ended["rc"]))
    result.update(restart_epoch=restart_epoch, restart_command_s=round(ended["epoch"] - restart_epoch, 3))
    if backend == "nftables":
        result["unenforced"] = enforcement_gap(trace, wanted)
    return result


def enforcement_gap(trace, wanted):
    """How long fewer than `wanted` addresses were dropped, from reads [start, end, dropped] in order.

    A read is a snapshot at some moment between its start and end. The gap runs from the last read that
    saw all (before the first that did not) to the first that saw all again: at most the later one's end
    minus the earlier one's start ("upper_s"), at least the last short read's start minus the first short
    read's end ("lower_s", 0 when one read saw it). No short read: none seen ("reads_short": 0), which
    bounds a gap, if any, by the polls' spacing. Not whole again by the last read: "closed" False.
    """
    short = [index for index, read in enumerate(trace) if read[2] < wanted]
    if not short:
        return {"reads_short": 0, "closed": True, "upper_s": 0.0, "lower_s": 0.0}
    first = short[0]
    again = next((index for index in range(first + 1, len(trace)) if trace[index][2] >= wanted), None)
    if again is None or first == 0:
        return {"reads_short": len(short), "closed": again is not None, "upper_s": None, "lower_s": None,
                "least_dropped": min(trace[index][2] for index in short)}
    last_short = again - 1
    return {"reads_short": again - first, "closed": True,
            "upper_s": round(trace[again][1] - trace[first - 1][0], 3),
            "lower_s": round(max(0.0, trace[last_short][0] - trace[first][1]), 3),
            "least_dropped": min(trace[index][2] for index in range(first, again))}


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


def memory(units=("fail2ban",)):
    """Resident memory (kB) of each unit's main process, and NGINX's shared zones."""
    rss = {}
    for unit in units:
        pid = main_pid(unit)
        rss[unit] = rss_kb(pid) if pid else None
    return {"rss_kb": rss, "nginx_zones": nginx_zones()}


def set_elements(text, network):
    """{(family, table, set): [single addresses of `network`]} of the sets a hooked chain blocks with."""
    found = {}
    for (family, table), parts in nft_tables(text).items():
        for name in blocking_sets(parts):
            for match in ELEMENT.finditer("\n".join(parts["sets"][name])):
                if not match.group(2) and not match.group(3) and ipaddress.IPv4Address(match.group(1)) in network:
                    found.setdefault((family, table, name), []).append(match.group(1))
    return found


def banned_source(line, network):
    """The address of `network` that an `iptables-save` rule line (-A ...) bans, else None."""
    match = re.search(r"-s (%s)/32 " % ADDRESS, line) if line.startswith("-A ") else None
    if match and ipaddress.IPv4Address(match.group(1)) in network:
        return match.group(1)
    return None


def target(backend, network, text=None):
    """Where bans of `network` go, copied from the one fail2ban (or a bouncer) made: for nftables the
    blocking set that holds them ([family, table, set]), for iptables one of its rules; None if none does."""
    text = ruleset(backend) if text is None else text
    if backend == "nftables":
        held = set_elements(text, network)
        return list(next(iter(held))) if held else None
    return next((line for line in text.splitlines() if banned_source(line, network)), None)


def nft_elements(verb, family, table, set_name, addresses):
    """`nft add|delete element` for addresses, 5,000 per transaction."""
    for index in range(0, len(addresses), 5000):
        script = "%s element %s %s %s { %s }\n" % (verb, family, table, set_name, ", ".join(addresses[index:index + 5000]))
        subprocess.run(["nft", "-f", "-"], input=script, check=True, universal_newlines=True, env=ENV)


def fill(backend, network, wanted):
    """Adds addresses of `network` (in order, skipping those held) until the firewall holds `wanted`, in
    the set or rule shape of a ban the system made (target)."""
    text = ruleset(backend)
    where = target(backend, network, text)
    if where is None:
        raise SystemExit("no firewall set or rule holds addresses of %s yet: ban one first" % network)
    if backend == "nftables":
        held = {address for addresses in set_elements(text, network).values() for address in addresses}
        current = nft_count(text, network)[0]
    else:
        reached = iptables_reached(text)
        held = {banned_source(line, network) for line in text.splitlines()
                if banned_source(line, network) and line.split()[1] in reached}
        current = iptables_count(text, network)[0]
    missing = []
    for address in network.hosts():
        if current + len(missing) >= wanted:
            break
        if str(address) not in held:
            missing.append(str(address))
    started = time.monotonic()
    if backend == "nftables":
        nft_elements("add", *where, missing)
    else:
        # Inserted at the top, as fail2ban's iptables actionban does (-I <chain> 1): appended after
        # the chain's final RETURN, a rule would never be looked at.
        chain = where.split()[1]
        inserted = re.sub(r"^-A %s " % re.escape(chain), "-I %s 1 " % chain, where)
        for index in range(0, len(missing), 5000):
            lines = ["*filter"] + [re.sub(r"-s %s/32 " % ADDRESS, "-s %s/32 " % item, inserted, count=1)
                                   for item in missing[index:index + 5000]] + ["COMMIT", ""]
            subprocess.run(["iptables-restore", "--noflush"], input="\n".join(lines), check=True,
                           universal_newlines=True, env=ENV)
    return {"added": len(missing), "seconds": round(time.monotonic() - started, 3),
            "count": count(backend, network), "target": where}


def nft(script):
    subprocess.run(["nft", "-f", "-"], input=script, check=True, universal_newlines=True, env=ENV)


def blocking_rules(family, table, sets):
    """[(chain, handle, rule text)] of the hooked chains' rules of a table that block with one of `sets`."""
    text = subprocess.run(["nft", "-a", "list", "table", family, table], check=True, stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, universal_newlines=True, env=ENV).stdout
    parts = nft_tables(text)[(family, table)]
    found = []
    for chain in hooked_chains(parts["chains"]):
        for line in parts["chains"][chain]:
            match = re.match(r"^(.*\S)\s+# handle (\d+)$", line)
            if match and set(match.group(1).split()) & {"drop", "reject"} and \
                    any("@" + name in match.group(1).split() for name in sets):
                found.append((chain, match.group(2), re.sub(r"counter packets \d+ bytes \d+", "counter", match.group(1))))
    return found, parts


def nft_switches(network):
    """(A, B, undo) for toggle on nftables: A points every rule that blocks with a set holding addresses of
    `network` at an empty twin of that set (0 bans), B back at the set (N bans); undo deletes the twins."""
    text = ruleset("nftables")
    held = set_elements(text, network)
    if not held:
        raise SystemExit("no blocking set holds addresses of %s: nothing to compare" % network)
    tables = nft_tables(text)
    switch = {"A": [], "B": []}
    twins = []
    for (family, table, name) in held:
        declaration = [line for line in tables[(family, table)]["sets"][name]
                       if line.split()[:1] in (["type"], ["flags"])]
        twin = name + "-bench0"
        twins.append((family, table, twin))
        nft("add set %s %s %s { %s }\n" % (family, table, twin, " ".join(line.rstrip(";") + ";" for line in declaration)))
        rules, _parts = blocking_rules(family, table, [name])
        for chain, handle, rule in rules:
            words = rule.split()
            emptied = " ".join("@" + twin if word == "@" + name else word for word in words)
            switch["A"].append("replace rule %s %s %s handle %s %s" % (family, table, chain, handle, emptied))
            switch["B"].append("replace rule %s %s %s handle %s %s" % (family, table, chain, handle, rule))
    return ((lambda: nft("\n".join(switch["A"]) + "\n")), (lambda: nft("\n".join(switch["B"]) + "\n")),
            (lambda: nft("".join("delete set %s %s %s\n" % twin for twin in twins))), len(switch["B"]))


def iptables_switches(network):
    """(A, B, undo) for toggle on iptables: A puts a RETURN at the top of every chain INPUT reaches that
    bans addresses of `network` (packets jump in and straight back: 0 bans), B takes it out (N bans)."""
    text = ruleset("iptables-multiport")
    reached = set(iptables_reached(text))
    chains = sorted({line.split()[1] for line in text.splitlines()
                     if banned_source(line, network) and line.split()[1] in reached})
    if not chains:
        raise SystemExit("no chain INPUT reaches bans addresses of %s: nothing to compare" % network)

    def restore(verb):
        script = ["*filter"] + ["%s %s 1%s" % (verb, chain, " -j RETURN" if verb == "-I" else "") for chain in chains]
        subprocess.run(["iptables-restore", "--noflush"], input="\n".join(script + ["COMMIT", ""]), check=True,
                       universal_newlines=True, env=ENV)

    state = {"A": False}

    def switch_a():
        restore("-I")
        state["A"] = True

    def switch_b():
        if state["A"]:
            restore("-D")
            state["A"] = False
    return switch_a, switch_b, (lambda: None), len(chains)


def toggle(backend, network, pairs, window_s, delay_s, clock=time.monotonic, pause=time.sleep):
    """Interleaved A B pairs on the live ruleset: A with 0 bans in effect, B with the N that are held
    (nft_switches, iptables_switches); each state lasts window_s after its switch. Returns each switch's
    moments [state, began, done] (CLOCK_MONOTONIC, shared by all containers): a window runs from one
    switch's end to the next one's start.

    A switch is one small transaction (nft: rule replaces; iptables-nft: a rule in or out at the top of
    each ban chain), so the two states follow each other closely and the machine's drift cancels out of
    each pair. The original ruleset is back at the end, also on errors.
    """
    switch_a, switch_b, undo, rules = (nft_switches if backend == "nftables" else iptables_switches)(network)
    switches = {"A": switch_a, "B": switch_b}
    moments = []
    try:
        pause(delay_s)
        for _pair in range(pairs):
            for state in ("A", "B"):
                began = clock()
                switches[state]()
                moments.append([state, began, clock()])
                pause(window_s)
    finally:
        began = clock()
        switch_b()
        moments.append(["end", began, clock()])
        undo()
    return {"moments": moments, "rules": rules, "count": count(backend, network)}


def main(argv):
    command = argv[0]
    if command == "memory":
        result = memory(argv[1:] or ("fail2ban",))
    else:
        backend, network = argv[1], ipaddress.IPv4Network(argv[2])
        if command == "count":
            result = count_detail(backend, network)
        elif command == "target":
            result = {"target": target(backend, network)}
        elif command == "wait":
            result = wait(backend, network, int(argv[3]), float(argv[4]))
        elif command == "restart":
            result = restart(backend, network, int(argv[3]), float(argv[4]), argv[5:] or ("fail2ban",))
        elif command == "fill":
            result = fill(backend, network, int(argv[3]))
        elif command == "toggle":
            result = toggle(backend, network, int(argv[3]), float(argv[4]), float(argv[5]))
        else:
            raise SystemExit("unknown command %r: count, target, wait, restart, memory, fill or toggle" % command)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
