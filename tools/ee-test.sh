#!/usr/bin/env bash
# Builds the AWX execution environment from extensions/awx/execution-environment.yml with
# ansible-builder, offline, and runs jobs in it as AWX does: ansible-runner inside the image runs the
# project's playbooks/site.yml, ban.yml and status.yml against a Debian 13 systemd test host.
# Offline differences from the committed file, and only these: the collections come from the checkout
# (built artifact) and .venv's `ansible` package (amazon.aws) instead of Galaxy, and pip gets this
# machine's CA bundle. For the run, the docker CLI, its socket and community.docker (from .venv) are
# mounted into the EE so that it reaches the test host with the docker connection.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
bin="$repo/.venv/bin"
stage="$repo/.cache/ee"
image=floodguard-ee:test
host=fg-ee-trixie
ca_bundle=/etc/ssl/certs/ca-certificates.crt
site_packages=("$repo"/.venv/lib/python3*/site-packages)
host_collections="${site_packages[0]}/ansible_collections"

tools/controller.sh true >/dev/null # the base image, floodguard-controller:trixie
rm -rf "$stage"
mkdir -p "$stage/files"
"$bin/ansible-galaxy" collection build --force --output-path "$stage/files" . >/dev/null
artifact="$(basename "$stage"/files/floodguard-shield-*.tar.gz)"
cp -r "$host_collections/amazon/aws" "$stage/files/amazon.aws"
cp "$ca_bundle" "$stage/files/ca-certificates.crt"

"$bin/python" - "$stage" "$artifact" <<'PY'
import sys, yaml
stage, artifact = sys.argv[1:]
ee = yaml.safe_load(open("extensions/awx/execution-environment.yml"))
names = [c["name"] for c in ee["dependencies"]["galaxy"]["collections"]]
assert names == ["floodguard.shield", "amazon.aws"], names
ee["dependencies"]["galaxy"] = {"collections": [
    {"name": "/build/files/" + artifact, "type": "file"},
    {"name": "/build/files/amazon.aws", "type": "dir"},
]}
ee["additional_build_files"] = [{"src": stage + "/files", "dest": "files"}]
ee["additional_build_steps"]["prepend_base"][0:0] = [
    "COPY _build/files/ca-certificates.crt /etc/ssl/certs/floodguard-build-ca.crt",
    "ENV PIP_CERT=/etc/ssl/certs/floodguard-build-ca.crt",
]
yaml.safe_dump(ee, open(stage + "/execution-environment.yml", "w"), sort_keys=False)
PY

echo "--- ansible-builder build -t $image"
"$bin/ansible-builder" build --container-runtime docker -f "$stage/execution-environment.yml" \
  --context "$stage/context" --tag "$image" --verbosity 1
docker run --rm "$image" ansible-galaxy collection list floodguard.shield
docker run --rm "$image" ansible-galaxy collection list amazon.aws
docker run --rm "$image" python3 -c 'import ansible_runner, boto3; print("ansible-runner and boto3: importable")'

# The test host: systemd as PID 1, as Molecule's (.config/molecule/config.yml).
cleanup() { docker rm -f "$host" >/dev/null 2>&1 || true; }
trap cleanup EXIT
cleanup
docker run -d --name "$host" --hostname web --cap-add SYS_ADMIN --cap-add NET_ADMIN --cgroupns host \
  -v /sys/fs/cgroup:/sys/fs/cgroup:rw --tmpfs /run --tmpfs /run/lock --stop-signal SIGRTMIN+3 \
  floodguard-test:trixie >/dev/null

# ansible-runner's private data dir, as AWX lays it out: the project, an inventory, extra vars.
runner="$stage/runner"
mkdir -p "$runner/project" "$runner/inventory"
cp -r playbooks "$runner/project/"
cat >"$runner/inventory/hosts" <<INI
[web]
$host ansible_connection=community.docker.docker ansible_python_interpreter=/usr/bin/python3
INI

run_job() {
  local playbook="$1" extravars="$2"
  echo "--- ansible-runner run -p $playbook in $image (extra vars: $extravars)"
  rm -rf "$runner/artifacts" "$runner/env"
  mkdir -p "$runner/env"
  echo "$extravars" >"$runner/env/extravars"
  # As AWX runs it: the image's own user (uid 1000), writing its artifacts into the private data dir.
  chmod -R a+rwX "$runner"
  docker run --rm \
    --group-add "$(stat -c %g /var/run/docker.sock)" \
    -v "$runner:/runner" \
    -v /var/run/docker.sock:/var/run/docker.sock \
    -v "$(command -v docker):/usr/local/bin/docker:ro" \
    -v "$host_collections/community/docker:/usr/share/ansible/collections/ansible_collections/community/docker:ro" \
    -e ANSIBLE_FORCE_COLOR=false \
    "$image" ansible-runner run /runner -p "$playbook"
}

run_job playbooks/site.yml '{}'
run_job playbooks/ban.yml '{"jail": "manual", "ips": "203.0.113.7, 2001:db8::7"}'
banned="$(docker exec "$host" fail2ban-client get manual banned)"
for address in 203.0.113.7 2001:db8::7; do
  if [[ "$banned" != *"'$address'"* ]]; then
    echo "after the ban job, fail2ban's jail manual does not list $address: $banned" >&2
    exit 1
  fi
done
run_job playbooks/status.yml '{"jail": "manual", "ip": "203.0.113.7"}' | tee "$stage/status.log"
grep -q '203.0.113.7' "$stage/status.log" || { echo "the status job does not show 203.0.113.7" >&2; exit 1; }
echo "execution environment $image: built; site, ban and status jobs ran in it; fail2ban bans what the ban job asked"
