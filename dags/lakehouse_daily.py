"""
### lakehouse_daily

Once a day: incoming files → bronze → silver → gold for the day that just ended (`ds`)
→ data-quality gate → export to PostgreSQL.

```
ingest_access_logs   ──▶ silver_access_logs   ──┐
                                                 ├──▶ gold_daily ──▶ quality_gate ──▶ export_gold
ingest_product_views ──▶ silver_product_views ──┘
```

Every task is a `spark-submit` of one job module in `spark/lakehouse/jobs/`, run with
the project's Spark venv (`.venv/bin/spark-submit`) against the master of the Airflow
connection `spark_default`; Airflow itself lives in its own venv (`.venv-airflow`),
because the Spark provider's `pyspark-client` and `pyspark` cannot share one.

All jobs are idempotent and incremental, so a retry or a re-run of any day changes
nothing: ingest skips files it has already landed, silver reads only unseen bronze data,
gold overwrites exactly the dates it recomputes (new silver dates plus `--report-date
{{ ds }}`), export replaces whole report dates in one transaction. `quality_gate` is
`lakehouse check --date {{ ds }}` (rules in `conf/quality.yaml`): a `fail` rule that fails
(e.g. bronze rows that silver does not account for, gold totals that differ from silver)
fails the task, and export does not run, so bad data never reaches PostgreSQL.

Backfill a date range (one run per day, oldest first, one at a time):
`airflow backfill create --dag-id lakehouse_daily --from-date 2024-03-01 --to-date 2024-03-03`.

**Assets**: `silver_*` update `lakehouse.silver.<dataset>`, `gold_daily` the
`lakehouse.gold.*` tables, `export_gold` the `lakehouse.export.*` tables; DAGs scheduled
on them (`schedule=[...]`) run when this DAG has refreshed them.

**Settings**: see `dags/_lakehouse.py` (project folder, profile, spark-submit, retries,
Spark master). Where the files come from, read when a task runs:

| what | where | default |
|---|---|---|
| incoming folder | Variable `lakehouse_incoming`, else env `LAKEHOUSE_INCOMING` | `<home>/sample_logs` |
| access logs in it (a file or a folder) | Variable `lakehouse_access_logs` | `access.log` |
| product views in it (a file or a folder) | Variable `lakehouse_product_views` | `product_views.jsonl` |

The ingest tasks read nothing outside the incoming folder (`ingest --within`): a run's
`incoming` param may name a folder inside it, and the file names may not lead out of it
(`..`, absolute paths, symbolic links): such a path fails the task, such a file is skipped
and recorded in `_meta/ingest_errors`.

A landing zone with one folder per feed sets `lakehouse_access_logs=access_logs` and
`lakehouse_product_views=product_views`; files already ingested are skipped, so the
whole folder can be offered every day.

Try it without a scheduler: `make airflow-test`, i.e. `airflow dags test lakehouse_daily <date>`
(`-c '{"incoming": "/some/folder"}'` points one run at other files: without the
Variables, the run's params `incoming`, `access_logs` and `product_views` decide).
"""

from __future__ import annotations

import os
from datetime import timedelta

from _lakehouse import (
    DAG_DEFAULTS,
    DAILY_FEEDS,
    FEEDS,
    LAKEHOUSE_HOME,
    SILVER_ASSETS,
    export_assets,
    gold_assets,
    spark_job,
)
from airflow.sdk import DAG, CronDataIntervalTimetable, Param

INCOMING_DEFAULT = os.environ.get("LAKEHOUSE_INCOMING") or str(LAKEHOUSE_HOME / "sample_logs")


def setting(name: str) -> str:
    """Template for Variable `lakehouse_<name>`, else the run's param `<name>`.

    Rendered when the task runs, so the DAG parser never reads Variables.
    """
    return f"{{{{ var.value.get('lakehouse_{name}', params.{name}) }}}}"


INCOMING = setting("incoming")
# What the files may not leave: the configured folder, never a run's parameter.
INCOMING_ROOT = f"{{{{ var.value.get('lakehouse_incoming', {INCOMING_DEFAULT!r}) }}}}"

with DAG(
    dag_id="lakehouse_daily",
    description="incoming files → bronze → silver → gold → quality gate → export, once a day",
    doc_md=__doc__,
    # A data-interval schedule makes {{ ds }} the day that just ended (a bare "@daily"
    # is a CronTriggerTimetable in Airflow 3: ds would be the day just starting).
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    dagrun_timeout=timedelta(hours=4),
    params={
        "incoming": Param(INCOMING_DEFAULT, type="string", description="incoming folder"),
        **{name: Param(feed.incoming_file, type="string", description=f"{feed.description}: a file or folder in it")
           for name, feed in FEEDS.items() if name in DAILY_FEEDS},  # fmt: skip
    },
    **DAG_DEFAULTS,
    tags=["lakehouse", "spark"],
) as dag:
    silvers = []
    for name in DAILY_FEEDS:
        ingest = spark_job(
            f"ingest_{name}", "ingest_files",
            ["--dataset", name, "--path", f"{INCOMING}/{setting(name)}", "--within", INCOMING_ROOT],
            timeout_minutes=30,
        )  # fmt: skip
        silvers.append(spark_job(f"silver_{name}", "silver", ["--dataset", name], timeout_minutes=60, outlets=[SILVER_ASSETS[name]]))
        ingest >> silvers[-1]
    # The other feeds have DAGs of their own (lakehouse_feeds.py).
    sources = [arg for name in DAILY_FEEDS for arg in ("--source", name)]
    gold_daily = spark_job(
        "gold_daily", "gold_daily", ["--report-date", "{{ ds }}", *sources], timeout_minutes=60,
        outlets=gold_assets(*DAILY_FEEDS),
    )
    quality_gate = spark_job("quality_gate", "check", ["--date", "{{ ds }}"], timeout_minutes=30)
    export_gold = spark_job("export_gold", "export_gold", [], timeout_minutes=30, outlets=export_assets(*DAILY_FEEDS))

    silvers >> gold_daily >> quality_gate >> export_gold
