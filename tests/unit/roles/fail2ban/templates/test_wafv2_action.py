# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fail2ban role's AWS edge: which jails get the floodguard_wafv2.py action, with which options."""

from __future__ import annotations

from ansible_collections.floodguard.shield.tests.unit.roles.fail2ban.templates.test_fail2ban_templates import (
    default_jail, render, sections)

EDGE = dict(fail2ban_wafv2_enabled=True, fail2ban_wafv2_ip_sets=["fg-v4", "fg-v6"], fail2ban_wafv2_region="eu-west-1",
            fail2ban_wafv2_endpoint_url="http://moto:5000", __fail2ban_wafv2_jails=["nginx-req-limit", "manual"])


def test_edge_is_off_by_default():
    actions = sections(render("banactions.local.j2"))
    assert "floodguard_wafv2" not in str(actions)


def test_mirrored_jails_get_the_edge_action_after_the_firewall_one():
    actions = sections(render("banactions.local.j2", fail2ban_recidive_enabled=True, **EDGE))
    firewall, edge = actions["nginx-req-limit"]["action"].split("\n")
    assert firewall.startswith("floodguard_nftables.py[name=nginx-req-limit,")
    assert edge == ('floodguard_wafv2.py[ipsets="fg-v4 fg-v6", scope=REGIONAL, region="eu-west-1", '
                    'endpoint="http://moto:5000", flushdelay=1, retrymax=60, allowlist="127.0.0.0/8 ::1 192.0.2.10"]')
    assert actions["manual"]["action"].split("\n")[1].startswith("floodguard_wafv2.py[")
    # Not mirrored: not in the list.
    assert "floodguard_wafv2" not in actions["sshd"]["action"] + actions["recidive"]["action"]


def test_jails_with_their_own_actions_keep_them():
    jail = dict(default_jail(), action=["iptables-multiport", "sendmail-whois[dest=ops@example.com]"])
    actions = sections(render("banactions.local.j2", fail2ban_jails=[jail], **EDGE))
    assert actions["nginx-req-limit"]["action"].split("\n")[:3] == [
        'iptables-multiport[name=nginx-req-limit, port="http,https", protocol="tcp"]', "floodguard_watch.py[name=nginx-req-limit]",
        "sendmail-whois[dest=ops@example.com]"]
    assert actions["nginx-req-limit"]["action"].split("\n")[3].startswith("floodguard_wafv2.py[")


def test_the_edge_action_follows_the_nginx_one():
    actions = sections(render("banactions.local.j2", fail2ban_ban_backends=["firewall", "nginx"], **EDGE))
    firewall, nginx, edge = actions["nginx-req-limit"]["action"].split("\n")
    assert firewall.startswith("floodguard_nftables.py[name=nginx-req-limit,")
    assert nginx.startswith("floodguard_nginx.py[")
    assert edge.startswith("floodguard_wafv2.py[")
