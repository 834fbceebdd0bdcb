# sole_r1 — developer entry points. `make demo` and `make test` set up everything they need on first use.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
LIBERO_VENV ?= .venv-libero
JAZZY_VENV ?= .venv-jazzy
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
# Stamps make `make setup` a no-op when nothing changed (each step redoes itself when its inputs change).
DEPS_STAMP := $(VENV)/.sole_r1-deps
IFACE_STAMP := $(VENV)/.sole_r1-interfaces
PROJECT_STAMP := $(VENV)/.sole_r1-project
PYTEST_ARGS ?=
# Tests that also run on ROS 2 Jazzy (franka_ros2 v3.x requires it, so real labs run it): generated interfaces,
# parameters and QoS, the safety gate, the launch glue, and franka_bridge against the twin (1 kHz state included).
JAZZY_TESTS := tests/ros/test_interfaces.py tests/ros/test_conventions.py tests/ros/test_safety_gate_node.py \
	tests/ros/test_launch_files.py tests/ros/test_franka_bringup_launch.py tests/ros/test_franka_bridge.py \
	tests/ros/test_franka_state_rate.py

.PHONY: setup setup-vulkan setup-libero setup-jazzy demo test test-fast test-jazzy bench lock lock-jazzy clean help

help:
	@echo "make setup   create $(VENV): ROS 2 Kilted rclpy (wheels), pinned deps, interfaces, sole_r1 (editable)"
	@echo "make setup-libero  create $(LIBERO_VENV): LIBERO (own robosuite/mujoco) + ROS 2 wheels + sole_r1"
	@echo "make setup-jazzy   create $(JAZZY_VENV): ROS 2 Jazzy rclpy (wheels) + interfaces + sole_r1"
	@echo "make demo    run the default demo graph"
	@echo "make test    run the whole test suite (slow end-to-end tests included), then the ROS tests on Jazzy"
	@echo "make test-jazzy    run only the ROS tests on Jazzy ($(JAZZY_VENV))"
	@echo "make bench   run the benchmarks in benchmarks/"

setup: $(PROJECT_STAMP) setup-vulkan

# ManiSkill renders on CPU only with Mesa >= 23 (Debian 12 ships 22): installs it from bookworm-backports when no
# working Vulkan device is found (detects first; a no-op elsewhere). See docs/setup.md.
setup-vulkan: $(DEPS_STAMP)
	@tools/setup/setup_vulkan.sh $(PY)

setup-libero:
	@tools/setup/setup_libero.sh $(LIBERO_VENV)

setup-jazzy:
	@tools/setup/setup_jazzy.sh $(JAZZY_VENV)

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

test: setup setup-libero setup-jazzy
	$(PY) -m pytest $(PYTEST_ARGS)
	$(JAZZY_VENV)/bin/python -m pytest $(JAZZY_TESTS) $(PYTEST_ARGS)

test-fast: setup setup-libero setup-jazzy
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)
	$(JAZZY_VENV)/bin/python -m pytest -m "not slow" $(JAZZY_TESTS) $(PYTEST_ARGS)

test-jazzy: setup-jazzy
	$(JAZZY_VENV)/bin/python -m pytest $(JAZZY_TESTS) $(PYTEST_ARGS)

bench: setup
	@for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

lock: setup
	$(PY) -m pip freeze --exclude-editable | grep -v '^sole' | sed '1i # Exact versions used by make setup (pip freeze of a working .venv, Python 3.11). Regenerate with\n# make lock after changing requirements/*.in.' > requirements/lock.txt

lock-jazzy: setup-jazzy
	$(JAZZY_VENV)/bin/python -m pip freeze --exclude-editable | grep -v '^sole' | sed '1i # Exact versions of the Jazzy venv (.venv-jazzy): ROS 2 Jazzy wheels + what requirements/jazzy.in lists; non-ROS\n# packages at the versions of requirements/lock.txt. Regenerate with make lock-jazzy after changing jazzy.in.' > requirements/jazzy.lock.txt

clean:
	rm -rf $(VENV) build
