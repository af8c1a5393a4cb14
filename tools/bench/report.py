# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Turns the benchmark's results.json into results.md (Markdown tables) and timeline.png.

Every figure and every setting in the prose comes from results.json (its "settings" and "goals").

  python3 tools/bench/report.py bench/results/<stamp>/results.json   re-renders results.md and timeline.png
"""

import json
import os
import sys

import botnet
import detection
import heal
import lb
import operator_path
import sync
import waf
from stats import spread, summarize


def seconds(value):
    if value is None:
        return "–"
    return "%.0f ms" % (value * 1000) if value < 1 else "%.2f s" % value if value < 10 else "%.1f s" % value


def count(value):
    return format(int(value), ",")


def goal_check(value, limit):
    return "met" if value is not None and value < limit else "**not met**"


def table(header, rows):
    """A Markdown table and the blank line after it."""
    return (["| %s |" % " | ".join(header), "|%s" % ("---|" * len(header))]
            + ["| %s |" % " | ".join(row) for row in rows] + [""])


def systems(results):
    return results["settings"].get("systems") or results["settings"].get("actions") or []


def label(results, system):
    return (results["settings"].get("system_labels") or {}).get(system, system)


def actions_in(results, key):
    """The systems measured in results[key], in the order the run compared them."""
    return [system for system in systems(results) if system in (results.get(key) or {})]


def sizes_in(section):
    return sorted({int(size) for entries in section.values() for size in entries})


def timed_cell(entry, key):
    """A scale/restore cell: the spread of finished runs, or how far an unfinished one got."""
    if not entry:
        return "not run"
    summary = entry.get(key + "_summary") or {}
    parts = [part for part in [spread(summary, seconds)] if part]
    for run in summary.get("unfinished", []):
        parts.append("**not finished in %s s** (%s of %s done)" % (run.get("cap_s") or "?", count(run["count"]),
                                                                   count(run["of"])))
    skipped = [run["skipped"] for run in entry.get(key, []) if run.get("skipped")]
    if not parts and (skipped or entry.get("skipped")):
        parts.append("not measured: " + skipped[0] if skipped else entry["skipped"])
    if entry.get("cut"):
        parts.append("only " + entry["cut"])
    return "; ".join(parts) if parts else "not run"


def goals_text(goals, key):
    return " and ".join("%s in under %g s" % (count(size), limit) for size, limit in sorted(
        goals[key].items(), key=lambda item: int(item[0])))


def title(results):
    """The page's title: the lead table (lead_section) follows it directly."""
    return ["# Benchmarks", "",
            "Latest results of `make bench` (tools/bench/run.py; the numbers below are generated, do not edit them "
            "by hand). The run, the machine and its load are described below the summary.", ""]


def header(results):
    """The run: when, what, on which machine and under which load; the run's notes."""
    machine = results.get("machine", {})
    names = systems(results)
    lines = [
        "## The run", "",
        "- Date: %s; whole run %s min." % (results.get("started"), round(results.get("wall_s", 0) / 60.0, 1)),
        "- Command: `%s`" % results.get("command"),
        "- Machine: %s CPUs (%s), %s GiB memory, Linux %s, %s." % (
            machine.get("nproc"), machine.get("cpu"), machine.get("memory_gib"), machine.get("kernel"),
            machine.get("host_distro")),
        "- Test hosts: Docker containers with systemd on that machine (%s): %s, %s, %s, %s." % (
            machine.get("testbed_distro"), machine.get("fail2ban"), machine.get("nginx"), machine.get("nft"),
            machine.get("iptables")),
        "- Peer: %s, %s (Debian's packages)." % (machine.get("crowdsec", "CrowdSec not run"),
                                                 machine.get("crowdsec_bouncer", "")),
        "- Figures: median (min–max, number of runs) over repeated runs; %s measured in the same run, on the "
        "same hosts and floods." % "; ".join(label(results, name) for name in names),
    ]
    load = results.get("load_average")
    if load:
        lines.append("- Load average (1 min) of the machine at the start and end of the run: %s and %s (%s CPUs). It "
                     "counts the bench's own floods and daemons too (the run ends with botnet floods); at the start, "
                     "above the CPU count means other work was competing with the bench." % (
                         load.get("start"), load.get("end"), machine.get("nproc")))
    lines.append("")
    notes = ["> Note: %s" % note for note in results.get("notes", [])]
    return lines + notes + ([""] if notes else [])


# ---- the lead table: one row per figure, one column per system, ours against the best peer --------------

