"""Keeps the role-variable tables in README.md in step with roles/*/meta/argument_specs.yml.

Each table sits between `<!-- BEGIN role-variables ROLE -->` and `<!-- END role-variables ROLE -->`.
`role_docs.py` rewrites them; `role_docs.py --check` exits 1 when one differs (the unit tests run it),
so the README cannot drift from what the roles accept.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import re
import sys

import yaml

REPO = pathlib.Path(__file__).resolve().parent.parent
MARKERS = re.compile(
    r"(<!-- BEGIN role-variables (?P<role>[a-z0-9_]+) -->\n)(?P<body>.*?)(<!-- END role-variables (?P=role) -->)",
    re.DOTALL,
)


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _default(option: dict) -> str:
    if "default" not in option:
        return "required" if option.get("required") else "(none)"
    return "`%s`" % json.dumps(option["default"]) if not isinstance(option["default"], str) else "`%s`" % option["default"]


def render_table(role: str) -> str:
    spec_file = REPO / "roles" / role / "meta" / "argument_specs.yml"
    options = yaml.safe_load(spec_file.read_text())["argument_specs"]["main"].get("options", {})
    rows = ["| Variable | Type | Default | Description |", "| --- | --- | --- | --- |"]
    for name in sorted(options):
        option = options[name]
        kind = option.get("type", "str")
        if option.get("elements"):
            kind += " of " + option["elements"]
        description = option.get("description", "")
        if isinstance(description, list):
            description = " ".join(description)
        if option.get("choices"):
            description += " Choices: %s." % ", ".join("`%s`" % choice for choice in option["choices"])
        rows.append("| `%s` | %s | %s | %s |" % (name, kind, _cell(_default(option)), _cell(description)))
    return "\n".join(rows) + "\n"


def refresh(text: str) -> str:
    return MARKERS.sub(lambda m: m.group(1) + render_table(m.group("role")) + m.group(4), text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when a table is out of date")
    parser.add_argument("files", nargs="*", type=pathlib.Path, default=[REPO / "README.md"])
    args = parser.parse_args()
    stale = []
    for path in args.files:
        current = path.read_text()
        wanted = refresh(current)
        if wanted != current:
            if args.check:
                stale.append(str(path))
            else:
                path.write_text(wanted)
    if stale:
        print("role-variable tables are out of date in %s: run tools/role_docs.py" % ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
