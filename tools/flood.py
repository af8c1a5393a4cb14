# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bounded HTTP flood from chosen source addresses, with a JSON summary per source.

Used by the e2e Molecule scenario (attacker and client containers) and by the benchmark. Only the
Python 3 standard library, so it runs on a bare Debian host as copied.

Every run is bounded twice: --requests (per source) and --duration (wall seconds, whole run); both
are required and capped. Each request opens its own TCP connection from its source address (so a
firewall ban applies to the very next request); it gives up connecting after --timeout seconds and
waiting for the answer after --read-timeout seconds.

Every request ends as one of:
  served    a 2xx answer
  rejected  429 or 503, what NGINX's limit_req answers
  other     any other HTTP status
  dropped   no connection (connect timeout, refused, unreachable): what a firewall ban does
  failed    connected, but no complete answer in time (overloaded upstream, reset)
Per source it reports these counts, counts by HTTP status and by error, the times (seconds from the
start) of the first rejection, the first drop and the last 2xx, and latency percentiles (ms) of the
requests that got an answer. --timeline adds the counts per second.

Examples:
  flood.py http://172.28.10.2/api/ping --source 172.28.10.100 --source 172.28.10.101 \\
      --requests 300 --duration 15 --concurrency 4 --stop-after-drops 3
  flood.py http://172.28.10.2/api/ping --source 172.28.10.4 --rate 2 --requests 60 --duration 30 --timeline
