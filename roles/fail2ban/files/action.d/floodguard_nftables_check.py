# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Check the options of the fail2ban action floodguard_nftables.py, since `fail2ban-client -t` does not load Python actions.

Deployed next to the action, whose option parsing it uses::

    python3 /etc/fail2ban/action.d/floodguard_nftables_check.py --check-config   # every jail, as fail2ban reads them
    python3 /etc/fail2ban/action.d/floodguard_nftables_check.py port=http,https protocol=tcp ...   one set of options
"""

import ast
import json
import os
import subprocess
import sys

# Run as a script, this file's directory is first on sys.path: the action next to it imports as is.
import floodguard_nftables as action

ACTION_FILE_NAME = "floodguard_nftables.py"


def check_options(jail, options):
    """'' when the options work for jail, else why not (the option and the fix)."""
    try:
        action.Settings.from_options(jail, options)
    except action.NftablesConfigError as error:
        return str(error)
    return ""


def configured_actions(dump):
    """[(jail, action name, options)] of this action in `fail2ban-client --dump` output.

    The dump is fail2ban's own reading of the configuration: one Python literal per line, e.g.
    ['set', 'manual', 'addaction', 'floodguard_nftables', '/etc/fail2ban/action.d/floodguard_nftables.py', '{"port": "all"}'].
    """
    found = []
    for line in dump.splitlines():
        if "addaction" not in line or not line.startswith("["):
            continue
        try:
            command = ast.literal_eval(line)
        except (ValueError, SyntaxError):
            continue
        if len(command) >= 5 and command[0] == "set" and command[2] == "addaction" \
                and os.path.basename(str(command[4])) == ACTION_FILE_NAME:
            options = json.loads(command[5]) if len(command) > 5 and command[5] else {}
            found.append((command[1], command[3], options))
    return found


def check_configuration(client="fail2ban-client"):
    """Check every jail's options of this action as fail2ban reads them from /etc/fail2ban."""
    done = subprocess.run([client, "--dump"], capture_output=True, text=True, check=False, env=dict(os.environ, LC_ALL="C"))
    if done.returncode:
        sys.stderr.write("fail2ban-client --dump failed (rc=%d): %s\n" % (done.returncode, done.stderr.strip()))
        return 1
    problems = []
    actions = configured_actions(done.stdout)
    for jail, action_name, options in actions:
        problem = check_options(jail, options)
        if problem:
            problems.append("jail %s, action %s: %s" % (jail, action_name, problem))
    for problem in problems:
        sys.stderr.write("floodguard_nftables: %s\n" % problem)
    if not problems:
        sys.stdout.write("OK: %d jail action(s) checked: %s\n" % (len(actions), ", ".join(jail for jail, _name, _options in actions)))
    return 1 if problems else 0


def main(argv):
    """--check-config: every jail's options, as fail2ban reads them; option=value ...: one set of options."""
    if argv == ["--check-config"]:
        return check_configuration()
    options = {}
    for argument in argv:
        key, separator, value = argument.partition("=")
        if not separator:
            sys.stderr.write("%r is not option=value (or give --check-config)\n" % argument)
            return 2
        options[key] = value
    try:
        settings = action.Settings.from_options(options.get("name", "jail"), options)
    except action.NftablesConfigError as error:
        sys.stderr.write("floodguard_nftables: %s\n" % error)
        return 1
    sys.stdout.write("OK: %s\n" % " ".join(part for part in (settings.match, settings.blocktype) if part))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
