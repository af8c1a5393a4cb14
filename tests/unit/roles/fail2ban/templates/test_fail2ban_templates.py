# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The templates of the floodguard.shield.fail2ban role (ban actions, iptables block type, jails), rendered from its defaults."""

from __future__ import annotations

import pathlib

import jinja2
import pytest
import yaml

from ansible_collections.floodguard.shield.plugins.filter import fail2ban_config as f2b

ROLE = pathlib.Path(__file__).resolve().parents[5] / "roles" / "fail2ban"


def defaults():
    """defaults/main.yml with the NGINX log path resolved, as the role sees it on a plain host."""
    values = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    values["fail2ban_jails"][0]["logpath"] = "/var/log/nginx/error.log"
    return values


def default_jail():
    return defaults()["fail2ban_jails"][0]


def render(template, **changes):
    settings = defaults()
    settings.update(changes)
    settings["__fail2ban_jails_normalized"] = f2b.fail2ban_normalize_jails(settings["fail2ban_jails"])
    settings["__fail2ban_banaction_names"] = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())["__fail2ban_banaction_names"]
    settings["__fail2ban_ignoreip_effective"] = ["127.0.0.0/8", "::1", "192.0.2.10"] + settings["fail2ban_ignoreip"]
    settings["ansible_managed"] = "Ansible managed"
    # What the templated defaults give without the nginx_ratelimit role in the play.
    settings["fail2ban_ban_backends"] = changes.get("fail2ban_ban_backends", ["firewall"])
    settings["fail2ban_nginx_ban_socket"] = changes.get("fail2ban_nginx_ban_socket", "/run/floodguard-nginx/ban.sock")
    settings["fail2ban_nginx_ban_state_dir"] = changes.get("fail2ban_nginx_ban_state_dir", "/var/lib/floodguard/nginx-bans")
    # The escalation action (last line of a jail's action) is tested on its own; off, the other lines stay exact.
    settings["fail2ban_escalation_enabled"] = changes.get("fail2ban_escalation_enabled", False)
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(str(ROLE / "templates")), trim_blocks=True,
                                     undefined=jinja2.StrictUndefined)
    return environment.get_template(template).render(settings)


def sections(text):
    """{section: {option: value}} of a rendered fail2ban file (continuation lines joined with newlines)."""
    result, current, option = {}, None, None
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("["):
            current = result.setdefault(line.strip("[]"), {})
        elif line[0].isspace():
            current[option] += "\n" + line.strip()
        else:
            option, value = (part.strip() for part in line.split("=", 1))
            current[option] = value
    return result


def test_every_jail_bans_through_the_fast_nftables_action_with_drop_and_the_allowlist():
    actions = sections(render("banactions.local.j2", fail2ban_ignoreip=["198.51.100.0/24"]))
    # Jails the role does not manage keep fail2ban's stock action.
    assert actions["DEFAULT"] == {"banaction": "nftables-multiport", "banaction_allports": "nftables-allports"}
    allowlist = 'allowlist="127.0.0.0/8 ::1 192.0.2.10 198.51.100.0/24"'
    assert actions["nginx-req-limit"]["action"] == (
        'floodguard_nftables.py[name=nginx-req-limit, port="http,https", protocol="tcp", blocktype=drop, sleepinterval=0.02, '
        '%s]' % allowlist)
    assert actions["manual"]["action"] == (
        'floodguard_nftables.py[name=manual, port="all", protocol="tcp,udp", blocktype=drop, sleepinterval=0.02, %s]' % allowlist)
    assert actions["sshd"]["action"].startswith('floodguard_nftables.py[name=sshd, port="ssh", ')


def test_iptables_gives_every_jail_its_own_chain_with_drop():
    jails = [default_jail(), dict(default_jail(), name="api", ports="all")]
    actions = sections(render("banactions.local.j2", fail2ban_banaction="iptables-multiport", fail2ban_jails=jails,
                              fail2ban_recidive_enabled=True))
    assert actions["DEFAULT"]["banaction"] == "iptables-multiport"
    # Each with the watch that puts back a flushed chain and its bans.
    assert actions["nginx-req-limit"]["action"] == (
        'iptables-multiport[name=nginx-req-limit, port="http,https", protocol="tcp"]\nfloodguard_watch.py[name=nginx-req-limit]')
    assert actions["api"]["action"] == 'iptables-allports[name=api, protocol="tcp"]\nfloodguard_watch.py[name=api]'
    assert actions["recidive"]["action"] == 'iptables-allports[name=recidive, protocol="tcp,udp"]\nfloodguard_watch.py[name=recidive]'


@pytest.mark.parametrize("blocktype, ipv4, ipv6", [
    ("drop", "DROP", "DROP"),
    ("reject", "REJECT --reject-with icmp-port-unreachable", "REJECT --reject-with icmp6-port-unreachable"),
])
def test_iptables_block_type_covers_ipv4_and_ipv6(blocktype, ipv4, ipv6):
    # iptables.conf sets blocktype again for IPv6 in [Init?family=inet6]: an action parameter would not reach it.
    init = sections(render("iptables.local.j2", fail2ban_blocktype=blocktype))
    assert init == {"Init": {"blocktype": ipv4}, "Init?family=inet6": {"blocktype": ipv6}}


