# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tests of the fail2ban action roles/fail2ban/files/action.d/floodguard_nginx.py.

Options and address encoding on their own; the batching, state file and resync against a small HTTP
server on a unix socket that answers as NGINX's management server does (floodguard_ban.lua). The real
NGINX is exercised by the Molecule scenarios lb and heal.
"""

from __future__ import annotations

import logging
import socketserver
import threading
import types
import time
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlparse

import pytest

from ansible_collections.floodguard.shield.tests.unit.roles.fail2ban.actions import load_action, wait_for

nginx = load_action("floodguard_nginx.py")


class Jail:
    def __init__(self, name):
        self.name = name


class FakeManagement(socketserver.ThreadingUnixStreamServer):
    """Answers like floodguard_ban.lua's manage(): {jail: set(elements)}, requests counted."""

    daemon_threads = True

    def __init__(self, path):
        self.bans = {}
        self.requests = []

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def address_string(self):
                return "unix"

            def _answer(self, status, text):
                body = (text + "\n").encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):  # noqa: N802
                url = urlparse(self.path)
                jail = parse_qs(url.query)["jail"][0]
                server.requests.append(("GET", url.path, jail, 0))
                held = server.bans.get(jail, set())
                self._answer(200, str(len(held)) if url.path == "/count" else "\n".join(sorted(held)))

            def do_POST(self):  # noqa: N802
                url = urlparse(self.path)
                jail = parse_qs(url.query)["jail"][0]
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                elements = [line for line in body.splitlines() if line]
                server.requests.append(("POST", url.path, jail, len(elements)))
                held = server.bans.setdefault(jail, set())
                if url.path == "/add":
                    held.update(elements)
                elif url.path == "/remove":
                    held.difference_update(elements)
                elif url.path == "/flush":
                    held.clear()
                self._answer(200, "ok %d" % len(held))

        server = self
        super().__init__(str(path), Handler)


@pytest.fixture
def management(tmp_path):
    server = FakeManagement(tmp_path / "ban.sock")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def make_action(tmp_path, **options):
    options.setdefault("socket", str(tmp_path / "ban.sock"))
    options.setdefault("statedir", str(tmp_path / "state"))
    options.setdefault("flushdelay", "0.05")
    return nginx.NginxAction(Jail("nginx-req-limit"), "floodguard_nginx", **options)


@pytest.mark.parametrize("address, expected", [
    ("203.0.113.7", "cb007107/32"),
    ("198.51.100.0/24", "c6336400/24"),
    ("2001:db8::7", "20010db8000000000000000000000007/128"),
    ("2001:db8::/32", "20010db8000000000000000000000000/32"),
    ("::ffff:203.0.113.7", "cb007107/32"),
])
def test_addresses_travel_as_packed_hex_and_prefix(address, expected):
    assert nginx.element_of(address)[0] == expected


def test_text_that_is_no_address_is_refused():
    assert nginx.element_of("example.com") is None


@pytest.mark.parametrize("options, message", [
    ({"name": "a b"}, "name"),
    ({"socket": "run/ban.sock"}, "socket"),
    ({"statedir": "/var/lib/x y"}, "statedir"),
    ({"allowlist": "office"}, "allowlist"),
    ({"flushdelay": "5"}, "flushdelay"),
    ({"checkinterval": "0"}, "checkinterval"),
])
def test_bad_options_name_the_option(options, message):
    with pytest.raises(nginx.NginxBanConfigError, match=message):
        nginx.Settings.from_options("jail", options)


