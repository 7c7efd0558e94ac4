# segwise — the two commands that matter: `make run` and `make test`.
# Both do all of the set-up on a fresh machine with only Python 3.11.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
# dbt-core's newest releases depend on a parser published only as an sdist whose build
# downloads from GitHub; forcing wheels resolves dbt-core 1.12.0 (see DECISIONLOG.md).
UV_FLAGS := --only-binary dbt-core-experimental-parser
STAMP := $(VENV)/.installed
# the Spark target's dbt lives in a virtualenv of its own (see requirements-spark.in)
SPARK_VENV := .venv-spark
SPARK_STAMP := $(SPARK_VENV)/.installed
PYTEST_WORKERS ?= 2

export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__COSMOS__ENABLE_TELEMETRY := False
export DO_NOT_TRACK := 1
export DBT_SEND_ANONYMOUS_USAGE_STATS := False

.PHONY: run test install spark-env browser lint lock clean benchmark

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip "uv==$(UV_VERSION)"
	$(BIN)/uv pip sync --python $(BIN)/python --compile-bytecode $(UV_FLAGS) requirements.lock
	$(BIN)/uv pip install --python $(BIN)/python --compile-bytecode --no-deps -e .
	touch $(STAMP)

spark-env: $(SPARK_STAMP)

$(SPARK_STAMP): requirements-spark.lock $(STAMP)
	test -x $(SPARK_VENV)/bin/python || $(PYTHON) -m venv $(SPARK_VENV)
	$(BIN)/uv pip sync --python $(SPARK_VENV)/bin/python --compile-bytecode $(UV_FLAGS) requirements-spark.lock
	touch $(SPARK_STAMP)

# the browser test opens the HTML report in Debian's chromium (Playwright drives it; no
# browser download): installed with apt when missing — as root, or through sudo
browser:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null; then SUDO=sudo; \
	  else echo "chromium is missing and apt needs root: apt-get install -y chromium"; exit 0; fi; \
	  $$SUDO apt-get install -y -q chromium >/dev/null 2>&1 || \
	  { $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q chromium >/dev/null; } || \
	  echo "could not install chromium (apt-get install -y chromium): the browser test will say so"; }

run: install
	$(BIN)/segwise run --sync-sandboxes

test: install spark-env browser
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup tests/python

lint: install
	$(BIN)/ruff check src tests/python dags

benchmark: install
	$(BIN)/python scripts/benchmark_generate.py

lock:
	$(BIN)/uv pip compile requirements.in -o requirements.lock --python-version 3.11 $(UV_FLAGS)
	$(BIN)/uv pip compile requirements-spark.in -o requirements-spark.lock --python-version 3.11 $(UV_FLAGS)

clean:
	rm -rf $(VENV) $(SPARK_VENV) target dbt_packages logs warehouse
