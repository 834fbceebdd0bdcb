# sole_r1 — developer entry points. `make demo` and `make test` set up everything they need on first use.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
LIBERO_VENV ?= .venv-libero
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
# Stamps make `make setup` a no-op when nothing changed (each step redoes itself when its inputs change).
DEPS_STAMP := $(VENV)/.sole_r1-deps
IFACE_STAMP := $(VENV)/.sole_r1-interfaces
PROJECT_STAMP := $(VENV)/.sole_r1-project
PYTEST_ARGS ?=

.PHONY: setup setup-vulkan setup-libero demo test test-fast bench lock clean help

help:
	@echo "make setup   create $(VENV): ROS 2 Kilted rclpy (wheels), pinned deps, interfaces, sole_r1 (editable)"
	@echo "make setup-libero  create $(LIBERO_VENV): LIBERO (own robosuite/mujoco) + ROS 2 wheels + sole_r1"
	@echo "make demo    run the default demo graph"
	@echo "make test    run the whole test suite (slow end-to-end tests included)"
	@echo "make bench   run the benchmarks in benchmarks/"

setup: $(PROJECT_STAMP) setup-vulkan

# ManiSkill renders on CPU only with Mesa >= 23 (Debian 12 ships 22): installs it from bookworm-backports when no
# working Vulkan device is found (detects first; a no-op elsewhere). See docs/setup.md.
setup-vulkan: $(DEPS_STAMP)
	@tools/setup/setup_vulkan.sh $(PY)

setup-libero:
	@tools/setup/setup_libero.sh $(LIBERO_VENV)

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade "pip==26.3"

$(DEPS_STAMP): requirements/ros.in requirements/base.in requirements/lock.txt | $(PY)
	$(PIP) install -r requirements/ros.in -r requirements/base.in -c requirements/lock.txt
	@touch $@

$(IFACE_STAMP): $(DEPS_STAMP) CMakeLists.txt package.xml $(wildcard src/sole_r1_interfaces/*/*)
	tools/setup/build_interfaces.sh $(VENV)
	@touch $@

$(PROJECT_STAMP): $(IFACE_STAMP) pyproject.toml
	$(PIP) install --no-deps --no-build-isolation -e .
	@touch $@

demo: setup
	$(VENV)/bin/sole-r1 demo

test: setup setup-libero
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: setup setup-libero
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

bench: setup
	@for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

lock: setup
	$(PY) -m pip freeze --exclude-editable | grep -v '^sole' | sed '1i # Exact versions used by make setup (pip freeze of a working .venv, Python 3.11). Regenerate with\n# make lock after changing requirements/*.in.' > requirements/lock.txt

clean:
	rm -rf $(VENV) build
