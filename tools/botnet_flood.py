# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bounded botnet flood: thousands of source addresses from one host, with a JSON summary.

Used by the Molecule scenario botnet and by the benchmark's botnet phase. Only the Python 3 standard
library (asyncio), so it runs on a bare Debian host as copied. The source addresses must be local to
the sending host (e.g. added to lo with `ip -batch`) and routed back to it by the target.

Sources are ranges START,COUNT[,STEP] (STEP: distance between two addresses, default 1), e.g.
10.128.0.1,10000,256 is 10.128.0.1, 10.128.1.1, ... (one address in each of 10,000 /24 networks).

Two shapes of flood:
  --burst N    every source sends N requests at once (above any per-client rate): pipelined on one
               connection, or with --parallel on N connections opened together (NGINX answers the
               pipelined ones one after the other, so while the first wait for the upstream the
               client's limit_req bucket drains and fewer are rejected; parallel ones all meet the
               limit within milliseconds). The starts of the sources are spread over --spread seconds.
               With --rounds R a source sends up to R such bursts one after the other, until it gets
               no connection (banned) or --until-refused of them were refused (4xx answers).
  --every S    every source sends --requests requests, one connection each, S seconds apart (under the
               per-client rate); the sources' first requests are spread over S seconds.
--ip-batch DEVICE prints the `ip -batch` lines that add the sources to DEVICE, and exits.
--legit SOURCE adds one well-behaved client that sends one request every --legit-interval seconds for
the whole run, recording the time and outcome of each.