def test_a_jail_can_name_its_back_end_or_add_actions():
    jail = dict(default_jail(), action=["iptables-multiport", "sendmail-whois[dest=ops@example.com]"])
    actions = sections(render("banactions.local.j2", fail2ban_jails=[jail]))
    assert actions["nginx-req-limit"]["action"] == (
        'iptables-multiport[name=nginx-req-limit, port="http,https", protocol="tcp"]\n'
        "floodguard_watch.py[name=nginx-req-limit]\n"
        "sendmail-whois[dest=ops@example.com]")


def test_jails_file_holds_the_recipe_the_allowlist_and_the_manual_jail():
    jails = sections(render("jails.local.j2", fail2ban_ignoreip=["198.51.100.0/24"]))
    assert jails["DEFAULT"] == {"ignoreip": "127.0.0.0/8 ::1 192.0.2.10 198.51.100.0/24"}
    assert jails["nginx-req-limit"] == {
        "enabled": "true", "filter": "nginx-limit-req", "backend": "auto", "logpath": "/var/log/nginx/error.log",
        "findtime": "5", "maxretry": "2", "bantime": "300", "port": "http,https", "protocol": "tcp",
    }
    assert jails["manual"]["filter"] == "floodguard-manual"
    assert jails["manual"]["bantime"] == "30d"
    assert jails["sshd"] == {"enabled": "true", "backend": "systemd"}
    assert jails["recidive"] == {"enabled": "false"}


def test_jails_file_with_increment_recidive_and_options():
    jail = dict(default_jail(), logpath=["/var/log/a.log", "/var/log/b.log"], options={"usedns": "no", "ignorecache": False})
    jails = sections(render("jails.local.j2", fail2ban_jails=[jail], fail2ban_bantime_increment=True,
                            fail2ban_recidive_enabled=True, fail2ban_manual_jail_enabled=False, fail2ban_sshd_enabled=False))
    assert jails["DEFAULT"]["bantime.increment"] == "true"
    assert jails["DEFAULT"]["bantime.maxtime"] == "1w"
    assert jails["nginx-req-limit"]["logpath"] == "/var/log/a.log\n/var/log/b.log"
    assert jails["nginx-req-limit"]["usedns"] == "no"
    assert jails["nginx-req-limit"]["ignorecache"] == "false"
    assert jails["recidive"] == {"enabled": "true", "findtime": "1d", "maxretry": "5", "bantime": "1w"}
    assert "manual" not in jails
    assert jails["sshd"] == {"enabled": "false"}


def test_the_sleep_interval_goes_to_every_in_process_action():
    # 0 keeps fail2ban's own sleep step (the actions leave Utils.DEFAULT_SLEEP_INTERVAL alone).
    actions = sections(render("banactions.local.j2", fail2ban_ban_backends=["firewall", "nginx"], fail2ban_sleep_interval=0))
    for line in actions["nginx-req-limit"]["action"].split("\n"):
        assert ", sleepinterval=0, " in line


def test_the_nginx_back_end_adds_the_nginx_action_to_every_managed_jail_but_sshd():
    actions = sections(render("banactions.local.j2", fail2ban_ban_backends=["firewall", "nginx"], fail2ban_recidive_enabled=True))
    nginx = ('floodguard_nginx.py[name=%s, socket=/run/floodguard-nginx/ban.sock, statedir=/var/lib/floodguard/nginx-bans, '
             'sleepinterval=0.02, allowlist="127.0.0.0/8 ::1 192.0.2.10"]')
    for jail in ("nginx-req-limit", "manual", "recidive"):
        firewall, second = actions[jail]["action"].split("\n")
        assert firewall.startswith("floodguard_nftables.py[name=%s," % jail)
        assert second == nginx % jail
    assert "floodguard_nginx" not in actions["sshd"]["action"]


def test_the_nginx_back_end_alone_drops_the_firewall_actions_of_the_managed_jails():
    actions = sections(render("banactions.local.j2", fail2ban_ban_backends=["nginx"]))
    assert actions["nginx-req-limit"]["action"].startswith("floodguard_nginx.py[name=nginx-req-limit, ")
    assert actions["manual"]["action"].startswith("floodguard_nginx.py[name=manual, ")
    assert actions["sshd"]["action"].startswith("floodguard_nftables.py[name=sshd, ")


def test_escalation_is_the_last_action_of_the_role_jails_with_the_allowlist():
    jails = [default_jail()]
    actions = sections(render("banactions.local.j2", fail2ban_jails=jails, fail2ban_escalation_enabled=True,
                              fail2ban_escalation_threshold=7, fail2ban_ban_backends=["firewall", "nginx"]))
    lines = actions["nginx-req-limit"]["action"].split("\n")
    assert [line.split("[")[0] for line in lines] == ["floodguard_nftables.py", "floodguard_nginx.py", "floodguard_escalate.py"]
    assert lines[-1] == ('floodguard_escalate.py[threshold=7, window=600, ipv4prefix=24, ipv6prefix=64, '
                         'allowlist="127.0.0.0/8 ::1 192.0.2.10"]')
    # Not in the manual jail (an operator's bans are deliberate) nor in sshd.
    assert "floodguard_escalate.py" not in actions["manual"]["action"]
    assert "floodguard_escalate.py" not in actions["sshd"]["action"]
