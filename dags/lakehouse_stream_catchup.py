"""
### lakehouse_stream_catchup

Every few minutes: whatever the Kafka topics got since the last run → bronze (the stream
job with `--trigger availableNow`: it reads up to the offsets that existed when it
started, commits, and stops) → silver for both datasets.

```
stream_availablenow ──▶ silver_access_logs
                    └─▶ silver_product_views
```

**When to use it instead of `lakehouse stream`**: a long-running stream keeps a driver
and its executors busy all the time and lands events within seconds; this DAG holds
resources only while it catches up, and lands events within its interval plus a few
minutes of job start-up. Use it when minutes of delay are fine, when a cluster is
shared, or when nobody wants to look after a 24/7 job; use `lakehouse stream` for
seconds. Both use the same checkpoint (`<checkpoints>/bronze_<dataset>`), so they must not
run at the same time: pause this DAG while a stream runs. Exactly once either way:
offsets and the bronze commit are one Delta transaction per micro-batch.

`max_active_runs=1` and no catch-up: a run that takes longer than the interval delays
the next one instead of overlapping it, and a paused DAG does not replay missed slots
(one run reads everything that waited).

**Settings**: env `LAKEHOUSE_CATCHUP_MINUTES` (default 15) sets the interval; the rest as
in `dags/_lakehouse.py`. **Assets**: `silver_*` update `lakehouse.silver.<dataset>`.
"""

from __future__ import annotations

import os
from datetime import timedelta

from _lakehouse import DAG_DEFAULTS, DAILY_FEEDS, SILVER_ASSETS, spark_job
from airflow.sdk import DAG

MINUTES = int(os.environ.get("LAKEHOUSE_CATCHUP_MINUTES", "15"))

with DAG(
    dag_id="lakehouse_stream_catchup",
    description=f"Kafka → bronze (availableNow) → silver, every {MINUTES} minutes",
    doc_md=__doc__,
    schedule=timedelta(minutes=MINUTES),
    dagrun_timeout=timedelta(hours=2),
    **DAG_DEFAULTS,
    tags=["lakehouse", "spark", "kafka"],
) as dag:
    # The other feeds are caught up by their own DAGs (lakehouse_feeds.py): two
    # runs must never share a dataset's checkpoint.
    datasets = DAILY_FEEDS
    stream = spark_job(
        "stream_availablenow", "stream_kafka",
        ["--trigger", "availableNow", *(a for d in datasets for a in ("--dataset", d))], timeout_minutes=60,
    )
    silver = [spark_job(f"silver_{d}", "silver", ["--dataset", d], timeout_minutes=60, outlets=[SILVER_ASSETS[d]]) for d in datasets]
    stream >> silver
