# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Turns the benchmark's results.json into results.md (Markdown tables) and timeline.png.

  python3 tools/bench/report.py bench/results/<stamp>/results.json   re-renders results.md and timeline.png
"""

import json
import os
import sys

DEFAULT_ACTIONS = ("nftables", "iptables-multiport")


def seconds(value):
    if value is None:
        return "–"
    return "%.0f ms" % (value * 1000) if value < 1 else "%.2f s" % value if value < 10 else "%.1f s" % value


def spread(summary, fmt=seconds, unit="run"):
    """'median (min–max, n runs)' of a summarize() dict."""
    if not summary or not summary.get("n"):
        return None
    if summary["n"] == 1:
        return "%s (1 %s)" % (fmt(summary["median"]), unit)
    return "%s (%s–%s, %d %ss)" % (fmt(summary["median"]), fmt(summary["min"]), fmt(summary["max"]), summary["n"], unit)


def timed_cell(entry, key):
    """A scale/restore cell: the spread of finished runs, or how far an unfinished one got."""
    if not entry:
        return "not run"
    summary = entry.get(key + "_summary") or {}
    parts = []
    finished = spread(summary)
    if finished:
        parts.append(finished)
    for run in summary.get("unfinished", []):
        parts.append("**not finished in %s s** (%s of %s done)" % (run.get("cap_s") or "?", format(run["count"], ","),
                                                                   format(run["of"], ",")))
    skipped = [run.get("skipped") for run in entry.get(key, []) if run.get("skipped")]
    if not parts and skipped:
        parts.append("not measured: " + skipped[0])
    if not parts and entry.get("skipped"):
        parts.append(entry["skipped"])
    if entry.get("cut"):
        parts.append("only " + entry["cut"])
    return "; ".join(parts) if parts else "not run"


def goal_check(value, limit):
    if value is None:
        return "**not met**"
    return "met" if value < limit else "**not met**"


def markdown(results):
    global ACTIONS
    ACTIONS = tuple(results.get("settings", {}).get("actions") or DEFAULT_ACTIONS)
    machine = results.get("machine", {})
    lines = ["# Benchmarks", ""]
    lines += [
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
        "- Figures: median (min–max, number of runs) over repeated runs; both ban actions measured in the same run.",
    ]
    load = results.get("load_average")
    if load:
        lines.append("- Load average (1 min) of the machine at the start and end of the run: %s and %s (%s CPUs); "
                     "above the CPU count, other work was competing with the bench." % (
                         load.get("start"), load.get("end"), machine.get("nproc")))
    lines.append("")
    for note in results.get("notes", []):
        lines.append("> Note: %s" % note)
    if results.get("notes"):
        lines.append("")
    goals = results.get("goals", {})

    latency = results.get("latency", {})
    if latency:
        lines += ["## 1. Attack-to-ban latency", "",
                  "From the attacker's first rejected request (HTTP 429) to its first request whose packets the "
                  "firewall drops. Goal: p95 under %s s." % goals.get("latency_p95_s"), "",
                  "| Ban action | Runs | p50 | p95 | min–max | rejection → fail2ban \"Ban\" | \"Ban\" → dropped | Goal |",
                  "|---|---|---|---|---|---|---|---|"]
        for action in ACTIONS:
            entry = latency.get(action)
            if not entry:
                continue
            summary = entry["summary"]
            lines.append("| %s | %d%s | %s | %s | %s–%s | %s | %s | %s |" % (
                action, summary["n"], " (+%d failed)" % entry["failed_runs"] if entry["failed_runs"] else "",
                seconds(summary.get("p50")), seconds(summary.get("p95")), seconds(summary.get("min")),
                seconds(summary.get("max")), seconds(entry["reject_to_fail2ban_ban_s"].get("median")),
                seconds(entry["fail2ban_ban_to_drop_s"].get("median")),
                goal_check(summary.get("p95"), goals.get("latency_p95_s", 1))))
        lines.append("")

    if results.get("timeline"):
        timeline = results["timeline"]
        lines += ["Requests per second around one ban (%s): the attacker sends 4 req/s (under the limit) for 6 s, "
                  "then 30 req/s for 8 s; an allowlisted client sends 5 req/s throughout. Dropped requests are counted when "
                  "they time out, %s s after they were sent. Plot: `timeline.png` next to results.json%s." % (
                      timeline["action"], timeline["timeout_s"],
                      " and [benchmarks-timeline.png](benchmarks-timeline.png)" if results.get("docs") else ""), ""]

    scale = results.get("scale", {})
    sizes = sorted({int(size) for action in scale.values() for size in action}, key=int)
    if scale:
        lines += ["## 2. Ban scale", "",
                  "N addresses of 198.18.0.0/15 banned in the `manual` jail by one `fail2ban_ban` task, timed from the "
                  "task's start until the firewall holds all N (read from `nft list ruleset` / `iptables-save`). "
                  "Goals: 10,000 in under 10 s and 100,000 in under 60 s with the default action (nftables). "
                  "fail2ban action of the `manual` jail: %s." % "; ".join(
                      "`%s` → `%s`" % (action, name) for action, name in results.get("jail_actions", {}).items()), "",
                  "| Bans | " + " | ".join(a for a in ACTIONS if a in scale) + " | Goal (nftables) |",
                  "|---|" + "---|" * len([a for a in ACTIONS if a in scale]) + "---|"]
        for size in sizes:
            cells = [timed_cell(scale[action].get(str(size)), "ban") for action in ACTIONS if action in scale]
            limit = goals.get("ban_s", {}).get(str(size))
            goal = "–"
            if limit is not None:
                nft = (scale.get("nftables", {}).get(str(size)) or {}).get("ban_summary") or {}
                goal = "< %s s: %s" % (limit, goal_check(nft.get("max") if not nft.get("unfinished") else None, limit))
            lines.append("| %s | %s | %s |" % (format(size, ","), " | ".join(cells), goal))
        lines.append("")
        task_rows = []
        for size in sizes:
            cells = []
            for action in ACTIONS:
                if action not in scale:
                    continue
                runs = [run for run in (scale[action].get(str(size)) or {}).get("ban", []) if "task_s" in run]
                cells.append(", ".join(seconds(run["task_s"]) for run in runs) or "–")
            task_rows.append("| %s | %s |" % (format(size, ","), " | ".join(cells)))
        lines += ["Time of the `fail2ban_ban` task alone, as Ansible reports it, per run:", "",
                  "| Bans | " + " | ".join(a for a in ACTIONS if a in scale) + " |",
                  "|---|" + "---|" * len([a for a in ACTIONS if a in scale])] + task_rows + [""]

        lines += ["## 3. Restore after restart", "",
                  "`systemctl restart fail2ban` with N bans, timed until the firewall holds all N again. "
                  "Goal: 10,000 in under 10 s.", "",
                  "| Bans | " + " | ".join(a for a in ACTIONS if a in scale) + " | Goal (nftables) |",
                  "|---|" + "---|" * len([a for a in ACTIONS if a in scale]) + "---|"]
        for size in sizes:
            cells = [timed_cell(scale[action].get(str(size)), "restore") for action in ACTIONS if action in scale]
            limit = goals.get("restore_s", {}).get(str(size))
            goal = "–"
            if limit is not None:
                nft = (scale.get("nftables", {}).get(str(size)) or {}).get("restore_summary") or {}
                goal = "< %s s: %s" % (limit, goal_check(nft.get("max") if not nft.get("unfinished") else None, limit))
            lines.append("| %s | %s | %s |" % (format(size, ","), " | ".join(cells), goal))
        lines.append("")

    perpacket = results.get("perpacket", {})
    if perpacket:
        lines += ["## 4. Per-packet cost", "",
                  "An allowlisted client on a new connection per request, 4 at a time, against the demo API through "
                  "NGINX: requests served per second and p99 latency, with 0 and N addresses banned. With N bans every "
                  "run is paired with one right after it on the same sets or chains emptied down to one ban (then "
                  "filled again); the percentage is the median change over those pairs, since the machine drifts "
                  "more between the start and the end of the bench than the firewall costs. Goal: nftables within "
                  "%d%% of no bans." % round(goals.get("perpacket_within", 0.05) * 100), "",
                  "| Bans | " + " | ".join("%s req/s | %s p99" % (a, a) for a in ACTIONS if a in perpacket) + " |",
                  "|---|" + "---|---|" * len([a for a in ACTIONS if a in perpacket])]
        pp_sizes = sorted({int(size) for action in perpacket.values() for size in action})
        notes = []
        for size in pp_sizes:
            cells = []
            for action in ACTIONS:
                if action not in perpacket:
                    continue
                entry = perpacket[action].get(str(size))
                if not entry:
                    cells += ["–", "–"]
                    continue
                base = (perpacket[action].get("0") or {}).get("rate", {}).get("median")
                rate = entry["rate"]
                relative = ""
                change = (entry.get("paired_change") or {}).get("median")
                if size and change is not None:
                    relative = " (%+.1f%% paired)" % (change * 100)
                elif base and size and rate.get("median") is not None:
                    relative = " (%+.1f%%)" % ((rate["median"] - base) / base * 100)
                cells.append("%s%s" % (spread(rate, lambda v: "%.0f" % v), relative))
                cells.append(spread(entry["p99_ms"], lambda v: "%.1f ms" % v) or "–")
                if entry.get("note"):
                    notes.append("%s, %s bans: %s." % (action, format(size, ","), entry["note"]))
            lines.append("| %s | %s |" % (format(size, ","), " | ".join(cells)))
        lines.append("")
        nft = perpacket.get("nftables") or {}
        base = (nft.get("0") or {}).get("rate", {}).get("median")
        within = goals.get("perpacket_within", 0.05)
        for size in pp_sizes:
            entry = nft.get(str(size)) or {}
            rate = (entry.get("rate") or {}).get("median")
            change = (entry.get("paired_change") or {})
            if size and change.get("median") is not None:
                notes.append("Goal, nftables with %s bans within %d%% of no bans: %s (%+.1f%%, median of %d pairs, "
                             "%+.1f%% to %+.1f%%; with one ban %s req/s)." % (
                                 format(size, ","), round(within * 100),
                                 "met" if change["median"] >= -within else "**not met**", change["median"] * 100,
                                 change["n"], change["min"] * 100, change["max"] * 100,
                                 spread(entry["paired_baseline"]["rate"], lambda v: "%.0f" % v)))
            elif size and base and rate is not None:
                notes.append("Goal, nftables with %s bans within %d%% of 0 bans: %s (%+.1f%%)." % (
                    format(size, ","), round(within * 100), "met" if rate >= base * (1 - within) else "**not met**",
                    (rate - base) / base * 100))
        for note in notes:
            lines.append("- " + note)
        if notes:
            lines.append("")

    if scale:
        lines += ["## 5. Memory", "",
                  "fail2ban's resident memory (VmRSS of fail2ban-server) after the bans and after the restore, and the "
                  "resident part of NGINX's limit_req zone (sum of Pss of the zone's shared mapping over NGINX's "
                  "processes). Banned addresses never reach NGINX, so its zone grows with the addresses that do "
                  "(one node per client address), not with N.", "",
                  "| Bans | " + " | ".join("fail2ban RSS, %s" % a for a in ACTIONS if a in scale) + " | NGINX zone |",
                  "|---|" + "---|" * len([a for a in ACTIONS if a in scale]) + "---|"]
        idle = results.get("memory_idle") or {}
        lines.append("| 0 | %s | %s |" % (" | ".join(
            ("%.0f MiB" % idle[action]["fail2ban_rss_mib"]) if (idle.get(action) or {}).get("fail2ban_rss_mib") else "–"
            for action in ACTIONS if action in scale), zone_cell(next(iter(idle.values()), {}))))
        for size in sizes:
            cells = []
            zone = None
            for action in ACTIONS:
                if action not in scale:
                    continue
                samples = (scale[action].get(str(size)) or {}).get("memory", [])
                rss = [s["fail2ban_rss_mib"] for s in samples if s.get("fail2ban_rss_mib") is not None]
                cells.append(spread({"n": len(rss), "median": median(rss), "min": min(rss) if rss else None,
                                     "max": max(rss) if rss else None}, lambda v: "%.0f MiB" % v, "sample") or "–")
                zone = zone or (samples[-1] if samples else None)
            lines.append("| %s | %s | %s |" % (format(size, ","), " | ".join(cells), zone_cell(zone or {})))
        lines.append("")
    lines += ["## Method", "",
              "- Testbed: three containers on one Docker network (tools/testbed.py): `web` converged with the demo API, "
              "`floodguard.shield.nginx_ratelimit` and `floodguard.shield.fail2ban` (tools/bench/converge.yml), "
              "`attacker` with extra addresses (one per attack, so each starts unbanned), `client` allowlisted in "
              "NGINX only (its packets pass the firewall's ban rules like any user's). The ban action is switched "
              "by re-converging with `-e fail2ban_banaction=...`.",
              "- Latency: tools/flood.py from a fresh attacker address, 2 connections as fast as they go, one "
              "connection per request; the ban's moment is when the earliest request that got no answer was sent (a "
              "connect that timed out after 1 s, or a connection opened just before the ban whose answer was "
              "dropped). The fail2ban \"Ban\" time comes from /var/log/fail2ban.log.",
              "- Scale and restore: before every run fail2ban is stopped, its database removed and its firewall "
              "rules deleted, then started again. Addresses come from 198.18.0.0/15 (benchmarking range; no traffic "
              "goes to them). Every run is capped; a capped run reports how many bans the firewall held.",
              "- Per-packet: tools/flood.py on the client for a few seconds per run, against the full stack (NGINX "
              "and Django), so the figure is what a legitimate user sees. fail2ban is first left to finish its "
              "work after the bans (under 5% of a CPU), then frozen (SIGSTOP) while the client measures, so that "
              "only the firewall's cost is compared; the kernel's sets and rules keep working.",
              "- Memory: VmRSS from /proc/<pid>/status of fail2ban-server; the NGINX zone from /proc/<pid>/smaps.",
              "- The machine was not otherwise idle unless stated; compare columns of the same run rather than runs.",
              "",
              "To run it: `make bench` (everything; results in `bench/results/<UTC time>/`, and this page is "
              "rewritten after a complete run), `BENCH_QUICK=1 make bench` (1,000 and 10,000 bans, fewer repeats), "
              "`tools/bench.sh --only latency,timeline` (a subset; `tools/bench.sh --help` lists the options).",
              ""]
    return "\n".join(lines)


def median(values):
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2.0


def zone_cell(sample):
    if sample.get("nginx_zone_resident_kib") is None:
        return "–"
    return "%s KiB of %s KiB" % (format(sample["nginx_zone_resident_kib"], ","), format(sample["nginx_zone_size_kib"], ","))


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
            axes.axvline(timeline[key], color=colour, linestyle=":", linewidth=1.5, label="%s (%.2f s)" % (label, timeline[key]))
    axes.set_xlabel("seconds (dropped requests are counted when they time out, %s s after sending)" % timeline["timeout_s"])
    axes.set_ylabel("requests per second")
    axes.set_title("One attacker address banned (%s)" % timeline["action"])
    axes.legend(fontsize=8, loc="upper left")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def main(argv):
    path = argv[0]
    with open(path) as handle:
        results = json.load(handle)
    folder = os.path.dirname(path)
    with open(os.path.join(folder, "results.md"), "w") as handle:
        handle.write(markdown(results))
    if results.get("timeline"):
        plot(results["timeline"], os.path.join(folder, "timeline.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