Every run is bounded: sources (MAX_SOURCES), requests per source, connections at once (--concurrency)
and wall time (--duration); it stops by itself. Outcomes: HTTP statuses, "dropped" (no connection:
what a firewall ban does) and "failed" (connected, no complete answer in time).
"""

import argparse
import asyncio
import ipaddress
import json
import re
import sys
import time

MAX_SOURCES = 20000
MAX_REQUESTS_PER_SOURCE = 50
MAX_DURATION_SECONDS = 120.0
MAX_CONCURRENCY = 2000
STATUS = re.compile(rb"HTTP/1\.[01] (\d{3}) ")
RETRY_AFTER = re.compile(rb"\r\nRetry-After: ", re.IGNORECASE)


def parse_range(text):
    """START,COUNT[,STEP] -> list of address strings."""
    parts = text.split(",")
    try:
        start = ipaddress.ip_address(parts[0])
        count = int(parts[1])
        step = int(parts[2]) if len(parts) > 2 else 1
    except (ValueError, IndexError):
        raise argparse.ArgumentTypeError("%r must be START,COUNT[,STEP], e.g. 10.128.0.1,10000,256" % text) from None
    if not 1 <= count <= MAX_SOURCES or step < 1:
        raise argparse.ArgumentTypeError("%r: COUNT must be 1 to %d and STEP 1 or more" % (text, MAX_SOURCES))
    return [str(start + index * step) for index in range(count)]


class Totals:
    def __init__(self):
        self.statuses = {}
        self.retry_after = 0
        self.latencies_2xx = []

    def add(self, outcome, count=1):
        self.statuses[outcome] = self.statuses.get(outcome, 0) + count

    def summary(self):
        latencies = sorted(self.latencies_2xx)

        def pct(value):
            return round(latencies[min(len(latencies) - 1, int(len(latencies) * value))] * 1000, 1) if latencies else None
        return {"statuses": dict(sorted(self.statuses.items())), "retry_after": self.retry_after,
                "latency_2xx_ms": {"p50": pct(0.5), "p99": pct(0.99), "max": pct(1.0)}, "answered_2xx": len(latencies)}


def request_bytes(host, path, count):
    one = "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: floodguard-botnet\r\n" % (path, host)
    return ((one + "\r\n") * (count - 1) + one + "Connection: close\r\n\r\n").encode()


async def exchange(args, source, count, totals, timeout):
    """One connection from source with count pipelined requests; returns the statuses got (or an error)."""
    started = time.monotonic()
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(args.target, args.port, local_addr=(source, 0)), timeout)
    except (OSError, asyncio.TimeoutError):
        totals.add("dropped", count)
        return ["dropped"]
    try:
        writer.write(request_bytes(args.host or args.target, args.path, count))
        data = await asyncio.wait_for(reader.read(-1), timeout)
    except (OSError, asyncio.TimeoutError):
        data = None
    finally:
        writer.close()
    if data is None:
        totals.add("failed", count)
        return ["failed"]
    statuses = [match.decode() for match in STATUS.findall(data)]
    for status in statuses:
        totals.add(status)
        if status.startswith("2"):
            totals.latencies_2xx.append(time.monotonic() - started)
    if len(statuses) < count:
        totals.add("failed", count - len(statuses))
    totals.retry_after += len(RETRY_AFTER.findall(data))
    return statuses or ["failed"]


async def flood_source(args, source, delay, gate, totals, deadline):
    await asyncio.sleep(delay)
    if args.burst:
        shots = [(0.0, args.burst)] * args.rounds
    else:
        shots = [(index * args.every, 1) for index in range(args.requests)]
    base = time.monotonic()
    refused = 0
    for offset, count in shots:
        wait = base + offset - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        if time.monotonic() >= deadline:
            return
        async with gate:
            if args.parallel and count > 1:
                answers = await asyncio.gather(*(exchange(args, source, 1, totals, args.timeout) for _request in range(count)))
                statuses = [status for answer in answers for status in answer]
            else:
                statuses = await exchange(args, source, count, totals, args.timeout)
        # --rounds: a source goes on until it gets no connection (banned) or was refused (4xx) in
        # --until-refused rounds.
        if args.burst and "dropped" in statuses:
            return
        refused += any(status.startswith("4") for status in statuses)
        if args.burst and refused >= args.until_refused:
            return


async def legit_client(args, start_wall, deadline, record):
    totals = Totals()
    while time.monotonic() < deadline:
        sent = time.time()
        statuses = await exchange(args, args.legit, 1, totals, args.timeout)
        record.append([round(sent - start_wall, 3), statuses[0]])
        await asyncio.sleep(max(0.0, args.legit_interval - (time.time() - sent)))
    return totals


async def run(args):
    sources = [address for spec in args.sources for address in spec]
    if len(sources) > MAX_SOURCES:
        raise SystemExit("at most %d sources" % MAX_SOURCES)
    start_wall = time.time()
    deadline = time.monotonic() + args.duration
    gate = asyncio.Semaphore(args.concurrency)
    totals = Totals()
    spread = args.spread if args.burst else args.every
    tasks = [asyncio.ensure_future(flood_source(args, source, spread * index / max(1, len(sources)), gate, totals, deadline))
             for index, source in enumerate(sources)]
    legit_record = []
    legit_task = asyncio.ensure_future(legit_client(args, start_wall, deadline, legit_record)) if args.legit else None
    flood_done = None
    if tasks:
        done, pending = await asyncio.wait(tasks, timeout=max(0.1, deadline - time.monotonic()))
        for task in pending:
            task.cancel()
        flood_done = round(time.time() - start_wall, 3)
    if legit_task is not None:
        # The legit client keeps going for --legit-after seconds after the flood, then stops.
        remaining = min(deadline, time.monotonic() + args.legit_after) - time.monotonic()
        await asyncio.sleep(max(0.0, remaining))
        legit_task.cancel()
        try:
            await legit_task
        except asyncio.CancelledError:
            pass
    result = {"start": round(start_wall, 3), "sources": len(sources), "flood_done_s": flood_done,
              "duration_s": round(time.time() - start_wall, 3)}
    result.update(totals.summary())
    if args.legit:
        ok = sum(1 for _sent, status in legit_record if status.startswith("2"))
        result["legit"] = {"requests": legit_record, "sent": len(legit_record), "2xx": ok}
    return result


def _bounded(kind, low, high):
    def convert(text):
        value = kind(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError("%s is outside %s..%s" % (text, low, high))
        return value
    return convert


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", help="IP address of the web host")
    parser.add_argument("--port", type=_bounded(int, 1, 65535), default=80)
    parser.add_argument("--host", default="", help="Host header (default: the target)")
    parser.add_argument("--path", default="/api/ping")
    parser.add_argument("--sources", type=parse_range, action="append", default=[], help="START,COUNT[,STEP]; repeatable")
    shape = parser.add_mutually_exclusive_group()
    shape.add_argument("--burst", type=_bounded(int, 1, MAX_REQUESTS_PER_SOURCE), help="pipelined requests per source")
    shape.add_argument("--every", type=_bounded(float, 0.05, 60.0), help="seconds between a source's requests")
    parser.add_argument("--requests", type=_bounded(int, 1, MAX_REQUESTS_PER_SOURCE), default=1, help="requests per source with --every")
    parser.add_argument("--rounds", type=_bounded(int, 1, MAX_REQUESTS_PER_SOURCE), default=1,
                        help="with --burst: bursts per source, one after the other, until it is refused")
    parser.add_argument("--until-refused", type=_bounded(int, 1, MAX_REQUESTS_PER_SOURCE), default=1,
                        help="with --rounds: bursts refused (4xx) after which a source stops (default 1)")
    parser.add_argument("--spread", type=_bounded(float, 0.0, 60.0), default=1.0, help="seconds over which sources start (--burst)")
    parser.add_argument("--parallel", action="store_true", help="with --burst: one connection per request, all at once")
    parser.add_argument("--concurrency", type=_bounded(int, 1, MAX_CONCURRENCY), default=200,
                        help="sources sending at once (with --parallel each holds --burst connections)")
    parser.add_argument("--timeout", type=_bounded(float, 0.1, 10.0), default=2.0)
    parser.add_argument("--duration", type=_bounded(float, 1.0, MAX_DURATION_SECONDS), required=True)
    parser.add_argument("--ip-batch", metavar="DEVICE",
                        help="print `ip -batch` lines that add the sources to DEVICE (e.g. lo) and exit")
    parser.add_argument("--legit", help="address of one well-behaved client")
    parser.add_argument("--legit-interval", type=_bounded(float, 0.05, 10.0), default=0.25)
    parser.add_argument("--legit-after", type=_bounded(float, 0.0, 60.0), default=3.0,
                        help="seconds the legit client goes on after the flood")
    args = parser.parse_args(argv)
    if args.sources and not (args.burst or args.every or args.ip_batch):
        parser.error("give --burst N or --every SECONDS")
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.ip_batch:
        for address in (address for spec in args.sources for address in spec):
            print("address add %s/%s dev %s" % (address, "128" if ":" in address else "32", args.ip_batch)
                  + (" nodad" if ":" in address else ""))
        return
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
