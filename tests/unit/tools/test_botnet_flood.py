# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tools/botnet_flood.py --rounds: a source sends its burst again until it is refused (loopback only, bounded)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tools"))
import botnet_flood  # noqa: E402  pylint: disable=wrong-import-position


def flood_against(status, argv):
    """Runs the flood against a loopback server that answers every request with `status`; (report, connections)."""
    connections = []

    async def answer(reader, writer):
        connections.append(1)
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 %d X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n" % status)
        await writer.drain()
        writer.close()

    async def main():
        server = await asyncio.start_server(answer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            args = botnet_flood.parse_args(["127.0.0.1", "--port", str(port), "--duration", "5", "--timeout", "1",
                                            "--spread", "0"] + argv)
            return await botnet_flood.run(args)

    report = asyncio.run(main())
    return report, len(connections)


def test_a_source_that_is_only_answered_5xx_goes_on_for_every_round():
    report, connections = flood_against(503, ["--sources", "127.0.0.1,2", "--burst", "3", "--parallel", "--rounds", "4"])
    assert connections == 2 * 3 * 4
    assert report["statuses"] == {"503": 24}


def test_a_source_stops_once_it_is_refused():
    report, connections = flood_against(429, ["--sources", "127.0.0.1,2", "--burst", "3", "--parallel", "--rounds", "4"])
    assert connections == 2 * 3
    assert report["statuses"] == {"429": 6}


def test_without_rounds_a_source_sends_its_burst_once():
    _report, connections = flood_against(503, ["--sources", "127.0.0.1,1", "--burst", "2", "--parallel"])
    assert connections == 2


def test_a_source_goes_on_until_refused_the_given_number_of_times():
    _report, connections = flood_against(429, ["--sources", "127.0.0.1,1", "--burst", "2", "--parallel", "--rounds", "5",
                                               "--until-refused", "3"])
    assert connections == 2 * 3


def test_a_source_stops_at_the_first_burst_without_a_connection():
    # A port nothing listens on: the connection is refused, as a firewall ban that rejects.
    args = botnet_flood.parse_args(["127.0.0.1", "--port", "9", "--duration", "5", "--timeout", "1", "--spread", "0",
                                    "--sources", "127.0.0.1,1", "--burst", "2", "--rounds", "5", "--until-refused", "3"])
    report = asyncio.run(botnet_flood.run(args))
    assert report["statuses"] == {"dropped": 2}
