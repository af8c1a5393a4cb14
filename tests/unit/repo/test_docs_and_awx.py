# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks that keep the documentation and the AWX definitions in step with the code."""

from __future__ import annotations

import json
import pathlib
import re
import subprocess
import sys

import yaml

REPO = pathlib.Path(__file__).resolve().parents[3]
AWX = REPO / "extensions" / "awx"


def test_readme_role_tables_match_argument_specs():
    result = subprocess.run([sys.executable, str(REPO / "tools" / "role_docs.py"), "--check"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_role_has_a_table_in_the_readme():
    readme = (REPO / "README.md").read_text()
    for role in sorted(path.name for path in (REPO / "roles").iterdir() if path.is_dir()):
        assert "<!-- BEGIN role-variables %s -->" % role in readme, "README.md has no variable table for role %s" % role


def test_every_role_default_is_specified_and_documented():
    for role_dir in sorted(path for path in (REPO / "roles").iterdir() if path.is_dir()):
        defaults = yaml.safe_load((role_dir / "defaults" / "main.yml").read_text()) or {}
        spec = yaml.safe_load((role_dir / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
        assert sorted(defaults) == sorted(spec), "%s: defaults/main.yml and meta/argument_specs.yml name different variables" % role_dir.name
        for name in defaults:
            assert name.startswith(role_dir.name + "_"), "%s: %s is not prefixed with the role name" % (role_dir.name, name)
            assert spec[name].get("description"), "%s: %s has no description" % (role_dir.name, name)


def test_job_templates_point_at_real_playbooks_and_surveys():
    templates = yaml.safe_load((AWX / "job_templates.yml").read_text())["controller_templates"]
    assert {template["playbook"] for template in templates} >= {"playbooks/site.yml", "playbooks/ban.yml", "playbooks/unban.yml", "playbooks/status.yml"}
    for template in templates:
        assert (REPO / template["playbook"]).is_file(), template["name"]
        if template.get("survey_enabled"):
            survey = json.loads((AWX / template["survey_spec_file"]).read_text())
            playbook = (REPO / template["playbook"]).read_text()
            if "import_playbook: ban.yml" in playbook:
                playbook = (REPO / "playbooks" / "ban.yml").read_text()
            for question in survey["spec"]:
                assert re.search(r"\b%s\b" % question["variable"], playbook), (
                    "%s asks for %s, which %s does not use" % (template["survey_spec_file"], question["variable"], template["playbook"]))


def test_every_schedule_runs_a_job_template_of_this_file():
    data = yaml.safe_load((AWX / "job_templates.yml").read_text())
    names = {template["name"] for template in data["controller_templates"]}
    schedules = data["controller_schedules"]
    assert "floodguard - sync bans" in {schedule["unified_job_template"] for schedule in schedules}
    for schedule in schedules:
        assert schedule["unified_job_template"] in names, schedule["name"]
        assert "RRULE:" in schedule["rrule"], schedule["name"]
