# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks that keep the documentation and the AWX definitions in step with the code."""

from __future__ import annotations

import importlib
import json
import os
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


def test_every_exported_filter_is_used_and_documented():
    """Only the filters that roles, playbooks, Molecule or tools use are exported, each with its YAML docs."""
    used_in = "\n".join(path.read_text() for folder in ("roles", "playbooks", "molecule", "tools")
                        for path in (REPO / folder).rglob("*") if path.suffix in (".yml", ".yaml", ".j2", ".py"))
    for plugin in sorted((REPO / "plugins" / "filter").glob("*.py")):
        module = importlib.import_module("ansible_collections.floodguard.shield.plugins.filter." + plugin.stem)
        for name in module.FilterModule().filters():
            assert "floodguard.shield.%s" % name in used_in, "%s exports %s, which nothing uses" % (plugin.name, name)
            docs = yaml.safe_load((plugin.parent / (name + ".yml")).read_text())
            assert docs["DOCUMENTATION"]["name"] == name and docs["EXAMPLES"] and docs["RETURN"], name


def test_the_old_status_module_name_redirects_with_a_deprecation():
    runtime = yaml.safe_load((REPO / "meta" / "runtime.yml").read_text())
    galaxy = yaml.safe_load((REPO / "galaxy.yml").read_text())
    routing = runtime["plugin_routing"]["modules"]["fail2ban_status"]
    assert routing["redirect"] == "floodguard.shield.fail2ban_info"
    assert (REPO / "plugins" / "modules" / "fail2ban_info.py").is_file()
    assert not (REPO / "plugins" / "modules" / "fail2ban_status.py").exists()
    removal = routing["deprecation"]["removal_version"]
    assert removal.endswith(".0.0") and int(removal.split(".")[0]) > int(galaxy["version"].split(".")[0])
    assert "fail2ban_info" in routing["deprecation"]["warning_text"]


def test_the_old_status_module_name_still_resolves():
    """ansible-doc, which loads modules as playbooks do, finds fail2ban_info under the old name."""
    result = subprocess.run([str(pathlib.Path(sys.executable).parent / "ansible-doc"), "--json", "floodguard.shield.fail2ban_status"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    docs = json.loads(result.stdout)
    assert docs["floodguard.shield.fail2ban_status"]["doc"]["module"] == "fail2ban_info"
    assert "has been deprecated" in result.stderr and "fail2ban_info" in result.stderr


def _checkout_files():
    """The checkout's files, relative to it, without git (the controller container of `make unit CORE=2.21` has none)."""
    skipped = {".git", ".venv", ".cache", "tests/output", "artifacts", "bench/results"}
    for directory, subdirectories, files in os.walk(REPO):
        relative = os.path.relpath(directory, REPO)
        subdirectories[:] = [name for name in subdirectories if os.path.normpath(os.path.join(relative, name)) not in skipped
                             and name != "__pycache__"]
        for name in files:
            yield os.path.normpath(os.path.join(relative, name))


def test_nothing_names_the_status_module_by_its_old_name():
    """README, AWX, playbooks and tests use fail2ban_info; only the redirect and the changelog keep the old name."""
    allowed = {"meta/runtime.yml", "changelogs", "tests/unit/repo/test_docs_and_awx.py", "plugins/modules/fail2ban_info.py",
               "molecule/modules/verify.yml"}
    for name in _checkout_files():
        if any(name == place or name.startswith(place + "/") for place in allowed):
            continue
        path = REPO / name
        if path.is_file() and path.suffix in (".py", ".yml", ".yaml", ".md", ".json", ".j2"):
            assert "shield.fail2ban_status" not in path.read_text(), "%s names floodguard.shield.fail2ban_status" % name