def scale_median(results, system, size, key):
    """Median seconds of `key` (ban, restore) at `size`; None when no run finished or any was capped."""
    summary = (((results.get("scale") or {}).get(system) or {}).get(str(size)) or {}).get(key + "_summary") or {}
    return None if summary.get("unfinished") else summary.get("median")


def task_median(results, system, size):
    runs = (((results.get("scale") or {}).get(system) or {}).get(str(size)) or {}).get("ban", [])
    return summarize([run.get("task_s") for run in runs]).get("median")


def memory_median(results, system, size):
    """Median RSS at `size` bans; None when the bans did not all get there (the memory is of fewer)."""
    entry = ((results.get("scale") or {}).get(system) or {}).get(str(size)) or {}
    if (entry.get("ban_summary") or {}).get("unfinished"):
        return None
    samples = entry.get("memory", [])
    return summarize([sample.get("rss_mib", sample.get("fail2ban_rss_mib")) for sample in samples]).get("median")


def latency_value(results, system, key):
    return (((results.get("latency") or {}).get(system) or {}).get("summary") or {}).get(key)


def botnet_summary(results, system, size):
    return (((((results.get("botnet") or {}).get(system) or {}).get("sizes") or {}).get(str(size)) or {})
            .get("summary") or {})


def botnet_median(results, system, size):
    """Median seconds to 99 % banned at `size` addresses; None when a flood did not get there within the cap."""
    summary = botnet_summary(results, system, size)
    return None if summary.get("unfinished") else summary.get("median")


def botnet_sizes(results):
    return sorted({int(size) for entry in (results.get("botnet") or {}).values() for size in entry.get("sizes", {})})


def per_second(value):
    return "%d/s" % value


def figure_rows(results):
    """(name, {system: value}, formatter): the figures of the lead table; lower is better for each."""
    rows = [("attack-to-drop p50", {system: latency_value(results, system, "p50") for system in systems(results)},
             seconds),
            ("attack-to-drop p95", {system: latency_value(results, system, "p95") for system in systems(results)},
             seconds)]
    for size in sizes_in(results.get("scale") or {}):
        rows.append(("ban %s until dropped" % count(size),
                     {system: scale_median(results, system, size, "ban") for system in systems(results)}, seconds))
        rows.append(("ban %s: task / import time" % count(size),
                     {system: task_median(results, system, size) for system in systems(results)}, seconds))
        rows.append(("restore %s after a restart" % count(size),
                     {system: scale_median(results, system, size, "restore") for system in systems(results)}, seconds))
    sizes = sizes_in(results.get("scale") or {})
    if sizes:
        rows.append(("resident memory at %s bans" % count(sizes[-1]),
                     {system: memory_median(results, system, sizes[-1]) for system in systems(results)}, mib))
    for size in botnet_sizes(results):
        rows.append(("botnet of %s addresses: 99 %% banned after" % count(size),
                     {system: botnet_median(results, system, size) for system in systems(results)}, seconds))
        rows.append(("botnet of %s addresses: upstream's peak requests" % count(size),
                     {system: botnet_summary(results, system, size).get("upstream_peak_rps_max")
                      for system in systems(results)}, per_second))
    return rows


def row_summary(results, system, name):
    """(summary of the runs, their cap or None) behind a lead-table row of repeated runs (ban, its task time,
    restore, botnet); None for the other rows (a percentile or a single sample)."""
    words = name.split()
    if words[0] == "botnet" and "banned" in name:
        cap = ((results["settings"].get("phases") or {}).get("botnet") or {}).get("cap_s")
        return botnet_summary(results, system, words[2].replace(",", "")), cap
    if words[0] in ("ban", "restore"):
        entry = (((results.get("scale") or {}).get(system) or {}).get(words[1].replace(",", "")) or {})
        if "task" in name:
            return summarize([run.get("task_s") for run in entry.get("ban", [])]), None
        return entry.get(words[0] + "_summary") or {}, None
    return None


def capped_cell(results, system, name):
    """'> 20 s (2,132 of 10,000)' for a ban or restore row whose runs did not finish; None otherwise."""
    summary, cap = row_summary(results, system, name) or ({}, None)
    unfinished = summary.get("unfinished") or []
    if not unfinished:
        return None
    run = unfinished[0]
    return "> %s s (%s of %s)" % (run.get("cap_s") or cap or "?", count(run["count"]), count(run["of"]))


