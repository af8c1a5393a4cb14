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
SCENARIOS ?= default nginx_ratelimit fail2ban modules operator_playbooks e2e
STAGE := tools/stage.sh
export PATH := $(BIN):$(PATH)
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/.cache/collections
export ANSIBLE_FORCE_COLOR := false
export PY_COLORS := 0

.PHONY: help venv docker images collection lint yamllint ansible-lint sanity unit molecule test demo demo-clean bench clean

help:
	@echo "make demo   apply playbooks/site.yml to a local Debian 12 test host and show the result"
	@echo "make test   yamllint, ansible-lint, ansible-test sanity, unit tests, Molecule on Debian 12 and 13"
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

sanity: venv
	tools/sanity.sh

unit: collection
	PYTHONPATH=$(CURDIR)/.cache/collections $(BIN)/python -m pytest -q -p no:cacheprovider tests/unit

molecule: collection images
	tools/molecule-all.sh "$(SCENARIOS)" "$(DISTROS)"

test:
	@rm -f .cache/timings.txt
	$(STAGE) "virtualenv" $(MAKE) --no-print-directory venv
	$(STAGE) "docker engine and test images" $(MAKE) --no-print-directory images
	$(STAGE) "yamllint" $(MAKE) --no-print-directory yamllint
	$(STAGE) "ansible-lint" $(MAKE) --no-print-directory ansible-lint
	$(STAGE) "ansible-test sanity" $(MAKE) --no-print-directory sanity
	$(STAGE) "unit tests" $(MAKE) --no-print-directory unit
	$(MAKE) --no-print-directory molecule
	@echo "== stage timings =="; cat .cache/timings.txt

demo: collection images
	tools/demo.sh

demo-clean: venv
	python3 tools/testbed.py down --name demo

bench: collection images $(VENV)/.bench-installed
	tools/bench.sh

clean:
	rm -rf $(VENV) .cache tests/output
