"""
### lakehouse_daily

Once a day: incoming files → bronze → silver → gold for the day that just ended (`ds`) → export.

```
ingest_access_logs   ──▶ silver_access_logs   ──┐
                                                 ├──▶ gold_daily ──▶ export_gold
ingest_product_views ──▶ silver_product_views ──┘
```

Every task is a `spark-submit` of one job module in `spark/lakehouse/jobs/`, run with
the project's Spark venv (`.venv/bin/spark-submit`); Airflow itself lives in its own
venv (`.venv-airflow`), because the Spark provider's `pyspark-client` and `pyspark`
cannot share one. All jobs are idempotent and incremental, so a retry or a re-run of
any day changes nothing: ingest skips files it has already landed, silver reads only
unseen bronze data, gold overwrites exactly the dates it recomputes (new silver dates
plus `--report-date {{ ds }}`), export replaces whole report dates in one transaction.

**Settings**: environment variables are read when the file is parsed (set them alike
for the DAG processor, scheduler and workers); Variables when a task runs.

| what | where | default |
|---|---|---|
| project folder | env `LAKEHOUSE_HOME` | the folder above `dags/` |
| config profile | env `LAKEHOUSE_PROFILE` | `local` |
| incoming folder | Variable `lakehouse_incoming`, else env `LAKEHOUSE_INCOMING` | `<home>/sample_logs` |
| access logs in it (a file or a folder) | Variable `lakehouse_access_logs` | `access.log` |
| product views in it (a file or a folder) | Variable `lakehouse_product_views` | `product_views.jsonl` |
| spark-submit (its venv's python runs the jobs) | env `LAKEHOUSE_SPARK_SUBMIT` | `<home>/.venv/bin/spark-submit` |
| task retries | env `LAKEHOUSE_TASK_RETRIES` | `1` (5 minutes apart) |
| Spark master | Airflow connection `spark_default` (env `LAKEHOUSE_SPARK_CONN_ID` names another) | none: without it the provider falls back to `yarn`; locally `AIRFLOW_CONN_SPARK_DEFAULT='{"conn_type": "spark", "host": "local[*]"}'` |

A landing zone with one folder per feed sets `lakehouse_access_logs=access_logs` and
`lakehouse_product_views=product_views`; files already ingested are skipped, so the
whole folder can be offered every day. Secrets (export password, S3 keys) reach the
jobs through the environment, never through this file.

Try it without a scheduler: `make airflow-test`, i.e. `airflow dags test lakehouse_daily <date>`
(`-c '{"incoming": "/some/folder"}'` points one run at other files: without the
Variables, the run's params `incoming`, `access_logs` and `product_views` decide).
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pendulum
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import DAG, CronDataIntervalTimetable, Param

LAKEHOUSE_HOME = Path(os.environ.get("LAKEHOUSE_HOME") or Path(__file__).resolve().parents[1])
PROFILE = os.environ.get("LAKEHOUSE_PROFILE", "local")
INCOMING_DEFAULT = os.environ.get("LAKEHOUSE_INCOMING") or str(LAKEHOUSE_HOME / "sample_logs")
SPARK_SUBMIT = os.environ.get("LAKEHOUSE_SPARK_SUBMIT") or str(
    LAKEHOUSE_HOME / ".venv" / "bin" / "spark-submit"
)
SPARK_CONN_ID = os.environ.get("LAKEHOUSE_SPARK_CONN_ID", "spark_default")
# `airflow dags test` waits out retry delays: local trials set this to 0 to fail fast.
RETRIES = int(os.environ.get("LAKEHOUSE_TASK_RETRIES", "1"))
JOBS = LAKEHOUSE_HOME / "spark" / "lakehouse" / "jobs"

# The Spark venv's interpreter (beside its spark-submit) must run both the driver and
# the Python workers; spark-submit's launcher also uses it to locate SPARK_HOME instead
# of the Airflow venv's python, whose pyspark-client package has no jars.
SPARK_PYTHON = str(Path(SPARK_SUBMIT).parent / "python")
SPARK_ENV = {
    "LAKEHOUSE_HOME": str(LAKEHOUSE_HOME),
    "LAKEHOUSE_PROFILE": PROFILE,
    "SPARK_CONF_DIR": str(LAKEHOUSE_HOME / "conf"),
    "PYSPARK_PYTHON": SPARK_PYTHON,
    "PYSPARK_DRIVER_PYTHON": SPARK_PYTHON,
}
SPARK_CONF = {"spark.jars": str(LAKEHOUSE_HOME / ".jars" / "*.jar")}


def setting(name: str) -> str:
    """Template for Variable `lakehouse_<name>`, else the run's param `<name>`.

    Rendered when the task runs, so the DAG parser never reads Variables.
    """
    return f"{{{{ var.value.get('lakehouse_{name}', params.{name}) }}}}"


INCOMING = setting("incoming")


def spark_job(task_id: str, job: str, args: list[str], timeout_minutes: int) -> SparkSubmitOperator:
    """A task that runs `spark-submit spark/lakehouse/jobs/<job>.py <args> --profile <profile>`."""
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
    )


with DAG(
    dag_id="lakehouse_daily",
    description="incoming files → bronze → silver → gold → export, once a day",
    doc_md=__doc__,
    # A data-interval schedule makes {{ ds }} the day that just ended (a bare "@daily"
    # is a CronTriggerTimetable in Airflow 3: ds would be the day just starting).
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    # Jobs read and write the same Delta tables incrementally: one run at a time.
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=4),
    params={
        "incoming": Param(INCOMING_DEFAULT, type="string", description="incoming folder"),
        "access_logs": Param(
            "access.log", type="string", description="access-log file or folder in it"
        ),
        "product_views": Param(
            "product_views.jsonl", type="string", description="product-view file or folder in it"
        ),
    },
    default_args={
        "owner": "lakehouse",
        "retries": RETRIES,
        "retry_delay": timedelta(minutes=5),
    },
    tags=["lakehouse", "spark"],
) as dag:
    ingest_access_logs = spark_job(
        "ingest_access_logs",
        "ingest_files",
        ["--dataset", "access_logs", "--path", f"{INCOMING}/{setting('access_logs')}"],
        timeout_minutes=30,
    )
    ingest_product_views = spark_job(
        "ingest_product_views",
        "ingest_files",
        ["--dataset", "product_views", "--path", f"{INCOMING}/{setting('product_views')}"],
        timeout_minutes=30,
    )
    silver_access_logs = spark_job(
        "silver_access_logs", "silver_access_logs", [], timeout_minutes=60
    )
    silver_product_views = spark_job(
        "silver_product_views", "silver_product_views", [], timeout_minutes=60
    )
    gold_daily = spark_job(
        "gold_daily", "gold_daily", ["--report-date", "{{ ds }}"], timeout_minutes=60
    )
    export_gold = spark_job("export_gold", "export_gold", [], timeout_minutes=30)
    # Compacts the small files the stream and the daily appends leave (OPTIMIZE + VACUUM).
    maintain = spark_job("maintain", "maintain", [], timeout_minutes=60)

    ingest_access_logs >> silver_access_logs
    ingest_product_views >> silver_product_views
    [silver_access_logs, silver_product_views] >> gold_daily >> export_gold >> maintain
