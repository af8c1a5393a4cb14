# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The batching core of the nftables, NGINX and WAF actions: its one allowlist parser, and the bulk path."""

from __future__ import annotations

import functools
import ipaddress
import os
import pickle
import sqlite3
import threading
import types

import pytest

from ansible_collections.floodguard.shield.tests.unit.roles.fail2ban.actions import load_action

batching = load_action("floodguard_batching.py")


class OptionError(batching.ConfigError):
    pass


@pytest.mark.parametrize("value, expected", [
    ("", []),
    (None, []),
    ("192.0.2.7", ["192.0.2.7/32"]),
    ("192.0.2.7/24, 2001:db8::1  ::1", ["192.0.2.0/24", "2001:db8::1/128", "::1/128"]),
])
def test_allowlist_words_become_networks(value, expected):
    assert batching.parse_allowlist(value, OptionError) == [ipaddress.ip_network(item) for item in expected]


@pytest.mark.parametrize("value", ["192.0.2.1 office.example", "192.0.2.300", "2001:db8::/129"])
def test_a_word_that_is_no_address_raises_the_callers_error_naming_it(value):
    bad = value.split()[-1]
    with pytest.raises(OptionError, match=r"allowlist: '%s' is not an IP address or network" % bad.replace(".", r"\.")):
        batching.parse_allowlist(value, OptionError)


# --- the bulk path (fail2ban_ban's bulkban call); with real fail2ban it runs in Molecule's fail2ban scenario ---

def bulk_file(tmp_path, text, mode=0o600):
    path = tmp_path / "bulk.txt"
    path.write_bytes(text.encode("utf-8"))
    path.chmod(mode)
    return str(path)


def test_the_bulk_file_gives_its_addresses(tmp_path):
    assert batching.read_bulk_file(bulk_file(tmp_path, "198.18.0.1\n2001:db8::7\n198.51.100.0/24\n")) == [
        "198.18.0.1", "2001:db8::7", "198.51.100.0/24"]


@pytest.mark.parametrize("mode", [0o620, 0o602, 0o666])
def test_a_bulk_file_others_may_write_is_refused(tmp_path, mode):
    with pytest.raises(batching.BulkBanRefused, match="writable by it alone"):
        batching.read_bulk_file(bulk_file(tmp_path, "198.18.0.1\n", mode))


def test_a_bulk_file_behind_a_symlink_is_refused(tmp_path):
    link = tmp_path / "link.txt"
    link.symlink_to(bulk_file(tmp_path, "198.18.0.1\n"))
    with pytest.raises(batching.BulkBanRefused, match="cannot open the address file"):
        batching.read_bulk_file(str(link))


def test_a_bulk_path_that_is_no_regular_file_is_refused(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)
    with pytest.raises(batching.BulkBanRefused, match="is not a regular file"):
        batching.read_bulk_file(str(fifo))


def test_a_bulk_file_with_other_text_is_refused(tmp_path):
    with pytest.raises(batching.BulkBanRefused, match="not ASCII"):
        batching.read_bulk_file(bulk_file(tmp_path, "198.18.0.1\nstraße\n"))


@pytest.mark.parametrize("text, expected", [
    ("198.18.0.1", True), ("2001:db8::7", True), ("198.51.100.0/24", True), ("2001:db8::/64", True),
    ("198.51.100.1/24", False), ("198.18.0.300", False), ("not-an-ip", False), ("", False),
])
def test_is_address_takes_what_fail2ban_ban_sends(text, expected):
    assert batching.is_address(text) is expected


class Recorder(batching.BatchingAction):
    """A batching action that only records what would be written (the core's part of the bulk path)."""

    @classmethod
    def settings_from(cls, jail_name, options):
        return types.SimpleNamespace(flushdelay=0, ticketwait=0, sleepinterval=0)

    def _target(self, ip, banned):
        return str(ip)

    def _flush_pending(self):
        self._take_pending()


class Actions(dict):
    """fail2ban's Actions as bulkban reads it: a mapping of the jail's actions, with its ban list."""

    def __init__(self):
        super().__init__()
        self.banManager = types.SimpleNamespace(addBanTicket=self.refuse)
        self.banEpoch = 0

    @staticmethod
    def refuse(ticket):
        raise AssertionError("a refused bulk ban must not reach fail2ban's ban list")


class OneByOne:
    """An action of another kind (a command action): it takes bans one by one."""


def bulk_jail(increment=False, other_action=False):
    jail = types.SimpleNamespace(name="manual", actions=Actions(), database=None,
                                 getBanTimeExtra=lambda option: increment if option == "increment" else None)
    action = Recorder(jail, "floodguard_nftables")
    jail.actions["floodguard_nftables"] = action
    if other_action:
        jail.actions["iptables-allports"] = OneByOne()
    return jail, action


