# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Local Debian test hosts in Docker, with an Ansible inventory: the stage for `make demo` and `make bench`.

A testbed is one Docker network and one container per host, all labelled with the testbed's name, each
booting systemd from the floodguard-test:<distro> image that `make images` builds, with the container
settings of every Molecule scenario (molecule/shared/vars/platform.yml). `up` writes
.cache/testbed/<name>/inventory.yml (community.docker.docker connection; inventory hosts are the container
names, fg-<name>-<host>, each in a group named <host>) and state.json (addresses, container names).

Examples:
  python3 tools/testbed.py up --name demo --distro bookworm --host web:172.29.0.10 --host attacker:172.29.0.20 \\
      --extra-addresses attacker:20
  ansible-playbook -i .cache/testbed/demo/inventory.yml playbooks/site.yml
  python3 tools/testbed.py down --name demo

`up` replaces a testbed of the same name (fresh hosts every time). Extra addresses (for floods from many
sources) are /32 addresses added on the host's interface, allocated in order from the subnet's network
address + --extra-start, skipping the hosts and the gateway; their interface label is <iface>:extra.
Only the Docker objects labelled floodguard.testbed=<name> are ever removed.
"""

import argparse
import ipaddress
import json
import os
import re
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STATE_ROOT = os.path.join(REPO, ".cache", "testbed")
LABEL = "floodguard.testbed"
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,30}$")
DISTROS = ("bookworm", "trixie")
BOOT_TIMEOUT_SECONDS = 90
# The one definition of a test host's container (shared with every Molecule scenario).
PLATFORM_FILE = os.path.join(REPO, "molecule", "shared", "vars", "platform.yml")


class TestbedError(Exception):
    """A problem the operator can fix; the message says how."""


def docker(*args, check=True, capture=True, timeout=120):
    """Runs the docker CLI with an argv list; returns stdout (stripped)."""
    try:
        done = subprocess.run(
            ["docker", *args], check=False, text=True, timeout=timeout,
            stdout=subprocess.PIPE if capture else None, stderr=subprocess.PIPE,
        )
    except FileNotFoundError:
        raise TestbedError("the docker CLI is not installed: run `make docker`")
    if check and done.returncode != 0:
        raise TestbedError("docker %s failed: %s" % (" ".join(args[:3]), (done.stderr or "").strip()))
    return (done.stdout or "").strip()


def platform():
    """The container settings of molecule/shared/vars/platform.yml (docker_container option names)."""
    import yaml  # PyYAML comes with Ansible (make venv)

    with open(PLATFORM_FILE) as handle:
        return yaml.safe_load(handle)["floodguard_platform"]


def image(distro):
    return "%s:%s" % (platform()["image"], distro)


def container_options():
    """`docker run` options for platform(): systemd as PID 1 with the image's own CMD."""
    settings = platform()
    options = []
    for capability in settings["capabilities"]:
        options += ["--cap-add", capability]
    options += ["--cgroupns", settings["cgroupns_mode"]]
    for volume in settings["volumes"]:
        options += ["-v", volume]
    for mount in settings["tmpfs"]:
        options += ["--tmpfs", mount]
    return options + ["--stop-signal", settings["stop_signal"]]


def container_name(testbed, host):
    return "fg-%s-%s" % (testbed, host)


def network_name(testbed):
    return "fg-%s" % testbed


def state_dir(testbed):
    return os.path.join(STATE_ROOT, testbed)


def _testbed_name(text):
    if not NAME_PATTERN.match(text):
        raise argparse.ArgumentTypeError(
            "%r: a testbed name is 1-31 lower-case letters, digits and dashes (it prefixes Docker names)" % text)
    return text


def _host_spec(text):
    name, sep, address = text.partition(":")
    if not sep or not NAME_PATTERN.match(name):
        raise argparse.ArgumentTypeError("%r: use --host NAME:IPV4, e.g. --host web:172.29.0.10" % text)
    try:
        return name, ipaddress.IPv4Address(address)
    except ValueError:
        raise argparse.ArgumentTypeError("%r: %r is not an IPv4 address" % (text, address))


def _extra_spec(text):
    name, sep, count = text.partition(":")
    if not sep or not count.isdigit() or not 1 <= int(count) <= 250:
        raise argparse.ArgumentTypeError("%r: use --extra-addresses HOST:COUNT with COUNT 1..250" % text)
    return name, int(count)


