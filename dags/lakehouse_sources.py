"""
### lakehouse_sources_fresh, lakehouse_mongo_backfill

What keeps the long-running sources honest, and the MongoDB backfill on a schedule.

- **lakehouse_sources_fresh**, every 15 minutes: `lakehouse check --group sources`, the
  freshness rules of conf/quality.yaml's `sources` group (each feed's newest bronze row at
  most `max_age_hours` old: the poller, the collector and the stream landing them have
  landed something within their interval). A stale feed fails the task, which Airflow
  retries and then reports as any failed task; the result of each rule is in
  `_meta/quality_results` and `lakehouse status`. The sources themselves run as services
  (compose) or under `lakehouse supervise` (native stack), not as tasks.
- **lakehouse_mongo_backfill**, every hour: `lakehouse ingest-mongo` of the collection
  named by `LAKEHOUSE_MONGO_DATABASE` and `LAKEHOUSE_MONGO_COLLECTION` (read when the DAG
  file is parsed), the URI from the worker's `LAKEHOUSE_MONGO_URI`. Each run resumes where
  the last one stopped and adds the documents that came since, each once; the product-view
  silver of the daily DAG and the stream catch-up picks them up. Paused when created: unpause
  it once the variables are set.

**Settings**: as in `dags/_lakehouse.py`.
"""

from __future__ import annotations

import os
from datetime import timedelta

from _lakehouse import DAG_DEFAULTS, spark_job
from airflow.sdk import DAG

with DAG(
    dag_id="lakehouse_sources_fresh",
    description="Each long-running source has landed something within its interval",
    doc_md=__doc__,
    schedule=timedelta(minutes=15),
    dagrun_timeout=timedelta(minutes=15),
    **DAG_DEFAULTS,
    tags=["lakehouse", "spark", "sources"],
):
    spark_job("sources_fresh", "check", ["--group", "sources"], timeout_minutes=10)

with DAG(
    dag_id="lakehouse_mongo_backfill",
    description="A MongoDB product-view collection -> bronze, each new document once",
    doc_md=__doc__,
    schedule=timedelta(hours=1),
    dagrun_timeout=timedelta(hours=1),
    is_paused_upon_creation=True,
    **DAG_DEFAULTS,
    tags=["lakehouse", "spark", "product_views"],
):
    spark_job(
        "ingest_mongo",
        "ingest_mongo",
        ["--database", os.environ.get("LAKEHOUSE_MONGO_DATABASE", "kafka_data_db"),
         "--collection", os.environ.get("LAKEHOUSE_MONGO_COLLECTION", "product_views_records")],
        timeout_minutes=50,
    )
