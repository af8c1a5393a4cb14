# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Turns the benchmark's results.json into results.md (Markdown tables) and timeline.png.

Every figure and every setting in the prose comes from results.json (its "settings" and "goals").

  python3 tools/bench/report.py bench/results/<stamp>/results.json   re-renders results.md and timeline.png
"""

import json
import os
import sys

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


def actions_in(results, key):
    """The ban actions measured in results[key], in the order the run compared them."""
    return [action for action in results["settings"]["actions"] if action in (results.get(key) or {})]


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


def nftables_goal(results, key, size):
    """'< limit s: met' for nftables at `size` against goals[key + '_s'], or '–' without a goal."""
    limit = results["goals"].get(key + "_s", {}).get(str(size))
    if limit is None:
        return "–"
    summary = ((results["scale"].get("nftables") or {}).get(str(size)) or {}).get(key + "_summary") or {}
    return "< %s s: %s" % (limit, goal_check(None if summary.get("unfinished") else summary.get("max"), limit))


def goals_text(goals, key):
    return " and ".join("%s in under %g s" % (count(size), limit) for size, limit in sorted(
        goals[key].items(), key=lambda item: int(item[0])))


def header(results):
    machine = results.get("machine", {})
    lines = [
        "# Benchmarks", "",
        "Latest results of `make bench` (tools/bench/run.py; the numbers below are generated, do not edit them "
        "by hand).", "",
        "- Date: %s; whole run %s min." % (results.get("started"), round(results.get("wall_s", 0) / 60.0, 1)),
        "- Command: `%s`" % results.get("command"),
        "- Machine: %s CPUs (%s), %s GiB memory, Linux %s, %s." % (
            machine.get("nproc"), machine.get("cpu"), machine.get("memory_gib"), machine.get("kernel"),
            machine.get("host_distro")),
        "- Test hosts: Docker containers with systemd on that machine (%s): %s, %s, %s, %s." % (
            machine.get("testbed_distro"), machine.get("fail2ban"), machine.get("nginx"), machine.get("nft"),
            machine.get("iptables")),
        "- Figures: median (min–max, number of runs) over repeated runs; %s measured in the same run." % (
            "both ban actions" if len(results["settings"]["actions"]) == 2 else
            ", ".join(results["settings"]["actions"])),
    ]
    load = results.get("load_average")
    if load:
        lines.append("- Load average (1 min) of the machine at the start and end of the run: %s and %s (%s CPUs); "
                     "above the CPU count, other work was competing with the bench." % (
                         load.get("start"), load.get("end"), machine.get("nproc")))
    lines.append("")
    notes = ["> Note: %s" % note for note in results.get("notes", [])]
    return lines + notes + ([""] if notes else [])


def latency_row(action, entry, goal):
    summary = entry["summary"]
    return [action, "%d%s" % (summary["n"], " (+%d failed)" % entry["failed_runs"] if entry["failed_runs"] else ""),
            seconds(summary.get("p50")), seconds(summary.get("p95")),
            "%s–%s" % (seconds(summary.get("min")), seconds(summary.get("max"))),
            seconds(entry["reject_to_fail2ban_ban_s"].get("median")),
            seconds(entry["fail2ban_ban_to_drop_s"].get("median")), goal_check(summary.get("p95"), goal)]


def latency_section(results):
    if not results.get("latency"):
        return []
    goal = results["goals"]["latency_p95_s"]
    rows = [latency_row(action, results["latency"][action], goal) for action in actions_in(results, "latency")]
    return ["## 1. Attack-to-ban latency", "",
            "From the attacker's first rejected request (HTTP 429) to its first request whose packets the "
            "firewall drops. Goal: p95 under %s s." % goal, ""] + table(
        ["Ban action", "Runs", "p50", "p95", "min–max", "rejection → fail2ban \"Ban\"", "\"Ban\" → dropped",
         "Goal"], rows)


def timeline_paragraph(results):
    timeline = results.get("timeline")
    if not timeline:
        return []
    parts = results["settings"]["phases"]["timeline"]
    calm, attack, client = parts["calm"], parts["attack"], parts["client"]
    return ["Requests per second around one ban (%s): the attacker sends %s req/s (under the limit) for %s s, "
            "then %s req/s for %s s; an allowlisted client sends %s req/s throughout. Dropped requests are counted "
            "when they time out, %s s after they were sent. Plot: `timeline.png` next to results.json%s." % (
                timeline["action"], calm["rate"], calm["duration_s"], attack["rate"], attack["duration_s"],
                client["rate"], timeline["timeout_s"],
                " and [benchmarks-timeline.png](benchmarks-timeline.png)" if results.get("docs") else ""), ""]


def scale_cells(results, size, key):
    return [timed_cell(results["scale"][action].get(str(size)), key) for action in actions_in(results, "scale")]


def task_times(results, size):
    cells = []
    for action in actions_in(results, "scale"):
        runs = (results["scale"][action].get(str(size)) or {}).get("ban", [])
        cells.append(", ".join(seconds(run["task_s"]) for run in runs if "task_s" in run) or "–")
    return cells


def scale_section(results):
    if not results.get("scale"):
        return []
    actions = actions_in(results, "scale")
    sizes = sizes_in(results["scale"])
    recorded = results["settings"]
    jail_actions = "; ".join("`%s` → `%s`" % item for item in results.get("jail_actions", {}).items())
    return (["## 2. Ban scale", "",
             "N addresses of %s banned in the `%s` jail by one `fail2ban_ban` task, timed from the task's start "
             "until the firewall holds all N (read from `nft list ruleset` / `iptables-save`). Goals: %s with the "
             "default action (nftables). fail2ban action of the `%s` jail: %s." % (
                 recorded["ban_network"], recorded["manual_jail"], goals_text(results["goals"], "ban_s"),
                 recorded["manual_jail"], jail_actions), ""]
            + table(["Bans"] + actions + ["Goal (nftables)"],
                    [[count(size)] + scale_cells(results, size, "ban") + [nftables_goal(results, "ban", size)]
                     for size in sizes])
            + ["Time of the `fail2ban_ban` task alone, as Ansible reports it, per run:", ""]
            + table(["Bans"] + actions, [[count(size)] + task_times(results, size) for size in sizes]))


def restore_section(results):
    if not results.get("scale"):
        return []
    return (["## 3. Restore after restart", "",
             "`systemctl restart fail2ban` with N bans, timed until the firewall holds all N again. Goal: %s."
             % goals_text(results["goals"], "restore_s"), ""]
            + table(["Bans"] + actions_in(results, "scale") + ["Goal (nftables)"],
                    [[count(size)] + scale_cells(results, size, "restore") + [nftables_goal(results, "restore", size)]
                     for size in sizes_in(results["scale"])]))


def rate(value):
    return "%.0f" % value


def milliseconds(value):
    return "%.1f ms" % value


def perpacket_cells(entries, size):
    """The rate (with its change against no bans) and p99 cells of one action at `size` bans."""
    entry = entries.get(str(size))
    if not entry:
        return ["–", "–"]
    relative = ""
    change = (entry.get("paired_change") or {}).get("median")
    base = ((entries.get("0") or {}).get("rate") or {}).get("median")
    if size and change is not None:
        relative = " (%+.1f%% paired)" % (change * 100)
    elif base and size and entry["rate"].get("median") is not None:
        relative = " (%+.1f%%)" % ((entry["rate"]["median"] - base) / base * 100)
    return ["%s%s" % (spread(entry["rate"], rate), relative), spread(entry["p99_ms"], milliseconds) or "–"]


def perpacket_goal(entries, size, within):
    """The goal line of nftables at `size` bans: paired change, else against the run with no bans."""
    entry = entries.get(str(size)) or {}
    change = entry.get("paired_change") or {}
    if change.get("median") is not None:
        return ("Goal, nftables with %s bans within %d%% of no bans: %s (%+.1f%%, median of %d pairs, %+.1f%% to "
                "%+.1f%%; with one ban %s req/s)." % (
                    count(size), round(within * 100), "met" if change["median"] >= -within else "**not met**",
                    change["median"] * 100, change["n"], change["min"] * 100, change["max"] * 100,
                    spread(entry["paired_baseline"]["rate"], rate)))
    base = ((entries.get("0") or {}).get("rate") or {}).get("median")
    value = (entry.get("rate") or {}).get("median")
    if base and value is not None:
        return "Goal, nftables with %s bans within %d%% of 0 bans: %s (%+.1f%%)." % (
            count(size), round(within * 100), "met" if value >= base * (1 - within) else "**not met**",
            (value - base) / base * 100)
    return None


def perpacket_section(results):
    perpacket = results.get("perpacket")
    if not perpacket:
        return []
    actions = actions_in(results, "perpacket")
    sizes = sizes_in(perpacket)
    within = results["goals"]["perpacket_within"]
    notes = ["%s, %s bans: %s." % (action, count(size), perpacket[action][str(size)]["note"])
             for size in sizes for action in actions if (perpacket[action].get(str(size)) or {}).get("note")]
    notes += [line for line in (perpacket_goal(perpacket.get("nftables") or {}, size, within)
                                for size in sizes if size) if line]
    concurrency = results["settings"]["phases"]["perpacket"]["concurrency"]
    return (["## 4. Per-packet cost", "",
             "An allowlisted client on a new connection per request, %s at a time, against the demo API through "
             "NGINX: requests served per second and p99 latency, with 0 and N addresses banned. With N bans every "
             "run is paired with one right after it on the same sets or chains emptied down to one ban (then "
             "filled again); the percentage is the median change over those pairs, since the machine drifts "
             "more between the start and the end of the bench than the firewall costs. Goal: nftables within "
             "%d%% of no bans." % (concurrency, round(within * 100)), ""]
            + table(["Bans"] + [column % action for action in actions for column in ("%s req/s", "%s p99")],
                    [[count(size)] + [cell for action in actions for cell in perpacket_cells(perpacket[action], size)]
                     for size in sizes])
            + ["- " + note for note in notes] + ([""] if notes else []))


def zone_cell(sample):
    if not sample or sample.get("nginx_zone_resident_kib") is None:
        return "–"
    return "%s KiB of %s KiB" % (count(sample["nginx_zone_resident_kib"]), count(sample["nginx_zone_size_kib"]))


def mib(value):
    return "%.0f MiB" % value


def memory_row(results, size):
    """fail2ban's RSS per action at `size` bans (its samples' spread) and the NGINX zone of the last sample."""
    cells, zone = [], None
    for action in actions_in(results, "scale"):
        samples = (results["scale"][action].get(str(size)) or {}).get("memory", [])
        cells.append(spread(summarize([sample.get("fail2ban_rss_mib") for sample in samples]), mib, "sample") or "–")
        zone = zone or (samples[-1] if samples else None)
    return [count(size)] + cells + [zone_cell(zone)]


def memory_section(results):
    if not results.get("scale"):
        return []
    actions = actions_in(results, "scale")
    idle = results.get("memory_idle") or {}
    idle_row = ["0"] + [mib(idle[action]["fail2ban_rss_mib"]) if (idle.get(action) or {}).get("fail2ban_rss_mib")
                        else "–" for action in actions] + [zone_cell(next(iter(idle.values()), {}))]
    return (["## 5. Memory", "",
             "fail2ban's resident memory (VmRSS of fail2ban-server) after the bans and after the restore, and the "
             "resident part of NGINX's limit_req zone (sum of Pss of the zone's shared mapping over NGINX's "
             "processes). Banned addresses never reach NGINX, so its zone grows with the addresses that do "
             "(one node per client address), not with N.", ""]
            + table(["Bans"] + ["fail2ban RSS, %s" % action for action in actions] + ["NGINX zone"],
                    [idle_row] + [memory_row(results, size) for size in sizes_in(results["scale"])]))


def method_section(results):
    recorded = results["settings"]
    latency = recorded["phases"]["latency"]
    return ["## Method", "",
            "- Testbed: three containers on one Docker network (tools/testbed.py, %s): `web` converged with the "
            "demo API, `floodguard.shield.nginx_ratelimit` and `floodguard.shield.fail2ban` "
            "(tools/bench/converge.yml), `attacker` with %s extra addresses (one per attack, so each starts "
            "unbanned), `client` allowlisted in NGINX only (its packets pass the firewall's ban rules like any "
            "user's). The ban action is switched by re-converging with `-e fail2ban_banaction=...`." % (
                recorded["testbed"]["subnet"], recorded["testbed"]["attacker_extra_addresses"]),
            "- Latency: tools/flood.py from a fresh attacker address, %s connections as fast as they go, one "
            "connection per request; the ban's moment is when the earliest request that got no answer was sent (a "
            "connect that timed out after %g s, or a connection opened just before the ban whose answer was "
            "dropped). The fail2ban \"Ban\" time comes from /var/log/fail2ban.log." % (
                latency["concurrency"], latency["timeout_s"]),
            "- Scale and restore: before every run fail2ban is stopped, its database removed and its firewall "
            "rules deleted, then started again. Addresses come from %s (benchmarking range; no traffic goes to "
            "them). Every run is capped at %s s; a capped run reports how many bans the firewall held." % (
                recorded["ban_network"], recorded["cap_s"]),
            "- Per-packet: tools/flood.py on the client for %g s per run, against the full stack (NGINX and "
            "Django), so the figure is what a legitimate user sees. fail2ban is first left to finish its work "
            "after the bans (under 5%% of a CPU), then frozen (SIGSTOP) while the client measures, so that only "
            "the firewall's cost is compared; the kernel's sets and rules keep working." % (
                recorded["perpacket_seconds"]),
            "- Memory: VmRSS from /proc/<pid>/status of fail2ban-server; the NGINX zone from /proc/<pid>/smaps.",
            "- The machine was not otherwise idle unless stated; compare columns of the same run rather than runs.",
            "",
            "To run it: `make bench` (everything; results in `bench/results/<UTC time>/`, and this page is "
            "rewritten after a complete run), `BENCH_QUICK=1 make bench` (%s bans, fewer repeats), "
            "`tools/bench.sh --only latency,timeline` (a subset; `tools/bench.sh --help` lists the options)." % (
                " and ".join(count(size) for size in recorded["quick_sizes"])),
            ""]


SECTIONS = (header, latency_section, timeline_paragraph, scale_section, restore_section, perpacket_section,
            memory_section, waf.section, method_section)


def markdown(results):
    return "\n".join(line for section in SECTIONS for line in section(results))


def plot(timeline, path):
    """Requests per second served, rejected and dropped (attacker), served (client), with the ban marked."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(9, 4.5), dpi=110)
    attacker = timeline["attacker"]
    times = [bucket["t"] for bucket in attacker]
    for key, colour, label in (("served", "tab:green", "attacker served (2xx)"),
                               ("rejected", "tab:orange", "attacker rejected (429)"),
                               ("dropped", "tab:red", "attacker dropped (no answer)")):
        axes.step(times, [bucket.get(key, 0) for bucket in attacker], where="post", color=colour, label=label,
                  linewidth=2)
    client = timeline.get("client") or []
    if client:
        axes.step([bucket["t"] for bucket in client], [bucket.get("served", 0) for bucket in client], where="post",
                  color="tab:blue", linestyle="--", label="allowlisted client served")
    for key, colour, label in (("first_reject_t", "tab:orange", "first rejection"),
                               ("fail2ban_ban_t", "black", "fail2ban Ban"),
                               ("first_drop_sent_t", "tab:red", "first dropped request sent")):
        if timeline.get(key) is not None:
            axes.axvline(timeline[key], color=colour, linestyle=":", linewidth=1.5,
                         label="%s (%.2f s)" % (label, timeline[key]))
    axes.set_xlabel("seconds (dropped requests are counted when they time out, %s s after sending)"
                    % timeline["timeout_s"])
    axes.set_ylabel("requests per second")
    axes.set_title("One attacker address banned (%s)" % timeline["action"])
    axes.legend(fontsize=8, loc="upper left")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def write(results, folder):
    """results.md, and timeline.png when the run has a timeline, in `folder`."""
    with open(os.path.join(folder, "results.md"), "w") as handle:
        handle.write(markdown(results))
    if results.get("timeline"):
        plot(results["timeline"], os.path.join(folder, "timeline.png"))


def main(argv):
    path = argv[0]
    with open(path) as handle:
        write(json.load(handle), os.path.dirname(path))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