def run_range(results, system, name):
    """(fastest, slowest) of the runs behind a lead-table median of repeated runs; None for the other rows
    or without finished runs."""
    summary = (row_summary(results, system, name) or ({}, None))[0]
    if summary.get("min") is None or summary.get("max") is None:
        return None
    return summary["min"], summary["max"]


def standing(results, name, values, ours, best):
    """leads, trails, or ties: the same median, or runs whose ranges overlap (the medians' order is noise)."""
    mine, theirs = run_range(results, ours, name), run_range(results, best, name)
    if values[ours] == values[best] or (mine and theirs and mine[0] <= theirs[1] and theirs[0] <= mine[1]):
        return "ties"
    return "leads" if values[ours] < values[best] else "trails"


def ratio(values, ours):
    """ours / the best (lowest) peer, e.g. '0.25×'; '–' without both."""
    peers = [value for system, value in values.items() if system != ours and value is not None]
    if values.get(ours) is None or not peers or not min(peers):
        return "–"
    return "%.2f×" % (values[ours] / min(peers))


def change_cell(entry):
    ci = (entry.get("change") or {}).get("ci95") if entry else None
    if not ci:
        return "–"
    return "%+.1f%% [%+.1f, %+.1f]: %s" % (ci["mean"] * 100, ci["low"] * 100, ci["high"] * 100, entry["verdict"])


def lead_section(results):
    ours = results["settings"].get("ours", "floodguard")
    names = systems(results)
    lines = ["## Summary", "",
             "Lower is better in every row but the per-packet one. Times end when the confirming read of the "
             "firewall had finished (sections below give each one's read uncertainty). **Ratio**: %s divided by "
             "the best peer (under 1: %s leads)." % (ours, ours), ""]
    rows = []
    for name, values, fmt in figure_rows(results):
        if all(value is None for value in values.values()):
            continue
        rows.append([name] + [fmt(values[system]) if values[system] is not None else
                              capped_cell(results, system, name) or "–" for system in names]
                    + [ratio(values, ours)])
    for size in sizes_in(results.get("perpacket") or {}):
        rows.append(["per-packet change at %s bans (95 %% interval)" % count(size)]
                    + [change_cell(((results.get("perpacket") or {}).get(system) or {}).get(str(size)))
                       for system in names] + ["–"])
    return lines + table(["Figure"] + [label(results, system) for system in names] + ["Ratio"], rows)


# Why a figure comes out as it does, per kind of figure (the first word of a lead-table row).
REASONS = {
    "attack-to-drop": "fail2ban's threads wait in sleep steps of 0.2 s (fail2ban.server.utils.Utils, "
                      "DEFAULT_SLEEP_INTERVAL), its log reader and its actions thread alike; floodguard's action "
                      "sets the step to 20 ms and caps the actions thread's wait at one step, the stock systems "
                      "keep 0.2 s; CrowdSec's decision reaches the firewall only at the bouncer's next poll of its "
                      "local API (10 s by default, 1 s tuned)",
    "ban": "floodguard's action writes a burst of bans as one nftables transaction; fail2ban's stock actions run "
           "one nft or iptables process per ban (and iptables walks its chain on every change); CrowdSec's bouncer "
           "takes new decisions at its next poll",
    "restore": "floodguard's action loads the jail's bans from fail2ban's database into its sets in one "
               "transaction as it starts; the stock actions get them from fail2ban one ticket at a time; CrowdSec's "
               "bouncer fetches every decision at start-up and adds them in one go",
    "botnet": "floodguard's upstream guard caps what reaches the API and prefix escalation bans a /24 or /64 "
              "at once; fail2ban reads the log in one thread, the pace at 10,000 addresses; CrowdSec's stock "
              "scenario bans an address at its sixth rejection, the recipe's jail at its second",
    "resident": "fail2ban holds a Python ticket per ban; CrowdSec's two Go daemons carry their own baseline",
    "per-packet": "a ban set is a hash lookup whatever its size; iptables-multiport walks one rule per ban for every "
                  "packet that reaches its chain",
}


def sentence(text):
    return text[:1].upper() + text[1:]


