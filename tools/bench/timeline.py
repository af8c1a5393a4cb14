# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Phase "timeline": requests per second served, rejected and dropped around one ban, for the plot.

One attacker address per system: calm (under the limit), then an attack; an allowlisted client throughout.
The attack lasts long enough for CrowdSec's default bouncer poll (10 s) to ban within it.
"""

import threading

from host import log
from settings import CLIENT, URL

SETTINGS = {
    "calm": {"rate": 4, "requests": 24, "duration_s": 6, "concurrency": 2},
    "attack": {"rate": 30, "requests": 420, "duration_s": 14, "concurrency": 20},
    "client": {"rate": 5, "requests": 105, "duration_s": 21, "concurrency": 2},
    # Dropped requests are counted when they time out, this long after they were sent.
    "timeout_s": 0.5,
}


def flood_options(part):
    options = SETTINGS[part]
    return ["--rate", str(options["rate"]), "--requests", str(options["requests"]),
            "--duration", str(options["duration_s"]), "--concurrency", str(options["concurrency"]), "--timeline"]


def shifted(buckets, offset):
    """Timeline buckets with their times moved by offset seconds."""
    return [dict(bucket, t=round(offset + bucket["t"], 2)) for bucket in buckets]


def since(origin, started, moment):
    return None if moment is None else round(started - origin + moment, 3)


def run(host, args):
    source = args.sources.pop(0)
    log("timeline (%s) from %s" % (host.action, source))
    client = {}

    def client_flood():
        client["started"], client["report"] = host.flood("client", [CLIENT], flood_options("client"))

    thread = threading.Thread(target=client_flood)
    thread.start()
    attacker = [URL, "--source", source, "--timeout", str(SETTINGS["timeout_s"])]
    (calm_started, calm), (attack_started, attack) = host.floods(
        "attacker", [attacker + flood_options("calm"), attacker + flood_options("attack")])
    thread.join()
    origin = calm_started
    series = []
    for started, report in ((calm_started, calm), (attack_started, attack)):
        series += shifted(report["sources"][source].get("timeline", []), started - origin)
    summary = attack["sources"][source]
    client_summary = client["report"]["sources"][CLIENT]
    ban_epoch = host.fail2ban_ban_epoch(source)
    return {
        "action": host.action, "source": source, "timeout_s": SETTINGS["timeout_s"],
        "attacker": series,
        "client": shifted(client_summary.get("timeline", []), client["started"] - origin),
        "first_reject_t": since(origin, attack_started, summary["first_reject_s"]),
        "first_drop_sent_t": since(origin, attack_started, summary["first_unanswered_sent_s"]),
        "fail2ban_ban_t": None if ban_epoch is None else round(ban_epoch - origin, 3),
        "client_summary": {key: client_summary[key] for key in ("sent", "served", "rejected", "dropped", "latency_ms")},
    }