def plan(args):
    """Checks the request and works out every address; raises TestbedError naming the problem."""
    hosts = dict()
    for name, address in args.hosts:
        if name in hosts:
            raise TestbedError("host %r is given twice in --host" % name)
        hosts[name] = address
    if not hosts:
        raise TestbedError("give at least one --host NAME:IPV4")
    if args.subnet:
        try:
            subnet = ipaddress.IPv4Network(args.subnet, strict=False)
        except ValueError:
            raise TestbedError("--subnet %r is not an IPv4 network such as 172.29.0.0/24" % args.subnet)
    else:
        subnet = ipaddress.IPv4Network("%s/24" % next(iter(hosts.values())), strict=False)
    gateway = subnet.network_address + 1
    for name, address in hosts.items():
        if address not in subnet or address in (subnet.network_address, subnet.broadcast_address, gateway):
            raise TestbedError(
                "host %s address %s is not a usable address of the subnet %s (the gateway is %s): "
                "change --host or --subnet" % (name, address, subnet, gateway))
    if len(set(hosts.values())) != len(hosts):
        raise TestbedError("two --host entries share an address")
    taken = set(hosts.values()) | {gateway}
    extra = {name: [] for name in hosts}
    cursor = subnet.network_address + args.extra_start
    for name, count in args.extra:
        if name not in hosts:
            raise TestbedError("--extra-addresses names host %r, which no --host defines" % name)
        while len(extra[name]) < count:
            if cursor not in subnet or cursor == subnet.broadcast_address:
                raise TestbedError(
                    "the subnet %s has no room for %d extra addresses from offset %d: "
                    "lower --extra-start or use a larger --subnet" % (subnet, count, args.extra_start))
            if cursor not in taken:
                extra[name].append(cursor)
                taken.add(cursor)
            cursor += 1
    return {
        "name": args.name,
        "distro": args.distro,
        "image": image(args.distro),
        "network": network_name(args.name),
        "subnet": str(subnet),
        "gateway": str(gateway),
        "hosts": {
            name: {
                "container": container_name(args.name, name),
                "address": str(address),
                "extra_addresses": [str(item) for item in extra[name]],
            }
            for name, address in hosts.items()
        },
    }


def down(testbed, quiet=False):
    """Removes the containers and the network labelled with this testbed's name (and its state)."""
    selector = "label=%s=%s" % (LABEL, testbed)
    containers = docker("ps", "-aq", "--filter", selector).split()
    if containers:
        docker("rm", "-f", *containers, timeout=180)
    networks = docker("network", "ls", "-q", "--filter", selector).split()
    if networks:
        docker("network", "rm", *networks)
    for leftover in ("inventory.yml", "state.json"):
        path = os.path.join(state_dir(testbed), leftover)
        if os.path.exists(path):
            os.remove(path)
    if not quiet:
        print("testbed %s: removed %d container(s), %d network(s)" % (testbed, len(containers), len(networks)))


def wait_for_boot(container):
    """Waits until systemd in the container has finished booting (running or degraded)."""
    deadline = time.monotonic() + BOOT_TIMEOUT_SECONDS
    state = ""
    while time.monotonic() < deadline:
        state = docker("exec", container, "systemctl", "is-system-running", check=False, timeout=30)
        if state in ("running", "degraded"):
            return
        time.sleep(0.5)
    raise TestbedError("%s did not finish booting within %d s (systemd says %r); see `docker logs %s`"
                       % (container, BOOT_TIMEOUT_SECONDS, state, container))


def interface_of(container, address):
    """The interface that holds `address` in the container."""
    for line in docker("exec", container, "ip", "-o", "-4", "addr", "show").splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[3].split("/")[0] == address:
            return fields[1]
    raise TestbedError("%s has no interface with address %s" % (container, address))


def inventory(state):
    """The Ansible inventory (YAML is a superset of JSON, so this is written as JSON).

    Inventory hosts are the container names (as in Molecule), each in a group named after its host.
    """
    groups = {}
    for name, host in state["hosts"].items():
        groups[name] = {"hosts": {host["container"]: {
            "testbed_address": host["address"],
            "testbed_extra_addresses": host["extra_addresses"],
        }}}
    return {"all": {
        "vars": {
            "ansible_connection": "community.docker.docker",
            "ansible_python_interpreter": "/usr/bin/python3",
            # Ansible is root in the containers already, and they have no sudo.
            "ansible_become": False,
            "testbed_name": state["name"],
            "testbed_subnet": state["subnet"],
        },
        "children": groups,
    }}


def up(args):
    state = plan(args)
    if not docker("image", "ls", "-q", state["image"]):
        raise TestbedError("image %s is missing: run `make images`" % state["image"])
    down(args.name, quiet=True)
    for other in docker("network", "ls", "-q").split():
        subnets = docker("network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}} {{end}}", other).split()
        for subnet in subnets:
            try:
                overlaps = ipaddress.ip_network(subnet).overlaps(ipaddress.IPv4Network(state["subnet"]))
            except (ValueError, TypeError):
                continue
            if overlaps:
                raise TestbedError(
                    "subnet %s overlaps the docker network %s (%s): choose another --subnet"
                    % (state["subnet"], docker("network", "inspect", "-f", "{{.Name}}", other), subnet))
    label = "%s=%s" % (LABEL, args.name)
    docker("network", "create", "--label", label, "--subnet", state["subnet"], "--gateway", state["gateway"],
           state["network"])
    try:
        for name, host in state["hosts"].items():
            docker("run", "-d", "--name", host["container"], "--hostname", name, "--label", label,
                   "--network", state["network"], "--ip", host["address"], *container_options(), state["image"])
        for name, host in state["hosts"].items():
            wait_for_boot(host["container"])
            if host["extra_addresses"]:
                iface = interface_of(host["container"], host["address"])
                for address in host["extra_addresses"]:
                    docker("exec", host["container"], "ip", "-4", "addr", "add", address + "/32",
                           "dev", iface, "label", iface + ":extra")
    except BaseException:
        down(args.name, quiet=True)
        raise
    path = save_state(state)
    print("testbed %s is up (%s, %s): inventory %s" % (args.name, state["distro"], state["subnet"],
                                                       os.path.relpath(path, os.getcwd())))
    return state