def closing_section(results):
    """Figure by figure: where floodguard leads and where it trails the best peer, and why."""
    ours = results["settings"].get("ours", "floodguard")
    lines = []
    for name, values, fmt in figure_rows(results):
        peers = {system: value for system, value in values.items() if system != ours and value is not None}
        if values.get(ours) is None or not peers:
            continue
        best = min(peers, key=peers.get)
        verb = standing(results, name, values, ours, best)
        lines.append("- %s: %s %s (%s against %s for %s). %s." % (
            name, ours, verb, fmt(values[ours]), fmt(peers[best]), label(results, best),
            sentence(REASONS.get(name.split()[0], ""))))
    for size in sizes_in(results.get("perpacket") or {}):
        entry = ((results.get("perpacket") or {}).get(ours) or {}).get(str(size))
        if entry:
            lines.append("- per-packet at %s bans: %s. %s." % (
                count(size), change_cell(entry), sentence(REASONS["per-packet"])))
    return ["## Where floodguard leads and trails", ""] + lines + [""] if lines else []


def goal_line(text, value, limit, fmt=None):
    fmt = fmt or seconds
    shown = fmt(value) if value is not None else "not measured"
    return "- %s: %s (goal < %s): %s" % (text, shown, fmt(limit), goal_check(value, limit))


def goals_section(results):
    """The raised goals of the default setup (settings.GOALS), each with what this run measured."""
    ours = results["settings"].get("ours", "floodguard")
    goals = results["goals"]
    lines = ["## Goals of the default setup", ""]
    if latency_value(results, ours, "p95") is not None and "latency_p95_s" in goals:
        lines.append(goal_line("attack-to-drop p95", latency_value(results, ours, "p95"), goals["latency_p95_s"]))
    for size, limit in sorted(goals.get("ban_s", {}).items(), key=lambda item: int(item[0])):
        if str(size) in ((results.get("scale") or {}).get(ours) or {}):
            lines.append(goal_line("%s bans until the firewall holds them" % count(size),
                                   scale_median(results, ours, size, "ban"), limit))
    for size, limit in sorted(goals.get("ban_task_s", {}).items(), key=lambda item: int(item[0])):
        if str(size) in ((results.get("scale") or {}).get(ours) or {}):
            lines.append(goal_line("%s bans: fail2ban_ban task time" % count(size),
                                   task_median(results, ours, size), limit))
    for size, limit in sorted(goals.get("restore_s", {}).items(), key=lambda item: int(item[0])):
        if str(size) in ((results.get("scale") or {}).get(ours) or {}):
            lines.append(goal_line("restore of %s" % count(size), scale_median(results, ours, size, "restore"), limit))
    operator = (results.get("operator") or {}).get(ours)
    limit = (goals.get("operator_s") or {}).get(str((operator or {}).get("size")))
    if operator and limit:
        lines.append(goal_line("%s bans through ban.yml and ansible-runner" % count(operator["size"]),
                               operator["summary"].get("median"), limit))
    memory = [(size, memory_median(results, ours, size)) for size in sizes_in(results.get("scale") or {})]
    if memory and memory[-1][1] is not None:
        lines.append("- fail2ban's resident memory at %s bans: %s (reported, no goal)" % (
            count(memory[-1][0]), mib(memory[-1][1])))
    within = goals.get("perpacket_within")
    for size in sizes_in(results.get("perpacket") or {}):
        entry = ((results.get("perpacket") or {}).get(ours) or {}).get(str(size))
        if entry and within is not None:
            lines.append("- no per-packet cost at %s bans that a ±%g%% interval can see: %s (%s)" % (
                count(size), within * 100, "met" if entry["verdict"] == "none" else "**not met**", change_cell(entry)))
    return lines + [""] if len(lines) > 2 else []


def latency_row(results, system, entry, goal):
    summary = entry["summary"]
    return [label(results, system),
            "%d%s" % (summary["n"], " (+%d failed)" % entry["failed_runs"] if entry["failed_runs"] else ""),
            seconds(summary.get("p50")), seconds(summary.get("p95")),
            "%s–%s" % (seconds(summary.get("min")), seconds(summary.get("max"))),
            seconds((entry.get("uncertainty_s") or {}).get("max")),
            seconds(entry["reject_to_fail2ban_ban_s"].get("median")),
            seconds((entry.get("reject_to_found_s") or {}).get("median")),
            seconds((entry.get("found_to_last_found_s") or {}).get("median")),
            seconds((entry.get("found_to_ban_s") or {}).get("median")),
            seconds(entry["fail2ban_ban_to_drop_s"].get("median")), goal_check(summary.get("p95"), goal)]


