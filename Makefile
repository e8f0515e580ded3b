# ModelOps: `make demo` shows it working on a local cluster; `make test` runs every test.
# Everything is installed by these rules; slow builds are cached under ~/.cache/modelops, keyed by version.

SHELL := /bin/bash
CACHE ?= $(HOME)/.cache/modelops
UV_VERSION := 0.13.8
UV := $(CACHE)/uv-$(UV_VERSION)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
PYTHON_VERSION := python3.11
export UV_PYTHON_DOWNLOADS := never
export UV_CACHE_DIR ?= $(CACHE)/uv-cache
# The pinned uv, for tests that build what the image gets (scripts/image-venv.sh).
export MODELOPS_UV := $(UV)

.PHONY: install lock crds lint format test unit integration chaos demo cluster-up cluster-down clean packages image

install: $(VENV)/.installed

$(UV):
	python3 -m venv $(CACHE)/uv-$(UV_VERSION)
	$(CACHE)/uv-$(UV_VERSION)/bin/pip install -q uv==$(UV_VERSION)

$(VENV)/.installed: requirements.lock pyproject.toml | $(UV)
	$(UV) venv -q --allow-existing --python $(PYTHON_VERSION) $(VENV)
	$(UV) pip sync -q --python $(BIN)/python requirements.lock
	$(UV) pip install -q --python $(BIN)/python --no-deps -e .
	touch $@

## lock: re-resolve the lock files from pyproject.toml (hashes, no index URLs); the image's has no dev tools, the
## operator's only what the operator itself needs (a test installs it alone and starts the operator)
LOCK_FLAGS := --generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28
lock: | $(UV)
	$(UV) pip compile -q pyproject.toml --extra runtime --extra dev $(LOCK_FLAGS) -o requirements.lock
	$(UV) pip compile -q pyproject.toml --extra runtime $(LOCK_FLAGS) -o requirements-image.lock
	$(UV) pip compile -q pyproject.toml $(LOCK_FLAGS) -c requirements.lock -o requirements-operator.lock

## crds: regenerate crds/ from the API models
crds: install
	$(BIN)/modelops crds --directory crds

## lint: ruff, the type checker (mypy, strict) and the layers (import-linter, contracts in pyproject.toml)
lint: install
	$(BIN)/ruff check operator tests bench
	$(BIN)/ruff format --check operator tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

format: install
	$(BIN)/ruff check --fix operator tests bench
	$(BIN)/ruff format operator tests bench

## test: lint, unit tests, then integration tests on the local cluster (built on first use)
test: lint packages
	$(BIN)/pytest -q tests

## packages: Debian's packages the local cluster runs (needs root or sudo): the real node's containerd, runc,
## CNI plugins, iptables and conntrack; buildah for the image; Prometheus for the tests that measure through it
DEBIAN_PACKAGES := containerd runc containernetworking-plugins iptables conntrack buildah prometheus
packages:
	@missing=; for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	[ -z "$$missing" ] || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; }

## chaos: the long chaos suite (50 kills of the operator, 200 objects, the API server, etcd and the webhook receiver
## down); ends with one JSON line of counts
chaos: install packages
	MODELOPS_CHAOS=long $(BIN)/pytest -q -m chaos -s tests/integration/test_chaos.py

unit: install
	$(BIN)/pytest -q tests/unit

integration: install packages
	$(BIN)/pytest -q tests/integration

## image: build the Dockerfile here (buildah, no Docker engine or registry) and load it into the local node
image: install packages
	$(BIN)/modelops cluster image

## demo: local cluster up, CRDs, operator, examples, and what happened
demo: install packages
	$(BIN)/python -m modelops.demo

cluster-up: install packages
	$(BIN)/modelops cluster up

cluster-down: install
	$(BIN)/modelops cluster down

clean:
	-$(BIN)/modelops cluster down
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
