# Spark lakehouse for web-traffic and product analytics. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP_CACHE ?= $(HOME)/.cache/pip
PROFILE ?= local
WAREHOUSE ?= ./warehouse
BENCH_LINES ?= 1000000 2000000
BENCH_EVENTS ?= 3000000
BENCH_WEB_EVENTS ?= 2000000
export LAKEHOUSE_HOME := $(CURDIR)
export PIP_CACHE_DIR := $(PIP_CACHE)

# Development credentials of the loopback-only service stack (make services-up); set your
# own in the environment for anything else. Only used with PROFILE=services.
SERVICES_ENV := LAKEHOUSE_S3_ACCESS_KEY=$${LAKEHOUSE_S3_ACCESS_KEY:-lakehouse} \
  LAKEHOUSE_S3_SECRET_KEY=$${LAKEHOUSE_S3_SECRET_KEY:-lakehouse-dev} \
  LAKEHOUSE_EXPORT_PASSWORD=$${LAKEHOUSE_EXPORT_PASSWORD:-lakehouse-dev}
RUN_ENV := LAKEHOUSE_PROFILE=$(PROFILE) $(if $(filter services cluster,$(PROFILE)),$(SERVICES_ENV))
# The demo's access log carries response times (Combined + %D), so its latency charts have
# data; your own logs use conf/lakehouse.yaml's access_logs.log_format (Combined by default).
DEMO_ACCESS_LOG := sample_logs/access_response_time.log
DEMO_ENV := $(RUN_ENV) LAKEHOUSE_ACCESS_LOGS__LOG_FORMAT='%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i" %D'

.DEFAULT_GOAL := help
, := ,
AIRFLOW_VENV := .venv-airflow
AIRFLOW_DATE ?= 2024-03-02
SPARK_CONN := $(if $(filter cluster,$(PROFILE)),{"conn_type": "spark"$(,) "host": "spark://127.0.0.1"$(,) "port": 17077},{"conn_type": "spark"$(,) "host": "local[*]"})
AIRFLOW_ENV := AIRFLOW_HOME=$(CURDIR)/.data/airflow AIRFLOW__CORE__DAGS_FOLDER=$(CURDIR)/dags \
  AIRFLOW__CORE__LOAD_EXAMPLES=False AIRFLOW_CONN_SPARK_DEFAULT='$(SPARK_CONN)' $(RUN_ENV)