def latency_section(results):
    if not results.get("latency"):
        return []
    goal = results["goals"]["latency_p95_s"]
    rows = [latency_row(results, system, results["latency"][system], goal) for system in actions_in(results, "latency")]
    return ["## 1. Attack-to-drop latency", "",
            "From the attacker's first rejected request (HTTP 429) to its first request whose packets the "
            "firewall drops. Uncertainty: the drop began after the previous request was sent, at most one start "
            "interval (1 / rate) or one request's cycle (p90 of the answered ones) earlier. Goal: p95 under %s s. CrowdSec's "
            "log has whole seconds only, so its \"Ban\" split is not given. The split (medians, from fail2ban.log): "
            "rejection → the filter's first \"Found\" (reading NGINX's log line), → the jail's maxretry-th \"Found\" "
            "(NGINX rejecting the flood's next requests; the ticket is then due), that \"Found\" → \"Ban\" (the "
            "actions thread's wait for the due ticket), \"Ban\" → dropped (the action's flush into the firewall)."
            % goal, ""] + table(
        ["System", "Runs", "p50", "p95", "min–max", "uncertainty ≤", "rejection → fail2ban \"Ban\"",
         "rejection → \"Found\"", "→ maxretry-th \"Found\"", "\"Found\" → \"Ban\"", "\"Ban\" → dropped", "Goal"], rows)


def timeline_paragraph(results):
    timeline = results.get("timeline")
    if not timeline:
        return []
    parts = results["settings"]["phases"]["timeline"]
    calm, attack, client = parts["calm"], parts["attack"], parts["client"]
    first = next(iter(timeline.values()))
    return ["Requests per second around one ban, per system on a shared time axis: the attacker sends %s req/s "
            "(under the limit) for %s s, then %s req/s for %s s; an allowlisted client sends %s req/s throughout. "
            "Dropped requests are counted when they time out, %s s after they were sent. Plot: `timeline.png` next "
            "to results.json%s." % (
                calm["rate"], calm["duration_s"], attack["rate"], attack["duration_s"], client["rate"],
                first["timeout_s"], " and [benchmarks-timeline.png](benchmarks-timeline.png)" if results.get("docs")
                else ""), ""]


def scale_cells(results, size, key):
    return [timed_cell(results["scale"][system].get(str(size)), key) for system in actions_in(results, "scale")]


def task_times(results, size):
    cells = []
    for system in actions_in(results, "scale"):
        runs = (results["scale"][system].get(str(size)) or {}).get("ban", [])
        cells.append(", ".join(seconds(run["task_s"]) for run in runs if run.get("task_s") is not None) or "–")
    return cells


BAN_FORM_TEXT = {
    "text": "`ips` is one item holding all N addresses separated by spaces, as an AWX survey gives them",
    "list": "`ips` is a list of N items",
}


def scale_section(results):
    if not results.get("scale"):
        return []
    names = actions_in(results, "scale")
    sizes = sizes_in(results["scale"])
    recorded = results["settings"]
    jail_actions = "; ".join("%s → `%s`" % item for item in results.get("jail_actions", {}).items())
    return (["## 2. Ban scale", "",
             "N addresses of %s banned at once: fail2ban systems by one `fail2ban_ban` task in the `%s` jail "
             "(%s), CrowdSec by `cscli decisions import` of a CSV (`duration,value`). Timed from the task's (import's) "
             "start until a read of the firewall (`nft list ruleset` / `iptables-save`: elements of sets that a "
             "hooked chain drops with) that found all N had finished; \"read ≤\" is how much earlier they may have "
             "been complete. Goals: %s with the default setup. fail2ban action of the `%s` jail: %s." % (
                 recorded["ban_network"], recorded["manual_jail"], BAN_FORM_TEXT[recorded.get("ban_form", "list")],
                 goals_text(results["goals"], "ban_s"),
                 recorded["manual_jail"], jail_actions or "–"), ""]
            + table(["Bans"] + [label(results, name) for name in names],
                    [[count(size)] + scale_cells(results, size, "ban") for size in sizes])
            + ["Time of the `fail2ban_ban` task (CrowdSec: `cscli decisions import`) alone, per run:", ""]
            + table(["Bans"] + [label(results, name) for name in names],
                    [[count(size)] + task_times(results, size) for size in sizes]))


def gap_cell(run):
    """One restore run's stretch with fewer than N dropped (probe.enforcement_gap), as the report prints it."""
    gap = run.get("unenforced")
    if not gap:
        return None
    if gap["reads_short"] == 0:
        return "none seen"
    if not gap["closed"] or gap["upper_s"] is None:
        return "not whole again"
    return "%s–%s (down to %s dropped)" % (seconds(gap["lower_s"]), seconds(gap["upper_s"]), count(gap["least_dropped"]))


