# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The defaults of the floodguard.shield.fail2ban role against its input checks and jail normalisation (the fail2ban_config filter)."""

from __future__ import annotations

import copy
import pathlib

import pytest
import yaml

from ansible.errors import AnsibleFilterError

from ansible_collections.floodguard.shield.plugins.filter import fail2ban_config as f2b

ROLE = pathlib.Path(__file__).resolve().parents[5] / "roles" / "fail2ban"
DEFAULT_JAIL = {
    "name": "nginx-req-limit", "filter": "nginx-limit-req", "logpath": "/var/log/nginx/error.log",
    "findtime": 5, "maxretry": 2, "bantime": 300, "ports": ["http", "https"],
}


def defaults():
    """defaults/main.yml with the NGINX log path resolved, as the role sees it on a plain host."""
    values = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    values["fail2ban_jails"][0]["logpath"] = "/var/log/nginx/error.log"
    values["fail2ban_ban_backends"] = ["firewall"]  # without nginx_ratelimit_ban_enabled
    return values


def with_changes(**changes):
    settings = defaults()
    settings.update(changes)
    return settings


def test_defaults_are_valid_and_are_the_recipe():
    settings = defaults()
    assert f2b.fail2ban_problems(settings) == []
    assert settings["fail2ban_jails"] == [DEFAULT_JAIL]
    assert settings["fail2ban_banaction"] == "nftables"
    assert settings["fail2ban_manual_jail_name"] == "manual"
    assert f2b.fail2ban_seconds(settings["fail2ban_manual_bantime"]) == 30 * 86400


@pytest.mark.parametrize(
    "jail_changes, fragment",
    [
        ({"name": "nginx req limit"}, "name is 'nginx req limit': give 1 to 24 letters"),
        ({"name": "nginx[req]"}, "no spaces or brackets"),
        ({"name": "a" * 25}, "give 1 to 24 letters"),
        ({"name": "recidive"}, "is reserved"),
        ({"findtime": -5}, "findtime is -5: give a positive number of seconds"),
        ({"findtime": "5 minutes"}, "findtime is '5 minutes'"),
        ({"bantime": 0}, "bantime is 0"),
        ({"maxretry": 0}, "maxretry is 0: give a whole number of matches of 1 or more"),
        ({"maxretry": "two"}, "maxretry is 'two'"),
        ({"ports": ["http", "99999"]}, "'99999' is not a port"),
        ({"ports": []}, "ports is []"),
        ({"protocol": "icmp"}, "protocol is 'icmp'"),
        ({"logpath": "var/log/nginx/error.log"}, "give absolute paths"),
        ({"backend": "journal"}, "backend is 'journal'"),
        ({"action": ["nftables", "two\nlines"]}, "action is"),
        ({"options": {"ignoreip": "0.0.0.0/0"}}, "options has key 'ignoreip'"),
        ({"options": {"usedns": ["no"]}}, "options.usedns is ['no']"),
        ({"colour": "red"}, "unknown keys colour"),
    ],
)
def test_bad_jails_are_named_with_the_fix(jail_changes, fragment):
    jail = dict(DEFAULT_JAIL, **jail_changes)
    problems = f2b.fail2ban_problems(with_changes(fail2ban_jails=[jail]))
    assert len(problems) == 1, problems
    assert problems[0].startswith("fail2ban_jails[0]")
    assert fragment in problems[0]


def test_every_problem_is_reported_at_once():
    jail = dict(DEFAULT_JAIL, name="bad name", findtime=-1, maxretry=0)
    problems = f2b.fail2ban_problems(with_changes(fail2ban_jails=[jail], fail2ban_banaction="ufw",
                                                  fail2ban_ignoreip=["10.0.0.0/33"]))
    assert len(problems) == 5, problems


def test_jail_without_log_needs_the_journal():
    jail = {"name": "api", "filter": "nginx-limit-req"}
    assert "has no logpath" in f2b.fail2ban_problems(with_changes(fail2ban_jails=[jail]))[0]
    jail.update(backend="systemd", journalmatch="_SYSTEMD_UNIT=nginx.service")
    assert f2b.fail2ban_problems(with_changes(fail2ban_jails=[jail])) == []


def test_jail_names_are_unique_including_the_manual_jail():
    jails = [DEFAULT_JAIL, dict(DEFAULT_JAIL, name="MANUAL")]
    problems = f2b.fail2ban_problems(with_changes(fail2ban_jails=jails))
    assert len(problems) == 1 and "used twice" in problems[0]
    # With the manual jail off, the name is free.
    assert f2b.fail2ban_problems(with_changes(fail2ban_jails=jails, fail2ban_manual_jail_enabled=False)) == []