.PHONY: help setup jars demo serve browser prometheus test test-fast bench profile notebooks jupyter lint services-up services-down services-status up down airflow-setup airflow-test clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-15s\033[0m %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q -e '.[dev,api,notebooks]'
	@touch $@

.jars/.pom.sha256: conf/jars.pom.xml $(VENV)/.installed
	$(PY) -m lakehouse.jars

dist/executor-env.tar.gz: pyproject.toml $(VENV)/.installed
	$(PY) -m lakehouse.executor_env
	@touch $@

setup: $(VENV)/.installed .jars/.pom.sha256 dist/executor-env.tar.gz ## Create the venv, install the package, fetch the jars, pack the executors' Python env (idempotent)

jars: setup ## Fetch the pinned JVM jars (Delta, Kafka, S3A, JDBC) into .jars/

demo: setup ## Whole pipeline on sample_logs/ + report (PROFILE=services: through Kafka, MinIO, PostgreSQL)
ifeq ($(PROFILE),services)
	$(DEMO_ENV) $(VENV)/bin/lakehouse produce --dataset access_logs --file $(DEMO_ACCESS_LOG)
	$(RUN_ENV) $(VENV)/bin/lakehouse produce --dataset product_views --file sample_logs/product_views.jsonl
	$(RUN_ENV) $(VENV)/bin/lakehouse produce --dataset web_events --file sample_logs/web_events.jsonl
	$(RUN_ENV) $(VENV)/bin/lakehouse produce --dataset api_ticks --file sample_logs/api_ticks.jsonl
	$(RUN_ENV) $(VENV)/bin/lakehouse produce --dataset ip_events --file sample_logs/ip_events.jsonl
	$(DEMO_ENV) $(VENV)/bin/lakehouse batch --from-kafka
	$(RUN_ENV) $(VENV)/bin/lakehouse report
else
	$(DEMO_ENV) $(VENV)/bin/lakehouse batch \
	  --access-logs $(DEMO_ACCESS_LOG) --product-views sample_logs/product_views.jsonl \
	  --web-events sample_logs/web_events.jsonl --api-ticks sample_logs/api_ticks.jsonl \
	  --ip-events sample_logs/ip_events.jsonl \
	  $(if $(filter local,$(PROFILE)),--warehouse $(WAREHOUSE))
	$(RUN_ENV) $(VENV)/bin/lakehouse report $(if $(filter local,$(PROFILE)),--warehouse $(WAREHOUSE))
	$(if $(filter local,$(PROFILE)),$(RUN_ENV) $(VENV)/bin/lakehouse report --warehouse $(WAREHOUSE) --html $(WAREHOUSE)/report.html)
endif

serve: $(VENV)/.installed ## Analytics API + /metrics over the demo's export on http://127.0.0.1:8000 (docs at /docs; PROFILE=services: PostgreSQL)
	$(RUN_ENV) $(VENV)/bin/lakehouse serve $(if $(filter local,$(PROFILE)),--warehouse $(WAREHOUSE))

prometheus: setup ## Debian's prometheus + promtool, unpacked into ~/.cache/lakehouse (for the monitoring tests; no system service)
	@$(PY) -m lakehouse_dev.services.prometheus install >/dev/null

browser: ## Debian's chromium + chromedriver for the HTML report's browser test (apt, when missing)
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { apt-get update -q && apt-get install -y -q chromium chromium-driver; }

# The tiers (marks in pyproject.toml): test-fast leaves out every test that needs a server,
# Airflow, a notebook kernel, a browser or minutes of Spark; LAKEHOUSE_TEST_TIER=fast makes
# the run's server stack (tests/stack.py) refuse to start anything. `make test` runs the
# tests on servers and all the others as two pytest runs side by side (lakehouse_dev/test_tiers.py).
FAST_TESTS := not (services or airflow or notebooks or browser or slow)

# Its installs are independent: on a fresh clone Airflow's venv builds beside ours.
test: ## Run the whole test suite: the server tests and the in-process ones side by side (each real server started once)
	@$(MAKE) --no-print-directory -j3 setup airflow-setup browser
	@$(MAKE) --no-print-directory prometheus
	$(PY) -m lakehouse_dev.test_tiers -q --durations=15

test-fast: setup ## Pure transforms and in-process Spark on inline rows: no server, no spark-submit, no Airflow (~5 min)
	LAKEHOUSE_TEST_TIER=fast $(VENV)/bin/pytest -q -m "$(FAST_TESTS)" --durations=10

bench: setup ## Benchmark: batch (silver, whole batch vs ceiling, GoAccess), streaming (ingest, latency), web-event windows and sessions vs ceiling
	$(PY) -m lakehouse_dev.bench $(foreach n,$(BENCH_LINES),--lines $(n))
	$(PY) -m lakehouse_dev.bench_stream --events $(BENCH_EVENTS)
	$(PY) -m lakehouse_dev.bench_windows -n $(BENCH_WEB_EVENTS)

profile: setup ## The demo batch in one session: per stage, its Spark jobs and the time outside them (JOBS=1 lists each job)
	$(PY) -m lakehouse_dev.profile_batch $(if $(JOBS),--jobs)

notebooks: setup ## Execute notebooks/ against WAREHOUSE (runs the demo first when it has no gold); executed copies in .data/notebooks/
	$(if $(filter local,$(PROFILE)),@test -d $(WAREHOUSE)/gold || $(MAKE) demo)
	$(RUN_ENV) $(PY) -m lakehouse.notebooks $(if $(filter local,$(PROFILE)),--warehouse $(WAREHOUSE))

jupyter: setup ## JupyterLab on notebooks/ with the venv's kernel, reading WAREHOUSE (PROFILE as for the jobs)
	$(PY) -m lakehouse.notebooks --install-kernel
	$(RUN_ENV) $(if $(filter local,$(PROFILE)),LAKEHOUSE_WAREHOUSE=$(abspath $(WAREHOUSE))) $(VENV)/bin/jupyter lab notebooks/

lint: setup ## Ruff over the package, tests and DAGs
	$(VENV)/bin/ruff check spark tests dags

services-up: setup ## Start PostgreSQL, Kafka (KRaft), MinIO and a Spark master + 2 workers on loopback (state in .data/)
	$(SERVICES_ENV) $(PY) -m lakehouse_dev.services up

services-down: setup ## Stop the local service stack
	$(PY) -m lakehouse_dev.services down

services-status: setup ## Which local services are up
	$(PY) -m lakehouse_dev.services status

up: ## docker compose up (needs a Docker engine)
	docker compose up -d

down: ## docker compose down
	docker compose down

$(AIRFLOW_VENV)/.installed: conf/airflow-requirements.txt
	@test -x $(AIRFLOW_VENV)/bin/python || $(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/pip install -q -r conf/airflow-requirements.txt
	@touch $@

airflow-setup: $(AIRFLOW_VENV)/.installed ## Create Airflow's own venv (.venv-airflow) from the pinned lock

airflow-test: setup airflow-setup ## Run lakehouse_daily once with `airflow dags test` (SQLite; PROFILE=cluster: on `make services-up`)
	$(AIRFLOW_ENV) $(AIRFLOW_VENV)/bin/airflow db migrate
	$(AIRFLOW_ENV) LAKEHOUSE_TASK_RETRIES=0 $(AIRFLOW_VENV)/bin/airflow dags test lakehouse_daily $(AIRFLOW_DATE)

clean: ## Remove the local warehouse and service data (keeps venvs and jars)
	rm -rf warehouse .data