def gap_cells(results, size):
    cells = []
    for system in actions_in(results, "scale"):
        runs = (results["scale"][system].get(str(size)) or {}).get("restore", [])
        cells.append("; ".join(cell for cell in (gap_cell(run) for run in runs) if cell) or "–")
    return cells


def restore_section(results):
    if not results.get("scale"):
        return []
    gaps = [[count(size)] + gap_cells(results, size) for size in sizes_in(results["scale"])]
    gap_lines = [] if all(cell == "–" for row in gaps for cell in row[1:]) else (
        ["How long fewer than N were dropped during each restart (nftables: every read of the restore counts "
         "the old sets too; from the last read that saw all N to the first that saw them again, at least and at "
         "most; and the fewest dropped meanwhile; \"none seen\": no read saw fewer, so a gap, if any, "
         "was shorter than a read):", ""]
        + table(["Bans"] + [label(results, name) for name in actions_in(results, "scale")], gaps))
    return (["## 3. Restore after restart", "",
             "`systemctl restart` of the ban daemons (fail2ban; crowdsec and crowdsec-firewall-bouncer) with N bans, "
             "once they are idle after the bans (under 5 %% of a CPU), timed until a read that found all N in the firewall "
             "again had finished. Goals: %s."
             % goals_text(results["goals"], "restore_s"), ""]
            + table(["Bans"] + [label(results, name) for name in actions_in(results, "scale")],
                    [[count(size)] + scale_cells(results, size, "restore") for size in sizes_in(results["scale"])])
            + gap_lines)


def rate(value):
    return "%.0f" % value


def perpacket_section(results):
    perpacket = results.get("perpacket")
    if not perpacket:
        return []
    names = actions_in(results, "perpacket")
    within = results["goals"]["perpacket_within"]
    rows, notes = [], []
    for system in names:
        for size in sizes_in({system: perpacket[system]}):
            entry = perpacket[system][str(size)]
            rows.append([label(results, system), count(entry.get("bans", size)), str(entry.get("pairs", "–")),
                         spread(entry.get("baseline_rate"), rate) or "–", spread(entry.get("banned_rate"), rate) or "–",
                         change_cell(entry)])
            if entry.get("note"):
                notes.append("%s, %s bans: %s." % (label(results, system), count(size), entry["note"]))
    seconds_each = results["settings"].get("perpacket_seconds")
    port = results["settings"]["phases"].get("perpacket", {}).get("port", 80)
    return (["## 4. Per-packet cost", "",
             "The allowlisted client sends TCP connect attempts to port %s of the web host in a loop (%s s "
             "windows): each SYN passes the input hook with the ban sets or chains, %s. The ban daemons are frozen. "
             "Interleaved pairs A B A B …, one client loop throughout: A with 0 bans in effect (nftables: the blocking "
             "rules pointed at an empty twin set; iptables: a RETURN at the top of each ban chain), B with the N "
             "held; a window runs from one switch's end to the next one's start. The change is the mean of B / A − 1 over the pairs with its 95 %% interval "
             "(Student's t), judged two-sided: **none** when the interval lies within ±%g%%, **cost** when it lies "
             "below 0 and reaches past −%g%%, **unresolved** when it is too wide to tell. A window in which an "
             "attempt got no answer (a lost SYN stalls the loop) leaves its pair out (results.json counts them)."
             % (
                 port, seconds_each, "and the kernel answers with a RST, so only the kernel's path is in it (no "
                 "NGINX, no Django)" if port != 80 else "then NGINX accepts and the client closes with a RST",
                 within * 100, within * 100), ""]
            + table(["System", "Bans", "Pairs", "answers/s, 0 bans", "answers/s, N bans", "change [95 % interval]"],
                    rows)
            + ["- " + note for note in notes] + ([""] if notes else []))


def zone_cell(sample):
    if not sample or sample.get("nginx_zone_resident_kib") is None:
        return "–"
    return "%s KiB of %s KiB" % (count(sample["nginx_zone_resident_kib"]), count(sample["nginx_zone_size_kib"]))


def mib(value):
    return "%.0f MiB" % value


def rss(sample):
    return sample.get("rss_mib", sample.get("fail2ban_rss_mib"))


