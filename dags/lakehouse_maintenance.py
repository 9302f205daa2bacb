"""
### lakehouse_maintenance

Once a day, away from the daily pipeline (03:30 UTC): `lakehouse maintain`, i.e. OPTIMIZE
(compacts the small files that streaming micro-batches and daily appends leave) and
VACUUM (removes files no table version needs any more, keeping 7 days for time travel
and for readers still on an old version) on every table of every layer.

Out of `lakehouse_daily`'s critical path on purpose: compaction rewrites files and can
take long on big tables, and a late export is worse than an uncompacted table. Delta's
optimistic concurrency keeps it safe next to the other jobs (a conflicting commit is
retried by the job that lost).

**Settings**: as in `dags/_lakehouse.py`.
"""

from __future__ import annotations

from datetime import timedelta

from _lakehouse import DAG_DEFAULTS, spark_job
from airflow.sdk import DAG, CronTriggerTimetable

with DAG(
    dag_id="lakehouse_maintenance",
    description="OPTIMIZE + VACUUM every table, once a day, off the critical path",
    doc_md=__doc__,
    schedule=CronTriggerTimetable("30 3 * * *", timezone="UTC"),
    dagrun_timeout=timedelta(hours=6),
    **DAG_DEFAULTS,
    tags=["lakehouse", "spark", "maintenance"],
) as dag:
    spark_job("maintain", "maintain", [], timeout_minutes=240)
