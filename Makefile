# Every target creates .venv when missing and installs what it needs: two commands on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEMO_DIR := data/demo

.PHONY: demo test bench lint clean docs unasync

$(VENV)/.base: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[gateway]'
	touch $@

$(VENV)/.test: $(VENV)/.base tests/gcs_testbench/requirements.txt
	$(PY) -m pip install -q -e '.[test]'
	# Azurite, Azure Blob Storage's emulator, for tests/test_az_store.py (3.35.0: the last for Node.js 20)
	npm install --prefix $(VENV)/azurite --no-audit --no-fund --loglevel=error azurite@3.35.0
	# Google's storage-testbench (vendored in tests/gcs_testbench: not on PyPI) for tests/test_gs_store.py,
	# in a venv of its own: its pins (protobuf 5.29, grpcio 1.70, flask 3.0) are not Hive's to share
	test -x $(VENV)/gcs-testbench/bin/python || $(PYTHON) -m venv $(VENV)/gcs-testbench
	$(VENV)/gcs-testbench/bin/python -m pip install -q -r tests/gcs_testbench/requirements.txt
	touch $@

$(VENV)/.bench: $(VENV)/.base
	$(PY) -m pip install -q -e '.[bench]'
	touch $@

demo: $(VENV)/.base
	rm -rf $(DEMO_DIR)
	$(VENV)/bin/hive-jobs --data-dir $(DEMO_DIR) simulate --days 30 --calls-per-day 20000 --seed 7
	$(VENV)/bin/hive-jobs --data-dir $(DEMO_DIR) rollup --daily
	$(VENV)/bin/hive-jobs --data-dir $(DEMO_DIR) summary

# The HTML report test renders in a real headless browser: install Debian's chromium when missing;
# the Spark rollup's test runs Spark in local mode on a Java 17 runtime; the PostgreSQL ledger's tests
# start a real server from Debian's postgresql binaries. If an install fails, the
# tests that need it fail with a clear message (they never skip).
test: $(VENV)/.test
	-command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	-command -v java >/dev/null || (apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless)
	-ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq postgresql)
	-command -v openssl >/dev/null || (apt-get update -qq && apt-get install -y -qq openssl)
	$(PY) -m pytest -q

lint: $(VENV)/.test
	$(VENV)/bin/ruff check hive hive_core ingest jobs queries hive_gateway hive_cli hive_emulator tests bench
	$(VENV)/bin/mypy
	$(PY) .ci/unasync.py --check

# hive_core/openrouter/client.py is generated from aio.py: edit aio.py, then run this.
unasync: $(VENV)/.base
	$(PY) .ci/unasync.py

bench: $(VENV)/.bench
	-command -v valgrind >/dev/null || (apt-get update -qq && apt-get install -y -qq valgrind)
	$(PY) -m bench

clean:
	rm -rf $(VENV) $(DEMO_DIR)

docs: $(VENV)/.test
	COLUMNS=100 $(PY) -m tests.docs_gen