def memory_row(results, size):
    """RSS per system at `size` bans (its samples' spread) and the NGINX zone of the last sample."""
    cells, zone = [], None
    for system in actions_in(results, "scale"):
        samples = (results["scale"][system].get(str(size)) or {}).get("memory", [])
        cells.append(spread(summarize([rss(sample) for sample in samples]), mib, "sample") or "–")
        zone = zone or (samples[-1] if samples else None)
    return [count(size)] + cells + [zone_cell(zone)]


def memory_section(results):
    if not results.get("scale"):
        return []
    names = actions_in(results, "scale")
    idle = results.get("memory_idle") or {}
    idle_row = ["0"] + [mib(rss(idle[system])) if rss(idle.get(system) or {}) else "–" for system in names] + [
        zone_cell(next(iter(idle.values()), {}))]
    return (["## 5. Memory", "",
             "Resident memory (VmRSS) of the ban daemons after the bans and after the restore: fail2ban-server; "
             "for CrowdSec the sum of crowdsec and crowdsec-firewall-bouncer (results.json has each). The NGINX "
             "column is the resident part of its limit_req zone (sum of Pss over NGINX's processes); banned "
             "addresses never reach NGINX, so it grows with the addresses that do, not with N.", ""]
            + table(["Bans"] + [label(results, name) for name in names] + ["NGINX zone"],
                    [idle_row] + [memory_row(results, size) for size in sizes_in(results["scale"])]))


def peer_vars(recorded):
    """The peers' converge variables as the method names them ("–" for a run that did not record them)."""
    peers = [value for name, value in recorded.get("system_vars", {}).items() if value and name != recorded.get("ours")]
    return ", ".join("`%s: %s`" % (key, json.dumps(value)) for key, value in sorted(peers[0].items())) if peers else "–"


def method_section(results):
    recorded = results["settings"]
    latency = recorded["phases"]["latency"]
    return ["## Method", "",
            "- Testbed: three containers on one Docker network (tools/testbed.py, %s): `web` converged with the "
            "demo API, `floodguard.shield.nginx_ratelimit` and `floodguard.shield.fail2ban` "
            "(tools/bench/converge.yml), `attacker` with %s extra addresses (one per attack, so each starts "
            "unbanned), `client` allowlisted in NGINX only (its packets pass the firewall's ban rules like any "
            "user's). Each system is set up on the same web host in turn (see Systems below)." % (
                recorded["testbed"]["subnet"], recorded["testbed"]["attacker_extra_addresses"]),
            "- Latency: tools/flood.py from a fresh attacker address, %s connections at up to %s requests per "
            "second, one connection per request; the ban's moment is when the earliest request that got no answer was sent (a "
            "connect that timed out after %g s, or a connection opened just before the ban whose answer was "
            "dropped). The fail2ban \"Ban\" time comes from /var/log/fail2ban.log." % (
                latency["concurrency"], latency.get("rate", "unlimited"), latency["timeout_s"]),
            "- Scale and restore: before every run fail2ban is stopped, its database removed and its firewall "
            "rules deleted, then started again (CrowdSec: its decisions and alerts deleted, the bouncer's "
            "tables removed and the bouncer started again). Addresses come from %s (benchmarking range; no traffic goes to "
            "them). Every run is capped at %s s; a capped run reports how many bans the firewall held." % (
                recorded["ban_network"], recorded["cap_s"]),
            "- Per-packet: a TCP connect loop on the client, %s interleaved pairs of %g s runs. The ban daemon "
            "is first left to finish its work after the bans (under 5%% of a CPU), then frozen (SIGSTOP) while "
            "the client measures; the kernel's sets and rules keep working." % (
                recorded.get("perpacket_pairs"), recorded["perpacket_seconds"]),
            "- Systems: each is the same web host set up again: floodguard's defaults and fail2ban's stock "
            "iptables-multiport by converging with `fail2ban_banaction`, the peers with the original recipe's "
            "NGINX and fail2ban (%s); fail2ban's stock nftables actions "
            "(nftables-multiport / nftables-allports) by a jail.d override of floodguard's actions; CrowdSec "
            "%s from Debian's packages, offline (tools/bench/crowdsec.sh: online_api_credentials.yaml before the "
            "install so it never registers, a fixed cscli hub branch so nothing looks the hub up online, its "
            "shipped hub and nginx collection; its whitelist of private ranges, which covers the test network, "
            "replaced by loopback and the allowlist; fail2ban stopped)." % (
                peer_vars(recorded),
                results.get("machine", {}).get("crowdsec", "")),
            "- Memory: VmRSS from /proc/<pid>/status of fail2ban-server; the NGINX zone from /proc/<pid>/smaps.",
            "- The machine was not otherwise idle unless stated; compare columns of the same run rather than runs.",
            "",
            "To run it: `make bench` (every phase but heal, lb, sync and waf, which have pages of their own and "
            "`--only heal,lb,sync,waf` runs; results in `bench/results/<UTC time>/`, and this page is rewritten "
            "after a complete run), `BENCH_QUICK=1 make bench` (%s bans, fewer attacks, shorter runs, floodguard "
            "against CrowdSec with its 1 s poll, one botnet flood of 1,000 addresses), "
            "`tools/bench.sh --only latency,timeline` (a subset; `tools/bench.sh --help` lists the options)." % (
                " and ".join(count(size) for size in recorded["quick_sizes"])),
            ""]


