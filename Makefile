# autoresearch-ledger: every entry point starts from `setup`, which is idempotent
# (stamp files make a second run take seconds).
SHELL := /bin/bash
PY    := .venv/bin/python
PIP   := .venv/bin/pip
export PATH := $(CURDIR)/.venv/bin:$(CURDIR)/node_modules/.bin:$(PATH)

.PHONY: setup demo agents test test-py test-js bench contracts clean help

help:
	@echo "make demo   - local end-to-end demo on the embedded defaults (installs what it needs)"
	@echo "make agents - 3 research agents and 3 verifiers improving one task on a local devnet"
	@echo "make test   - every test: Hardhat (contract) and pytest (Python, real anvil + IPFS node)"
	@echo "make bench  - benchmarks (ratios measured in one run)"
	@echo "make setup  - install the Python venv, npm packages, bubblewrap and chromium; compile contracts"

setup: .venv/.stamp node_modules/.stamp client/arledger/_build/TrainingLedger.json .stamp-sandbox .stamp-browser

# torch goes first and explicitly: torch==2.13.0 resolves to the CPU wheel on disk,
# anything else would pull a multi-GB CUDA build.
.venv/.stamp: pyproject.toml requirements.lock
	test -x $(PY) || python3 -m venv .venv
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -r requirements.lock
	$(PIP) install -q --no-deps -e .
	touch $@

node_modules/.stamp: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

# The contract's ABI and bytecode reach Python from the Hardhat build (one source of truth).
client/arledger/_build/TrainingLedger.json: node_modules/.stamp hardhat.config.js $(wildcard contracts/*.sol contracts/**/*.sol) scripts/export_abi.js
	npx hardhat compile --quiet
	node scripts/export_abi.js

contracts: client/arledger/_build/TrainingLedger.json

# The verifier sandbox uses bubblewrap where it can be installed (Debian package).
.stamp-sandbox:
	@command -v bwrap >/dev/null || { [ "$$(id -u)" = 0 ] && (apt-get install -y -q bubblewrap >/dev/null 2>&1 || (apt-get update -q >/dev/null && apt-get install -y -q bubblewrap >/dev/null)) || echo "note: bubblewrap not installed; the sandbox falls back to its built-in limits"; }
	touch $@

# The dashboard's browser tests drive Debian's chromium (headless) through its chromedriver.
.stamp-browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { [ "$$(id -u)" = 0 ] && (apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || (apt-get update -q >/dev/null && apt-get install -y -q chromium chromium-driver >/dev/null)) || echo "note: chromium not installed; the dashboard's browser tests will fail"; }
	touch $@

demo: setup
	.venv/bin/artrain demo

agents: setup
	.venv/bin/artrain demo --agents

# Two workers (the machine's two cores), a test module at a time on one of them, so a module's
# fixtures are built once; the one demo run is shared by the workers (tests/fixtures/demo.py).
PYTEST := $(PY) -m pytest -q --durations=15 -n 2 --dist loadfile --no-loadscope-reorder

test: setup
	npx hardhat test
	$(PYTEST)

test-py: setup
	$(PYTEST)

test-js: setup
	npx hardhat test

bench: setup
	$(PY) -m bench

clean:
	rm -rf .venv node_modules artifacts cache client/arledger/_build .stamp-*