@pytest.mark.parametrize("increment", [True, "true", "1"])
def test_bulkban_refuses_a_jail_that_increments_ban_times(tmp_path, increment):
    _jail, action = bulk_jail(increment=increment)
    with pytest.raises(ValueError, match="bulkban refused: jail manual has bantime.increment on"):
        action.bulkban(bulk_file(tmp_path, "198.18.0.1\n"))
    assert action._pending == {}


def test_bulkban_refuses_a_jail_with_an_action_that_bans_one_by_one(tmp_path):
    _jail, action = bulk_jail(other_action=True)
    with pytest.raises(ValueError, match=r"bulkban refused: .* take bans one by one \(iptables-allports\)"):
        action.bulkban(bulk_file(tmp_path, "198.18.0.1\n"))
    assert action._pending == {}


def test_bulkban_refuses_a_file_with_a_bad_entry_before_banning_any(tmp_path):
    _jail, action = bulk_jail(increment="false")
    with pytest.raises(ValueError, match=r"bulkban refused: 1 entry of .* is not an IP address or network \(e.g. 198.51.100.1/24\)"):
        action.bulkban(bulk_file(tmp_path, "198.18.0.1\n198.51.100.1/24\n"))
    assert action._pending == {}


def commitandrollback(function):
    """fail2ban's decorator of its database methods (fail2ban/server/database.py, 1.0 and 1.1): the
    database's lock, then one transaction per call."""
    @functools.wraps(function)
    def wrapper(self, *args, **kwargs):
        with self._lock:
            with self._db:
                cursor = self._db.cursor()
                try:
                    return function(self, cursor, *args, **kwargs)
                finally:
                    cursor.close()
    return wrapper


class Database:
    """A database shaped as fail2ban's Fail2BanDb is where write_bans() reaches into it."""

    def __init__(self):
        self._lock = threading.RLock()
        self._db = sqlite3.connect(":memory:", check_same_thread=False)
        self._db.execute("CREATE TABLE bans(jail TEXT, ip TEXT)")
        self.commits = 0
        self._db.set_trace_callback(self.count)

    def count(self, statement):
        self.commits += statement.strip().upper() == "COMMIT"

    @commitandrollback
    def addBan(self, cursor, jail, ticket):  # pylint: disable=invalid-name  # fail2ban's name
        cursor.execute("INSERT INTO bans(jail, ip) VALUES(?, ?)", (jail.name, ticket))

    def rows(self):
        return self._db.execute("SELECT COUNT(*) FROM bans WHERE jail = 'manual'").fetchone()[0]


def test_the_bans_go_to_the_database_in_one_transaction():
    database = Database()
    batching.write_bans(database, types.SimpleNamespace(name="manual"), ["198.18.0.%d" % i for i in range(1, 201)])
    assert database.rows() == 200 and database.commits == 1


class PlainDatabase:
    """A database whose addBan is not fail2ban's decorated one."""

    def __init__(self):
        self.calls = []

    def addBan(self, jail, ticket):  # pylint: disable=invalid-name  # fail2ban's name
        self.calls.append((jail.name, ticket))


def test_without_fail2bans_decorator_each_ban_is_its_own_addban():
    database = PlainDatabase()
    batching.write_bans(database, types.SimpleNamespace(name="manual"), ["198.18.0.1", "198.18.0.2"])
    assert database.calls == [("manual", "198.18.0.1"), ("manual", "198.18.0.2")]


def test_a_refusal_reaches_fail2ban_client_as_an_error_it_can_unpickle(tmp_path):
    # fail2ban pickles a command's exception to its client, which knows none of the action's classes.
    _jail, action = bulk_jail(increment=True)
    with pytest.raises(ValueError) as info:
        action.bulkban(bulk_file(tmp_path, "198.18.0.1\n"))
    assert not isinstance(info.value, batching.BulkBanRefused)
    assert "bantime.increment" in str(pickle.loads(pickle.dumps(info.value)))


class FlusherOnly(Recorder):
    """A batching action that writes only from its own flusher (the WAF edge's retries)."""

    WRITES_IN_CALLER = False

    def _flush_pending(self):
        raise AssertionError("a bulk ban must not write in the caller's thread for this action")


def test_a_bulk_ban_leaves_an_action_that_writes_in_its_own_flusher_pending_and_wakes_it():
    jail = types.SimpleNamespace(name="manual", actions=Actions(), database=None, getBanTimeExtra=lambda option: None)
    action = FlusherOnly(jail, "floodguard_wafv2")
    action._write_all(["198.18.0.1", "198.18.0.2"])
    assert action._pending == {"198.18.0.1": True, "198.18.0.2": True} and action._wakeup.is_set()


def test_a_bulk_ban_writes_in_the_callers_thread_by_default():
    _jail, action = bulk_jail()
    action._write_all(["198.18.0.1"])
    assert action._pending == {} and not action._wakeup.is_set()