def save_state(state):
    """Writes state.json and inventory.yml of a testbed; returns the inventory's path."""
    os.makedirs(state_dir(state["name"]), exist_ok=True)
    with open(os.path.join(state_dir(state["name"]), "state.json"), "w") as handle:
        json.dump(state, handle, indent=2)
    path = os.path.join(state_dir(state["name"]), "inventory.yml")
    with open(path, "w") as handle:
        handle.write("# Written by tools/testbed.py up --name %s; removed by tools/testbed.py down.\n" % state["name"])
        json.dump(inventory(state), handle, indent=2)
        handle.write("\n")
    return path


def add_host(testbed, name, address):
    """Adds one host to a testbed that is up (same image, network and labels); returns the new state.

    For a bench phase that needs a host of its own (a load balancer, a fleet) only while it runs.
    """
    state = load_state(testbed)
    subnet = ipaddress.IPv4Network(state["subnet"])
    taken = {state["gateway"]} | {host["address"] for host in state["hosts"].values()}
    taken |= {extra for host in state["hosts"].values() for extra in host["extra_addresses"]}
    if name in state["hosts"] or not NAME_PATTERN.match(name):
        raise TestbedError("host %r exists in testbed %s already, or is not a valid name" % (name, testbed))
    if ipaddress.IPv4Address(address) not in subnet or address in taken:
        raise TestbedError("%s is not a free address of the testbed's subnet %s" % (address, subnet))
    host = {"container": container_name(testbed, name), "address": address, "extra_addresses": []}
    docker("run", "-d", "--name", host["container"], "--hostname", name, "--label", "%s=%s" % (LABEL, testbed),
           "--network", state["network"], "--ip", address, *container_options(), state["image"])
    try:
        wait_for_boot(host["container"])
    except BaseException:
        docker("rm", "-f", host["container"], check=False, timeout=180)
        raise
    state["hosts"][name] = host
    save_state(state)
    return state


def remove_host(testbed, name):
    """Removes a host that add_host() added (its container, and its entry in the state and inventory)."""
    state = load_state(testbed)
    host = state["hosts"].pop(name, None)
    if host is not None:
        docker("rm", "-f", host["container"], check=False, timeout=180)
        save_state(state)
    return state


def load_state(testbed):
    """The state.json of a testbed that is up; TestbedError when it is not."""
    path = os.path.join(state_dir(testbed), "state.json")
    try:
        with open(path) as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise TestbedError("testbed %s is not up (no %s): run tools/testbed.py up --name %s ..."
                           % (testbed, path, testbed))


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("up", help="create (or re-create) the hosts and write the inventory")
    start.add_argument("--name", type=_testbed_name, required=True, help="testbed name (prefixes Docker names)")
    start.add_argument("--distro", choices=DISTROS, default="bookworm", help="Debian release of every host")
    start.add_argument("--host", dest="hosts", action="append", type=_host_spec, default=[], metavar="NAME:IPV4",
                       help="a host and its address (repeat); NAME is also its inventory group")
    start.add_argument("--subnet", default=None, help="the network's IPv4 subnet (default: the /24 of the first host)")
    start.add_argument("--extra-addresses", dest="extra", action="append", type=_extra_spec, default=[],
                       metavar="HOST:COUNT", help="add COUNT extra /32 addresses on HOST (repeat per host)")
    start.add_argument("--extra-start", type=int, default=200, metavar="OFFSET",
                       help="first extra address = subnet address + OFFSET (default 200)")
    stop = commands.add_parser("down", help="remove the hosts and the network")
    stop.add_argument("--name", type=_testbed_name, required=True)
    options = commands.add_parser("docker-run-options",
                                  help="print the `docker run` options and image of a test host, one a line")
    options.add_argument("--distro", choices=DISTROS, default="bookworm")
    show = commands.add_parser("status", help="print the state of a testbed that is up (JSON)")
    show.add_argument("--name", type=_testbed_name, required=True)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.command == "up":
            up(args)
        elif args.command == "down":
            down(args.name)
        elif args.command == "docker-run-options":
            print("\n".join(container_options() + [image(args.distro)]))
        else:
            print(json.dumps(load_state(args.name), indent=2))
    except TestbedError as exc:
        print("testbed: %s" % exc, file=sys.stderr)
        return 1
    except subprocess.TimeoutExpired as exc:
        print("testbed: docker did not answer in time (%s)" % exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