"""

import argparse
import http.client
import ipaddress
import json
import math
import socket
import ssl
import sys
import threading
import time
import urllib.parse

# Hard ceilings: this tool must never turn into an unbounded load generator.
MAX_REQUESTS_PER_SOURCE = 5000
MAX_DURATION_SECONDS = 120.0
MAX_TIMEOUT_SECONDS = 10.0
MAX_CONCURRENCY_PER_SOURCE = 32
MAX_THREADS = 512
MAX_RATE_PER_SOURCE = 1000.0
# What NGINX answers when limit_req rejects a request (limit_req_status; 503 is NGINX's default).
REJECT_STATUSES = (429, 503)
PERCENTILES = (50, 90, 99)
OUTCOMES = ("served", "rejected", "other", "dropped", "failed")


class SourceStats:
    """Counters of one source address, shared by its worker threads."""

    def __init__(self, address, max_requests, rate):
        self.address = address
        self.max_requests = max_requests
        self.rate = rate
        self.lock = threading.Lock()
        self.next_index = 0
        self.next_start = None
        self.sent = 0
        self.statuses = {}
        self.errors = {}
        self.consecutive_drops = 0
        self.stopped_by_drops = False
        # Seconds from the start of the run.
        self.first_reject_s = None
        self.first_drop_s = None
        # When the earliest request that got no answer in time (dropped, or timed out after connecting)
        # was sent: once a ban lands, a connection opened just before it times out too.
        self.first_unanswered_sent_s = None
        # When the first answer of each HTTP status arrived (e.g. the first 403 of a ban inside NGINX).
        self.first_status_s = {}
        self.last_served_s = None
        self.last_answer_s = None
        self.latencies_ms = []
        self.timeline = {}

    def claim(self, now):
        """When this source's next request may start (monotonic time), or None when its budget is spent.

        With a rate, starts are at least 1/rate apart: a source held up by slow answers never catches up
        in a burst, so a client below the rate stays below it.
        """
        with self.lock:
            if self.next_index >= self.max_requests or self.stopped_by_drops:
                return None
            self.next_index += 1
            if not self.rate:
                return now
            start = now if self.next_start is None else max(now, self.next_start)
            self.next_start = start + 1.0 / self.rate
            return start

    def record(self, elapsed_s, status, latency_ms, error, stop_after_drops, sent_s=None):
        """Count one finished request: an HTTP status, or an error ("dropped:..." or "failed:...").

        elapsed_s: when it finished; sent_s: when it was sent (seconds from the start of the run).
        """
        if error is None:
            if 200 <= status < 300:
                outcome = "served"
            elif status in REJECT_STATUSES:
                outcome = "rejected"
            else:
                outcome = "other"
        else:
            outcome = error.split(":", 1)[0]
        with self.lock:
            self.sent += 1
            bucket = self.timeline.setdefault(int(elapsed_s), dict.fromkeys(OUTCOMES, 0))
            bucket[outcome] += 1
            if error is None:
                self.statuses[status] = self.statuses.get(status, 0) + 1
                self.first_status_s[status] = min(elapsed_s, self.first_status_s.get(status, elapsed_s))
                self.latencies_ms.append(latency_ms)
                self.last_answer_s = elapsed_s
                if outcome == "served":
                    self.last_served_s = elapsed_s
                elif outcome == "rejected" and self.first_reject_s is None:
                    self.first_reject_s = elapsed_s
            else:
                self.errors[error] = self.errors.get(error, 0) + 1
                if sent_s is not None and (outcome == "dropped" or error.endswith(":timeout")):
                    if self.first_unanswered_sent_s is None or sent_s < self.first_unanswered_sent_s:
                        self.first_unanswered_sent_s = sent_s
            if outcome != "dropped":
                # Only an answer ends a run of drops: requests in flight when the ban came fail instead.
                if outcome != "failed":
                    self.consecutive_drops = 0
                return
            if self.first_drop_s is None:
                self.first_drop_s = elapsed_s
            self.consecutive_drops += 1
            if stop_after_drops and self.consecutive_drops >= stop_after_drops:
                self.stopped_by_drops = True

    def summary(self, with_timeline):
        counts = dict.fromkeys(OUTCOMES, 0)
        for bucket in self.timeline.values():
            for outcome in OUTCOMES:
                counts[outcome] += bucket[outcome]
        result = dict(counts)
        result.update({
            "sent": self.sent,
            "statuses": {str(code): count for code, count in sorted(self.statuses.items())},
            "errors": dict(sorted(self.errors.items())),
            "stopped_by_drops": self.stopped_by_drops,
            "first_reject_s": _round(self.first_reject_s),
            "first_drop_s": _round(self.first_drop_s),
            "first_unanswered_sent_s": _round(self.first_unanswered_sent_s),
            "first_status_s": {str(code): _round(value) for code, value in sorted(self.first_status_s.items())},
            "last_served_s": _round(self.last_served_s),
            "last_answer_s": _round(self.last_answer_s),
            "latency_ms": _percentiles(self.latencies_ms),
        })
        if with_timeline:
            last = max(self.timeline) if self.timeline else -1
            empty = dict.fromkeys(OUTCOMES, 0)
            result["timeline"] = [dict(self.timeline.get(second, empty), t=second) for second in range(last + 1)]
        return result


def _round(value):
    return None if value is None else round(value, 3)


def percentile(values, pct):
    """Nearest-rank percentile of a non-empty list: the value below which pct% of them lie.

    The one definition of a percentile for flood.py's reports and make bench (tools/bench/stats.py).
    """
    ordered = sorted(values)
    return ordered[max(1, math.ceil(pct / 100.0 * len(ordered))) - 1]


def _percentiles(samples):
    """Percentiles (and max) of latencies in ms; empty dict when nothing answered."""
    if not samples:
        return {}
    result = {"p%d" % pct: round(percentile(samples, pct), 1) for pct in PERCENTILES}
    result["max"] = round(max(samples), 1)
    return result


def _error_name(exc):
    """Short, stable name of a request failure for the counters."""
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, ConnectionResetError):
        return "reset"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "disconnected"
    if isinstance(exc, OSError) and exc.errno is not None:
        return "oserror-%d" % exc.errno
    return type(exc).__name__


def send_one(target, source, args):
    """One request on a fresh connection.

    Returns (status, latency_ms, None) for an answer, (None, None, "dropped:<why>") when the connection
    could not be opened (what a firewall ban does), (None, None, "failed:<why>") when it opened but no
    complete answer came (an overloaded upstream, a reset).
    """
    source_address = (source, 0) if source else None
    timeout = args.timeout
    headers = {"Connection": "close", "User-Agent": "floodguard-flood/1"}
    if args.body is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    started = time.monotonic()
    if target.scheme == "https":
        connection = http.client.HTTPSConnection(
            target.hostname, target.port, timeout=timeout, source_address=source_address, context=args.tls_context,
        )
    else:
        connection = http.client.HTTPConnection(target.hostname, target.port, timeout=timeout, source_address=source_address)
    try:
        try:
            connection.connect()
        except ssl.SSLError as exc:
            return None, None, "failed:tls-" + type(exc).__name__
        except OSError as exc:
            return None, None, "dropped:" + _error_name(exc)
        try:
            # The answer may take --read-timeout, not --timeout (which bounds the connect).
            connection.sock.settimeout(args.read_timeout)
            connection.request(args.method, target.path_and_query, body=args.body, headers=headers)
            response = connection.getresponse()
            response.read()
        except (OSError, http.client.HTTPException) as exc:
            return None, None, "failed:" + _error_name(exc)
        return response.status, (time.monotonic() - started) * 1000.0, None
    finally:
        connection.close()


def worker(stats, target, args, deadline):
    while True:
        start = stats.claim(time.monotonic())
        if start is None or start >= deadline:
            return
        pause = start - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        sent_s = time.monotonic() - args.run_started
        status, latency_ms, error = send_one(target, stats.address, args)
        stats.record(time.monotonic() - args.run_started, status, latency_ms, error, args.stop_after_drops, sent_s)


class Target:
    """The parsed URL: scheme, host, port, and the path with its query."""

    def __init__(self, url):
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError("URL must be http:// or https:// with a host, got %r" % url)
        self.scheme = parsed.scheme
        self.hostname = parsed.hostname
        self.port = parsed.port or (443 if parsed.scheme == "https" else 80)
        self.path_and_query = (parsed.path or "/") + ("?" + parsed.query if parsed.query else "")


def _bounded(kind, low, high):
    """argparse type: a number of `kind` within [low, high], with an error that names the bounds."""

    def convert(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError("%r is not a number" % text) from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError("%s is outside %s..%s" % (text, low, high))
        return value

    return convert


def _source(text):
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not an IP address (one address per --source)" % text) from None


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Prints one JSON document: the run's settings, per-source summaries and totals.",
    )
    parser.add_argument("url", help="http(s) URL to request, e.g. http://172.28.10.2/api/ping")
    parser.add_argument(
        "--source", dest="sources", action="append", type=_source, default=[], metavar="ADDRESS",
        help="local address to send from (repeat for several; each gets its own budget and summary). "
        "Default: the address the kernel picks.",
    )
    parser.add_argument(
        "--requests", type=_bounded(int, 1, MAX_REQUESTS_PER_SOURCE), required=True,
        help="requests per source at most (1..%d)" % MAX_REQUESTS_PER_SOURCE,
    )
    parser.add_argument(
        "--duration", type=_bounded(float, 0.1, MAX_DURATION_SECONDS), required=True,
        help="wall-clock seconds for the whole run at most (..%g); no request starts after it" % MAX_DURATION_SECONDS,
    )
    parser.add_argument(
        "--concurrency", type=_bounded(int, 1, MAX_CONCURRENCY_PER_SOURCE), default=4,
        help="parallel connections per source (1..%d, default 4)" % MAX_CONCURRENCY_PER_SOURCE,
    )
    parser.add_argument(
        "--rate", type=_bounded(float, 0.01, MAX_RATE_PER_SOURCE), default=None,
        help="requests per second per source (default: as fast as --concurrency allows)",
    )
    parser.add_argument(
        "--timeout", type=_bounded(float, 0.05, MAX_TIMEOUT_SECONDS), default=1.0,
        help="seconds to open a connection (default 1); longer counts as dropped",
    )
    parser.add_argument(
        "--read-timeout", type=_bounded(float, 0.05, MAX_TIMEOUT_SECONDS), default=None,
        help="seconds to wait for the answer once connected (default: --timeout); longer counts as failed. "
        "A short one makes a flood fire and forget, as real floods do, instead of waiting for a slow API",
    )
    parser.add_argument(
        "--stop-after-drops", type=_bounded(int, 0, MAX_REQUESTS_PER_SOURCE), default=0, metavar="N",
        help="stop a source after N dropped requests in a row (it is banned at the firewall); 0: never (default)",
    )
    parser.add_argument(
        "--insecure", action="store_true", help="https: do not verify the certificate (self-signed test hosts)",
    )
    parser.add_argument("--method", choices=("GET", "HEAD", "POST"), default="GET", help="HTTP method (default GET)")
    parser.add_argument("--data", default=None, help="form-encoded request body (for POST)")
    parser.add_argument(
        "--timeline", action="store_true", help="add per-second counts of served, rejected, other, dropped and failed per source",
    )
    args = parser.parse_args(argv)
    try:
        args.target = Target(args.url)
    except ValueError as exc:
        parser.error(str(exc))
    if not args.sources:
        args.sources = [""]
    if len(set(args.sources)) != len(args.sources):
        parser.error("each --source may be given once")
    if len(args.sources) * args.concurrency > MAX_THREADS:
        parser.error(
            "%d sources x --concurrency %d is more than %d threads: lower --concurrency"
            % (len(args.sources), args.concurrency, MAX_THREADS)
        )
    if args.read_timeout is None:
        args.read_timeout = args.timeout
    args.body = args.data.encode("utf-8") if args.data is not None else None
    args.tls_context = ssl._create_unverified_context() if args.insecure else ssl.create_default_context()
    return args


def run(args):
    """Floods the target from every source at once and returns the JSON-ready report."""
    all_stats = [SourceStats(source, args.requests, args.rate) for source in args.sources]
    args.run_started = run_started = time.monotonic()
    deadline = run_started + args.duration
    threads = [
        threading.Thread(target=worker, args=(stats, args.target, args, deadline), daemon=True)
        for stats in all_stats
        for _connection in range(args.concurrency)
    ]
    for thread in threads:
        thread.start()
    # A request started just before the deadline still ends within its own timeout.
    join_deadline = deadline + args.timeout + args.read_timeout + 1.0
    for thread in threads:
        thread.join(max(0.0, join_deadline - time.monotonic()))
    elapsed = time.monotonic() - run_started
    sources = {}
    for stats in all_stats:
        with stats.lock:
            sources[stats.address or "default"] = stats.summary(args.timeline)
    totals = {key: sum(summary[key] for summary in sources.values()) for key in ("sent",) + OUTCOMES}
    return {
        "url": args.url,
        "method": args.method,
        "requests_per_source": args.requests,
        "duration_limit_s": args.duration,
        "concurrency": args.concurrency,
        "rate": args.rate,
        "timeout_s": args.timeout,
        "read_timeout_s": args.read_timeout,
        "elapsed_s": round(elapsed, 3),
        "totals": totals,
        "sources": sources,
    }


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    json.dump(run(args), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