@pytest.mark.parametrize(
    "changes, fragment",
    [
        ({"fail2ban_banaction": "ufw"}, "fail2ban_banaction is 'ufw': give nftables or iptables-multiport"),
        ({"fail2ban_blocktype": "DROP"}, "fail2ban_blocktype is 'DROP'"),
        ({"fail2ban_ignoreip": ["198.51.100.0/24", "10.0.0.0/33"]}, "fail2ban_ignoreip holds '10.0.0.0/33'"),
        ({"fail2ban_ignoreip": "10.0.0.1"}, "fail2ban_ignoreip must be a list"),
        ({"fail2ban_manual_jail_name": "my jail"}, "fail2ban_manual_jail_name is 'my jail'"),
        ({"fail2ban_manual_bantime": "1 month"}, "fail2ban_manual_bantime is '1 month'"),
        ({"fail2ban_sshd_enabled": "yes"}, "fail2ban_sshd_enabled is 'yes': give true or false"),
        ({"fail2ban_bantime_increment": True, "fail2ban_bantime_factor": 0}, "fail2ban_bantime_factor is 0"),
        ({"fail2ban_recidive_enabled": True, "fail2ban_recidive_maxretry": 0}, "fail2ban_recidive_maxretry is 0"),
        ({"fail2ban_dbpurgeage": "-1"}, "fail2ban_dbpurgeage is '-1'"),
        ({"fail2ban_filters": [{"name": "x.conf", "content": "[Definition]\n"}]}, "fail2ban_filters[0].name is 'x.conf'"),
        ({"fail2ban_actions": [{"name": "x", "content": "no section"}]}, "fail2ban_actions[0].content must be"),
        ({"fail2ban_actions": [{"name": "iptables", "content": "[Definition]\n"}]}, "is the role's own action.d/iptables.local"),
        ({"fail2ban_ban_backends": ["firewall", "waf"]}, 'fail2ban_ban_backends is ["firewall", "waf"]: give a list of'),
        ({"fail2ban_ban_backends": []}, "fail2ban_ban_backends is []: give"),
        ({"fail2ban_ban_backends": "nginx"}, 'fail2ban_ban_backends is "nginx": give'),
        ({"fail2ban_wafv2_enabled": True}, "fail2ban_wafv2_enabled is true but fail2ban_wafv2_ip_sets is empty"),
        ({"fail2ban_escalation_enabled": "on"}, "fail2ban_escalation_enabled is 'on': give true or false"),
        ({"fail2ban_escalation_threshold": 1}, "fail2ban_escalation_threshold is 1: give a whole number from 2 to 1000000"),
        ({"fail2ban_escalation_threshold": "ten"}, 'fail2ban_escalation_threshold is "ten": give a whole number'),
        ({"fail2ban_escalation_window": 0}, "fail2ban_escalation_window is 0: give a whole number from 1 to 31536000"),
        ({"fail2ban_escalation_ipv4_prefix": 32}, "fail2ban_escalation_ipv4_prefix is 32: give a whole number from 8 to 31"),
        ({"fail2ban_escalation_ipv6_prefix": 128}, "fail2ban_escalation_ipv6_prefix is 128: give a whole number from 16 to 127"),
        ({"fail2ban_escalation_ipv6_prefix": True}, "fail2ban_escalation_ipv6_prefix is true: give a whole number"),
    ],
)
def test_bad_settings_are_named_with_the_fix(changes, fragment):
    problems = f2b.fail2ban_problems(with_changes(**changes))
    assert len(problems) == 1, problems
    assert fragment in problems[0]


def test_escalation_numbers_are_not_checked_when_it_is_off():
    assert f2b.fail2ban_problems(with_changes(fail2ban_escalation_enabled=False, fail2ban_escalation_threshold=0)) == []


def test_escalation_problems_come_with_the_others():
    problems = f2b.fail2ban_problems(with_changes(fail2ban_blocktype="DROP", fail2ban_escalation_window="-5"))
    assert [problem.split(" is ")[0] for problem in problems] == ["fail2ban_blocktype", "fail2ban_escalation_window"]


def test_settings_from_the_command_line_are_accepted():
    # -e gives strings.
    assert f2b.fail2ban_problems(with_changes(fail2ban_escalation_threshold="5", fail2ban_escalation_ipv6_prefix="56")) == []
    assert f2b.fail2ban_problems(with_changes(fail2ban_recidive_enabled=True, fail2ban_recidive_maxretry="3")) == []
    assert f2b.fail2ban_problems(with_changes(fail2ban_jails=[dict(DEFAULT_JAIL, maxretry="2", bantime="-1")])) == []


@pytest.mark.parametrize(
    "value, seconds",
    [(300, 300), ("300", 300), ("10m", 600), ("1h30m", 5400), ("30d", 2592000), ("1w", 604800), ("-1", -1)],
)
def test_durations(value, seconds):
    assert f2b.fail2ban_seconds(value) == seconds


def test_duration_that_is_not_one_raises():
    with pytest.raises(AnsibleFilterError):
        f2b.fail2ban_seconds("soon")


def test_database_keeps_bans_as_long_as_the_longest_ban():
    assert f2b.fail2ban_dbpurgeage([300]) == 86400
    assert f2b.fail2ban_dbpurgeage([300, "30d", "1w"]) == 2592000
    # A ban for ever is never purged by fail2ban: it does not set the age.
    assert f2b.fail2ban_dbpurgeage([300, -1]) == 86400
    assert f2b.fail2ban_dbpurgeage([300, "30d"], configured="60d") == 5184000


def test_normalised_jails_have_every_key():
    jail = f2b.fail2ban_normalize_jails([{"name": "api", "logpath": "/var/log/api.log", "ports": [8443, "8000:8080"]}])[0]
    assert jail == {
        "name": "api", "enabled": True, "filter": "api", "logpath": ["/var/log/api.log"], "backend": "auto",
        "journalmatch": None, "findtime": 600, "maxretry": 5, "bantime": 600, "ports": "8443,8000:8080",
        "protocol": "tcp", "action": None, "options": {},
    }


def test_defaults_are_not_changed_by_the_checks():
    settings = defaults()
    before = copy.deepcopy(settings)
    f2b.fail2ban_problems(settings)
    f2b.fail2ban_normalize_jails(settings["fail2ban_jails"])
    assert settings == before