def minutes(value):
    return "–" if value is None else "%.1f min" % (value / 60.0)


def running_time_section(results):
    """Wall time of each phase (results.json "phase_wall_s"), per system and in total."""
    walls = results.get("phase_wall_s") or {}
    if not walls:
        return []
    names = [system for system in systems(results) if any(system in per for per in walls.values())]
    rows = []
    for phase, per in walls.items():
        rows.append([phase] + [minutes(per.get(system)) for system in names]
                    + [minutes(per.get("once")) if "once" in per else "–", minutes(sum(per.values()))])
    return (["## Running time", "",
             "Wall time of each phase in this run (per system, or once), and of the whole run: %s." % minutes(
                 results.get("wall_s")), ""]
            + table(["Phase"] + [label(results, system) for system in names] + ["once", "total"], rows))


# A phase module hooks its report in here: its section(results) -> Markdown lines (see run.py).
SECTIONS = [title, lead_section, header, goals_section, latency_section, timeline_paragraph, scale_section,
            restore_section, perpacket_section, memory_section, heal.section, detection.section, botnet.section,
            operator_path.section, lb.report_section,
            sync.report_section, waf.section, closing_section,
            method_section, running_time_section]


def markdown(results):
    return "\n".join(line for section in SECTIONS for line in section(results))


def plot(timelines, path, labels=None):
    """One panel per system on a shared time axis: requests per second served, rejected and dropped
    (attacker), served (allowlisted client), with the first rejection, the ban and the first drop marked."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = labels or {}
    figure, panels = plt.subplots(len(timelines), 1, figsize=(9, 2.3 * len(timelines) + 0.6), dpi=110,
                                  sharex=True, squeeze=False)
    for axes, (system, timeline) in zip(panels[:, 0], timelines.items()):
        attacker = timeline["attacker"]
        times = [bucket["t"] for bucket in attacker]
        for key, colour, name in (("served", "tab:green", "attacker served (2xx)"),
                                  ("rejected", "tab:orange", "attacker rejected (429)"),
                                  ("dropped", "tab:red", "attacker dropped (no answer)")):
            axes.step(times, [bucket.get(key, 0) for bucket in attacker], where="post", color=colour, label=name,
                      linewidth=2)
        client = timeline.get("client") or []
        if client:
            axes.step([bucket["t"] for bucket in client], [bucket.get("served", 0) for bucket in client],
                      where="post", color="tab:blue", linestyle="--", label="allowlisted client served")
        for key, colour, name in (("first_reject_t", "tab:orange", "first rejection"),
                                  ("fail2ban_ban_t", "black", "fail2ban Ban"),
                                  ("first_drop_sent_t", "tab:red", "first dropped request sent")):
            if timeline.get(key) is not None:
                axes.axvline(timeline[key], color=colour, linestyle=":", linewidth=1.5,
                             label="%s (%.2f s)" % (name, timeline[key]))
        axes.set_title(labels.get(system, system), fontsize=9)
        axes.set_ylabel("req/s")
        axes.legend(fontsize=6, loc="upper left", ncol=2)
        axes.grid(alpha=0.3)
    panels[-1, 0].set_xlabel("seconds from the start of the calm phase (dropped requests are counted when they "
                             "time out, %s s after sending)" % next(iter(timelines.values()))["timeout_s"])
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def write(results, folder):
    """results.md, and timeline.png when the run has a timeline, in `folder`."""
    with open(os.path.join(folder, "results.md"), "w") as handle:
        handle.write(markdown(results))
    if results.get("timeline"):
        plot(results["timeline"], os.path.join(folder, "timeline.png"), results["settings"].get("system_labels"))


def main(argv):
    path = argv[0]
    with open(path) as handle:
        write(json.load(handle), os.path.dirname(path))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
