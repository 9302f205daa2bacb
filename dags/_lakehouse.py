"""What the lakehouse DAGs share: where the project is, how a job is submitted, the Assets.

Not a DAG (the leading underscore keeps Airflow's DAG processor from parsing it, see
`.airflowignore`); the DAG files import it from the DAGs folder, which Airflow puts on
`sys.path`. Nothing here imports Spark or the lakehouse package: DAG files are parsed
often and must stay light.

**Settings** (environment variables are read when a DAG file is parsed: set them alike
for the DAG processor, scheduler and workers):

| what | where | default |
|---|---|---|
| project folder | env `LAKEHOUSE_HOME` | the folder above `dags/` |
| config profile | env `LAKEHOUSE_PROFILE` | `local` (`cluster`: the standalone cluster of `make services-up`) |
| spark-submit (its venv's python runs the drivers) | env `LAKEHOUSE_SPARK_SUBMIT` | `<home>/.venv/bin/spark-submit` |
| task retries | env `LAKEHOUSE_TASK_RETRIES` | `1` (5 minutes apart) |
| quick JIT for small runs | env `LAKEHOUSE_QUICK_JIT` (`1` on) | off |
| more Spark settings for every task | env `LAKEHOUSE_SPARK_CONF` (a JSON object, e.g. `{"spark.cores.max": "1"}`) | none |
| Spark master | Airflow connection `spark_default` (env `LAKEHOUSE_SPARK_CONN_ID` names another) | none: without it the provider falls back to `yarn`; e.g. `AIRFLOW_CONN_SPARK_DEFAULT='{"conn_type": "spark", "host": "spark://127.0.0.1", "port": 17077}'` |

Secrets (export password, S3 keys) reach the jobs through the environment of the
Airflow worker, never through DAG files.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from datetime import timedelta
from pathlib import Path

import pendulum
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import Asset

LAKEHOUSE_HOME = Path(os.environ.get("LAKEHOUSE_HOME") or Path(__file__).resolve().parents[1])
PROFILE = os.environ.get("LAKEHOUSE_PROFILE", "local")
SPARK_SUBMIT = os.environ.get("LAKEHOUSE_SPARK_SUBMIT") or str(LAKEHOUSE_HOME / ".venv" / "bin" / "spark-submit")
SPARK_CONN_ID = os.environ.get("LAKEHOUSE_SPARK_CONN_ID", "spark_default")
# `airflow dags test` waits out retry delays: local trials set this to 0 to fail fast.
RETRIES = int(os.environ.get("LAKEHOUSE_TASK_RETRIES", "1"))
JOBS = LAKEHOUSE_HOME / "spark" / "lakehouse" / "jobs"

# The Spark venv's interpreter (beside its spark-submit) runs the drivers; spark-submit's
# launcher also uses it to locate SPARK_HOME instead of the Airflow venv's python, whose
# pyspark-client package has no jars. On a cluster (profile `cluster`) the executors run
# the packed environment the job ships instead (see spark/lakehouse/executor_env.py).
SPARK_PYTHON = str(Path(SPARK_SUBMIT).parent / "python")
SPARK_ENV = {
    "LAKEHOUSE_HOME": str(LAKEHOUSE_HOME),
    "LAKEHOUSE_PROFILE": PROFILE,
    "SPARK_CONF_DIR": str(LAKEHOUSE_HOME / "conf"),
    "PYSPARK_PYTHON": SPARK_PYTHON,
    "PYSPARK_DRIVER_PYTHON": SPARK_PYTHON,
}
SPARK_CONF = {"spark.jars": str(LAKEHOUSE_HOME / ".jars" / "*.jar")}
# Each task's JVMs (driver, executors) live seconds to minutes. On small runs the optimising
# C2 compiler never pays back its work: C1 only makes the daily DAG on the samples about
# 1.6x faster on the local cluster (gold_daily 80 s -> 49 s). For big volumes leave it off
# and check with `make bench`: long parses want C2. (-XX:-DontCompileHugeMethods as in
# conf/spark-defaults.conf: these settings replace its executor options.)
if os.environ.get("LAKEHOUSE_QUICK_JIT", "") in ("1", "true"):
    JIT = "-XX:-DontCompileHugeMethods -XX:TieredStopAtLevel=1"
    SPARK_CONF |= {"spark.driver.extraJavaOptions": JIT, "spark.executor.extraJavaOptions": JIT}

# Deployment-specific Spark settings (executor sizes, cores per application...) without
# editing the DAG files; applied last, so they win.
SPARK_CONF |= json.loads(os.environ.get("LAKEHOUSE_SPARK_CONF") or "{}")

DEFAULT_ARGS = {"owner": "lakehouse", "retries": RETRIES, "retry_delay": timedelta(minutes=5)}
# What every lakehouse DAG sets alike: the jobs read and write the same Delta tables
# incrementally, so one run at a time, and no replay of missed intervals (each run
# processes everything new; lakehouse_daily backfills on request).
DAG_DEFAULTS = {
    "start_date": pendulum.datetime(2024, 1, 1, tz="UTC"),
    "catchup": False,
    "max_active_runs": 1,
    "default_args": DEFAULT_ARGS,
}


def table_asset(layer: str, table: str) -> Asset:
    """The Airflow Asset of a warehouse table: DAGs scheduled on it run when a task updates it."""
    return Asset(name=f"lakehouse.{layer}.{table}", uri=f"lakehouse://warehouse/{layer}/{table}", group="lakehouse")


def export_asset(table: str) -> Asset:
    """The Asset of a table the export writes to PostgreSQL."""
    return Asset(name=f"lakehouse.export.{table}", uri=f"lakehouse://export/{table}", group="lakehouse")


def _feed_registry() -> dict:
    """The feed registry (spark/lakehouse/feeds/__init__.py, plain data), loaded by its path: the DAG
    files do not import the lakehouse package (Airflow's venv holds no Spark)."""
    path = LAKEHOUSE_HOME / "spark" / "lakehouse" / "feeds" / "__init__.py"
    spec = importlib.util.spec_from_file_location("lakehouse_feed_registry", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks itself up there
    spec.loader.exec_module(module)
    return module.FEEDS


FEEDS = _feed_registry()
# Each feed's gold tables (by date, then those kept current per key).
GOLD_TABLES_BY_SOURCE = {name: feed.all_gold_tables for name, feed in FEEDS.items()}
# The feeds offered as files in the incoming folder (lakehouse_daily; the stream catch-up
# for their topics), and the others, each with an hourly and a daily DAG (lakehouse_feeds).
DAILY_FEEDS = tuple(name for name, feed in FEEDS.items() if feed.incoming_file)
HOURLY_FEEDS = tuple(name for name, feed in FEEDS.items() if not feed.incoming_file)
GOLD_TABLES = tuple(t for tables in GOLD_TABLES_BY_SOURCE.values() for t in tables)
SILVER_ASSETS = {d: table_asset("silver", d) for d in GOLD_TABLES_BY_SOURCE}


def gold_assets(*sources: str) -> list[Asset]:
    return [table_asset("gold", t) for s in sources for t in GOLD_TABLES_BY_SOURCE[s]]


def export_assets(*sources: str) -> list[Asset]:
    return [export_asset(t) for s in sources for t in GOLD_TABLES_BY_SOURCE[s]]


def spark_job(task_id: str, job: str, args: list[str], timeout_minutes: int, **kwargs) -> SparkSubmitOperator:
    """A task that runs `spark-submit spark/lakehouse/jobs/<job>.py <args> --profile <profile>`.

    The task fails when the job exits non-zero (spark-submit passes the driver's exit code on).
    """
    return SparkSubmitOperator(
        task_id=task_id,
        application=str(JOBS / f"{job}.py"),
        application_args=[*args, "--profile", PROFILE],
        name=f"lakehouse-{task_id}",
        conn_id=SPARK_CONN_ID,
        spark_binary=SPARK_SUBMIT,
        conf=SPARK_CONF,
        env_vars=SPARK_ENV,
        execution_timeout=timedelta(minutes=timeout_minutes),
        **kwargs,
    )
