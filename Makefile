# floodguard.shield: every developer and CI entry point.
# `make demo` runs the main job on a local Debian test host; `make test` runs every gate.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
PYTHON ?= python3
DISTROS ?= bookworm trixie
# Molecule scenarios, run in this order on every distro in DISTROS.
SCENARIOS ?= default nginx_ratelimit fail2ban modules operator_playbooks e2e lb waf heal botnet
# ansible-core lines under test (tools/core-line.sh; `make test` runs sanity and unit tests on each):
# 2.19, the oldest that meta/runtime.yml admits (this host's .venv, Python 3.11), and the supported
# 2.20 and 2.21 (Debian 13 controller container, Python 3.13). CORE picks one for `make sanity/unit`.
CORE ?= 2.19
NEWEST_CORE ?= 2.21
# Molecule scenarios whose controller is NEWEST_CORE (in the controller container); the others use .venv.
NEWEST_CORE_SCENARIOS ?= modules e2e
export NEWEST_CORE NEWEST_CORE_SCENARIOS
# Independent stages of `make test` that run side by side (2 cores).
JOBS ?= 2
STAGE := tools/stage.sh
export PATH := $(BIN):$(PATH)
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/.cache/collections
export ANSIBLE_FORCE_COLOR := false
export PY_COLORS := 0

.PHONY: help venv docker images collection lint yamllint ansible-lint sanity unit molecule galaxy-importer changelog-lint changelog ee test demo demo-clean bench clean

help:
	@echo "make demo   apply playbooks/site.yml to a local Debian 12 test host and show the result"
	@echo "make test   yamllint, ansible-lint, sanity and unit tests on ansible-core 2.19, 2.20, 2.21, galaxy-importer,"
	@echo "            changelog lint, the AWX execution environment, Molecule on Debian 12 and 13"
	@echo "make bench  measure the defence (figures in docs/benchmarks.md)"

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

venv: $(VENV)/.installed

$(VENV)/.bench-installed: $(VENV)/.installed requirements-bench.txt
	$(BIN)/pip install --quiet -r requirements-bench.txt
	touch $@

docker:
	tools/ensure-docker.sh

# Both distros at once (debootstrap mostly waits on the mirror): about 100 s instead of 200 s.
images: docker
	pids=(); for distro in $(DISTROS); do tools/build-test-image.sh $$distro & pids+=($$!); done; \
	for pid in "$${pids[@]}"; do wait "$$pid"; done

# The collection under test, installed from this checkout so that FQCNs resolve in Molecule and lint.
collection: venv
	tools/install-collection.sh

yamllint: venv
	$(BIN)/yamllint --strict .

ansible-lint: collection
	$(BIN)/ansible-lint --strict

lint: yamllint ansible-lint

# One ansible-core line: `make sanity CORE=2.21`, `make unit CORE=2.20` (default 2.19, this host).
sanity: venv
	tools/sanity.sh $(CORE)

unit: collection
	tools/core-line.sh $(CORE) env PYTHONPATH=$(CURDIR)/.cache/collections python -m pytest -q -p no:cacheprovider tests/unit

# Galaxy's import checks on the built artifact (tools/galaxy-importer.cfg).
galaxy-importer: collection
	tools/galaxy-check.sh

changelog-lint: collection
	tools/changelog.sh check

# Folds new fragments into the release of galaxy.yml's version and rewrites CHANGELOG.rst.
changelog: collection
	tools/changelog.sh release

# The AWX execution environment: built with ansible-builder on a local Debian base, then run.
ee: collection images
	tools/ee-test.sh

molecule: collection images
	tools/molecule-all.sh "$(SCENARIOS)" "$(DISTROS)"

test:
	@rm -f .cache/timings.txt
	$(STAGE) "virtualenv" $(MAKE) --no-print-directory venv collection
	$(STAGE) "docker engine and test images" $(MAKE) --no-print-directory images
	@rc=0; \
	tools/stage-group.sh $(JOBS) \
	  "ansible-test sanity, ansible-core 2.21 (controller container, Python 3.13)" "tools/sanity.sh 2.21" \
	  "ansible-test sanity, ansible-core 2.20 (controller container, Python 3.13)" "tools/sanity.sh 2.20" \
	  "ansible-test sanity, ansible-core 2.19 (host, Python 3.11)" "tools/sanity.sh 2.19" \
	  "execution environment" "tools/ee-test.sh" \
	  "ansible-lint" "$(MAKE) --no-print-directory ansible-lint" \
	  "galaxy-importer" "tools/galaxy-check.sh" \
	  "unit tests, ansible-core 2.21" "$(MAKE) --no-print-directory unit CORE=2.21" \
	  "unit tests, ansible-core 2.20" "$(MAKE) --no-print-directory unit CORE=2.20" \
	  "unit tests, ansible-core 2.19" "$(MAKE) --no-print-directory unit CORE=2.19" \
	  "changelog lint" "tools/changelog.sh check" \
	  "yamllint" "$(MAKE) --no-print-directory yamllint" \
	  || rc=1; \
	$(MAKE) --no-print-directory molecule || rc=1; \
	echo "== stage timings =="; cat .cache/timings.txt; \
	exit $$rc

demo: collection images
	tools/demo.sh

demo-clean: venv
	python3 tools/testbed.py down --name demo

bench: collection images $(VENV)/.bench-installed
	tools/bench.sh

clean:
	rm -rf $(VENV) .cache tests/output
