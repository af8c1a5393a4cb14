# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Check the options of the floodguard fail2ban actions, since `fail2ban-client -t` does not load Python actions.

Deployed next to the actions, whose own option parsing it uses::

    python3 /etc/fail2ban/action.d/floodguard_check.py --check-config   # every floodguard action of every jail
    python3 /etc/fail2ban/action.d/floodguard_check.py floodguard_nftables.py port=http,https protocol=tcp
    python3 /etc/fail2ban/action.d/floodguard_check.py floodguard_wafv2.py ipsets=floodguard-v4 region=eu-west-1 --connect

An action is loaded only when it is used (floodguard_wafv2.py needs python3-boto3 only then).
"""

import ast
import json
import os
import subprocess
import sys

# Run as a script, this file's directory is first on sys.path: the base next to it imports as is.
import floodguard_batching as batching

# The actions this checker knows, by file name.
ACTIONS = ("floodguard_nftables.py", "floodguard_nginx.py", "floodguard_wafv2.py", "floodguard_escalate.py")


def load_action(file_name):
    """The action module deployed next to this file, as fail2ban loads it (by path, once per process)."""
    return batching.load_sibling(file_name, file_name[:-len(".py")])


def check_options(file_name, jail, options):
    """'' when the options work for jail, else why not (the option and the fix)."""
    try:
        load_action(file_name).Action.settings_from(jail, options)
    except batching.ConfigError as error:
        return str(error)
    return ""


def configured_actions(dump):
    """[(jail, action name, action file name, options)] of the floodguard actions in `fail2ban-client --dump` output.

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
                and os.path.basename(str(command[4])) in ACTIONS:
            options = json.loads(command[5]) if len(command) > 5 and command[5] else {}
            found.append((command[1], command[3], os.path.basename(str(command[4])), options))
    return found


def check_configuration(client="fail2ban-client"):
    """Check every jail's options of the floodguard actions as fail2ban reads them from /etc/fail2ban."""
    done = subprocess.run([client, "--dump"], capture_output=True, text=True, check=False, env=dict(os.environ, LC_ALL="C"))
    if done.returncode:
        sys.stderr.write("fail2ban-client --dump failed (rc=%d): %s\n" % (done.returncode, done.stderr.strip()))
        return 1
    problems = []
    actions = configured_actions(done.stdout)
    for jail, action_name, file_name, options in actions:
        problem = check_options(file_name, jail, options)
        if problem:
            problems.append("%s: jail %s, action %s: %s" % (file_name[:-len(".py")], jail, action_name, problem))
    for problem in problems:
        sys.stderr.write("%s\n" % problem)
    if not problems:
        sys.stdout.write("OK: %d jail action(s) checked: %s\n" % (
            len(actions), ", ".join("%s (%s)" % (jail, action_name) for jail, action_name, _file, _options in actions)))
    return 1 if problems else 0


def check_one(file_name, arguments):
    """One set of options (option=value ...) of one action; --connect also reads what the action reaches."""
    connect = "--connect" in arguments
    options = {}
    for argument in arguments:
        if argument == "--connect":
            continue
        key, separator, value = argument.partition("=")
        if not separator:
            sys.stderr.write("%r is not option=value\n" % argument)
            return 2
        options[key] = value
    module = load_action(file_name)
    try:
        settings = module.Action.settings_from(options.get("name", "jail"), options)
        if connect and hasattr(module, "connect_report"):
            sys.stdout.write("".join(line + "\n" for line in module.connect_report(settings)))
    except batching.ConfigError as error:
        sys.stderr.write("%s: %s\n" % (file_name[:-len(".py")], error))
        return 1
    sys.stdout.write("OK: %s\n" % settings.summary())
    return 0


def main(argv):
    """--check-config: every jail's floodguard actions, as fail2ban reads them; ACTION option=value ...: one set."""
    if argv == ["--check-config"]:
        return check_configuration()
    if not argv or argv[0] not in ACTIONS:
        sys.stderr.write("usage: %s --check-config | {%s} option=value ... [--connect]\n" % (
            os.path.basename(sys.argv[0]), ",".join(ACTIONS)))
        return 2
    return check_one(argv[0], argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
