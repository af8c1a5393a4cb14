"""The operator playbooks run the way AWX runs them, and the way an operator types them.

AWX runs a job template's playbook with ansible-runner, no TTY and no prompts, and passes the
survey's answers as extra vars. These tests do the same with the survey specs in extensions/awx,
then check fail2ban and the firewall on the host itself.
"""

import json
import os
import pathlib
import subprocess
import time

import ansible_runner
import pytest

REPO = pathlib.Path(__file__).resolve().parents[3]
SURVEYS = REPO / "extensions" / "awx" / "surveys"
INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
# Documentation addresses (RFC 5737, RFC 3849): set elements only, no traffic goes to them.
BANNED_V4 = "203.0.113.77"
BANNED_V6 = "2001:db8::77"


def survey_extra_vars(survey, answers):
    """Extra vars as AWX builds them from a survey: defaults, then answers, checked against the spec."""
    spec = json.loads((SURVEYS / survey).read_text())["spec"]
    extra_vars = {}
    for question in spec:
        name = question["variable"]
        value = answers.get(name, question.get("default", ""))
        if question["type"] == "multiplechoice":
            assert value in question["choices"], "%s=%r is not a choice of the survey" % (name, value)
        if question.get("required"):
            assert value != "", "the survey requires %s" % name
        if isinstance(value, str) and "max" in question:
            assert question.get("min", 0) <= len(value) <= question["max"], "%s has a length outside the survey's bounds" % name
        if value != "" or question.get("required"):
            extra_vars[name] = value
    unknown = set(answers) - set(extra_vars)
    assert not unknown, "answers to questions the survey does not ask: %s" % unknown
    return extra_vars


def run_like_awx(tmp_path, playbook, extra_vars):
    """Runs playbooks/<playbook> with ansible-runner, as an AWX job does; returns the runner."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    return ansible_runner.run(
        private_data_dir=str(tmp_path),
        playbook=str(REPO / "playbooks" / playbook),
        inventory=INVENTORY,
        extravars=extra_vars,
        envvars={"ANSIBLE_COLLECTIONS_PATH": os.environ["ANSIBLE_COLLECTIONS_PATH"], "ANSIBLE_NOCOLOR": "1"},
        quiet=True,
    )


def hosts_touched(runner):
    """The inventory hosts (not localhost) on which any task ran."""
    return {
        event["event_data"]["host"]
        for event in runner.events
        if event.get("event", "").startswith("runner_on_") and event.get("event_data", {}).get("host") not in (None, "localhost")
    }


def banned_in(host, jail):
    return host.check_output("fail2ban-client get %s banned", jail)


def firewall_holds(host, address, expected=True, seconds=10):
    """Whether the ruleset holds address (expected=True) or not (False) within seconds: the nftables
    action writes bans in batches, a few tens of milliseconds after fail2ban took them."""
    deadline = time.monotonic() + seconds
    while (address in host.check_output("nft list ruleset")) != expected:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


@pytest.fixture(name="web")
def fixture_web(host):
    return host


def test_site_playbook_protects_the_host(web):
    assert web.service("nginx").is_running
    assert web.service("fail2ban").is_running
    status = web.check_output("fail2ban-client status")
    assert "nginx-req-limit" in status and "manual" in status


def test_ban_status_unban_through_awx_surveys(web, tmp_path):
    ban = run_like_awx(tmp_path / "ban", "ban.yml", survey_extra_vars("ban.json", {"jail": "manual", "ips": "%s\n%s" % (BANNED_V4, BANNED_V6)}))
    assert ban.rc == 0, ban.stdout.read()
    banned = banned_in(web, "manual")
    assert BANNED_V4 in banned and BANNED_V6 in banned
    assert firewall_holds(web, BANNED_V4)

    status = run_like_awx(tmp_path / "status", "status.yml", survey_extra_vars("status.json", {"jail": "manual"}))
    output = status.stdout.read()
    assert status.rc == 0, output
    assert BANNED_V4 in output and BANNED_V6 in output
    assert hosts_touched(status), "status.yml ran no task on the web host"

    again = run_like_awx(tmp_path / "ban-again", "ban.yml", survey_extra_vars("ban.json", {"jail": "manual", "ips": BANNED_V4}))
    assert again.rc == 0
    assert again.stats["changed"] == {}, "banning an address that is banned already must change nothing"

    unban = run_like_awx(tmp_path / "unban", "unban.yml", survey_extra_vars("unban.json", {"jail": "manual", "ips": "%s, %s" % (BANNED_V4, BANNED_V6)}))
    assert unban.rc == 0, unban.stdout.read()
    banned = banned_in(web, "manual")
    assert BANNED_V4 not in banned and BANNED_V6 not in banned
    assert firewall_holds(web, BANNED_V4, expected=False)


@pytest.mark.parametrize(
    "playbook, extra_vars, names",
    [
        ("ban.yml", {"ips": BANNED_V4}, "jail"),
        ("ban.yml", {"jail": "manual"}, "ips"),
        ("ban.yml", {"jail": "manual", "ips": "203.0.113.300"}, "ips"),
        ("ban.yml", {"jail": "manual", "ips": "%s not-an-ip" % BANNED_V4}, "not-an-ip"),
        ("ban.yml", {"jail": "man ual", "ips": BANNED_V4}, "jail"),
        ("ban.yml", {"jail": "manual", "ips": BANNED_V4, "target": "no-such-group"}, "target"),
        ("unban.yml", {"jail": "manual", "ips": ""}, "ips"),
        ("status.yml", {"ip": "2001:db8::zz"}, "ip"),
    ],
)
def test_bad_extra_vars_stop_before_any_host(web, tmp_path, playbook, extra_vars, names):
    before = banned_in(web, "manual")
    runner = run_like_awx(tmp_path, playbook, extra_vars)
    output = runner.stdout.read()
    assert runner.rc != 0, output
    assert names in output, "the error does not name %s:\n%s" % (names, output)
    assert hosts_touched(runner) == set(), "a bad extra var reached a host"
    assert banned_in(web, "manual") == before


def test_unknown_jail_is_named_with_the_existing_ones(web, tmp_path):
    address = "203.0.113.78"
    runner = run_like_awx(tmp_path, "ban.yml", {"jail": "no-such-jail", "ips": address})
    output = runner.stdout.read()
    assert runner.rc != 0
    assert "no-such-jail" in output and "manual" in output and "nginx-req-limit" in output, output
    assert address not in banned_in(web, "manual")


def test_playbooks_run_by_collection_name(web):
    """`ansible-playbook floodguard.shield.ban`, as from an installed collection."""
    common = ["ansible-playbook", "-i", INVENTORY]
    ban = subprocess.run(common + ["floodguard.shield.ban", "-e", "jail=manual", "-e", "ips=%s" % BANNED_V4],
                         capture_output=True, text=True, check=False)
    assert ban.returncode == 0, ban.stdout + ban.stderr
    assert BANNED_V4 in banned_in(web, "manual")
    check = subprocess.run(common + ["floodguard.shield.unban", "--check", "-e", "jail=manual", "-e", "ips=%s" % BANNED_V4],
                           capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "changed=1" in check.stdout
    assert BANNED_V4 in banned_in(web, "manual"), "check mode must not unban"
    unban = subprocess.run(common + ["floodguard.shield.unban", "-e", "jail=manual", "-e", "ips=%s" % BANNED_V4],
                           capture_output=True, text=True, check=False)
    assert unban.returncode == 0, unban.stdout + unban.stderr
    assert BANNED_V4 not in banned_in(web, "manual")