def test_a_burst_of_bans_goes_to_nginx_in_a_few_batches_and_to_the_state_file(tmp_path, management):
    action = make_action(tmp_path)
    action.start()
    try:
        for number in range(1000):
            action.ban({"ip": "10.1.%d.%d" % (number // 250, number % 250 + 1)})
        assert wait_for(lambda: len(management.bans.get("nginx-req-limit", ())) == 1000)
        adds = [request for request in management.requests if request[1] == "/add"]
        assert 1 <= len(adds) <= 5, adds
        state = (tmp_path / "state" / "nginx-req-limit.bans").read_text().split()
        assert len(state) == 1000 and "0a010001/32" in state
        action.unban({"ip": "10.1.0.1"})
        assert wait_for(lambda: "0a010001/32" not in management.bans["nginx-req-limit"])
        assert wait_for(lambda: "0a010001/32" not in (tmp_path / "state" / "nginx-req-limit.bans").read_text())
    finally:
        action.stop()
    assert management.bans["nginx-req-limit"] == set()


def test_allowlisted_addresses_never_reach_nginx(tmp_path, management):
    action = make_action(tmp_path, allowlist="192.0.2.0/24 ::1")
    action.start()
    try:
        action.ban({"ip": "192.0.2.9"})
        action.ban({"ip": "198.51.100.9"})
        assert wait_for(lambda: management.bans.get("nginx-req-limit") == {"c6336409/32"})
    finally:
        action.stop()


def test_bans_that_nginx_lost_are_sent_again_and_logged_once_with_the_cause(tmp_path, management, caplog):
    action = make_action(tmp_path, checkinterval="0.5")
    action.start()
    try:
        action.ban({"ip": "198.51.100.9"})
        assert wait_for(lambda: management.bans.get("nginx-req-limit") == {"c6336409/32"})
        assert action.enforced is True
        with caplog.at_level(logging.WARNING):
            management.bans["nginx-req-limit"].clear()  # what a flush, or an NGINX restart without the state file, does
            assert action.enforced is False
            assert wait_for(lambda: management.bans["nginx-req-limit"] == {"c6336409/32"}, timeout=5)
            time.sleep(1.2)  # two more checks, which must not log again
        healed = [record.getMessage() for record in caplog.records if "were not enforced in NGINX" in record.getMessage()]
        assert len(healed) == 1, healed
        assert "it held 0 of the jail's 1 bans" in healed[0] and "periodic check" in healed[0]
        assert action.enforced is True
    finally:
        action.stop()


def test_nginx_down_is_logged_once_and_its_return_too(tmp_path, caplog):
    action = make_action(tmp_path, checkinterval="0.5")
    with caplog.at_level(logging.WARNING):
        assert action._check("periodic check") is False  # pylint: disable=protected-access
        assert action._check("periodic check") is False  # pylint: disable=protected-access
        assert action.enforced is False
        server = FakeManagement(tmp_path / "ban.sock")
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            assert action._check("periodic check") is True  # pylint: disable=protected-access
        finally:
            server.shutdown()
            server.server_close()
    messages = [record.getMessage() for record in caplog.records]
    assert len([message for message in messages if "bans not enforced in NGINX" in message]) == 1, messages
    assert len([message for message in messages if "enforces the jail's 0 bans again" in message]) == 1, messages


def test_saved_says_when_the_state_file_holds_every_ban_fail2ban_lists(tmp_path):
    # What the boot wait (floodguard_watch.py --wait-restored) asks before NGINX may start.
    jail = Jail("nginx-req-limit")
    listed = []
    jail.actions = types.SimpleNamespace(banManager=types.SimpleNamespace(getBanList=lambda: list(listed)))
    action = nginx.NginxAction(jail, "floodguard_nginx", socket=str(tmp_path / "ban.sock"), statedir=str(tmp_path / "state"),
                               allowlist="192.0.2.0/24")
    action.start()
    try:
        listed.extend(["198.51.100.9", "192.0.2.7"])
        # fail2ban lists a restored ban a moment before it calls ban().
        assert action.saved is False
        action.ban({"ip": "198.51.100.9"})
        assert wait_for(lambda: action.saved)
        # The allowlisted one is never sent, so it is not waited for.
        assert (tmp_path / "state" / "nginx-req-limit.bans").read_text().split() == ["c6336409/32"]
    finally:
        action.stop()


def test_nginx_down_keeps_the_bans_in_the_state_file(tmp_path):
    action = make_action(tmp_path)
    action.start()
    try:
        action.ban({"ip": "198.51.100.9"})
        assert wait_for(lambda: "c6336409/32" in (tmp_path / "state" / "nginx-req-limit.bans").read_text())
    finally:
        action.stop()
