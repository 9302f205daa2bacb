"""
### lakehouse_{web_events,api_ticks}_hourly, lakehouse_{web_events,api_ticks}_daily, lakehouse_ip_events_every_10_min

The three feeds beside access logs and product views, each as seed 003 runs its poller's
data: a DAG lands and cleans it every `landing_minutes` (the feed registry: hourly, 10
minutes for IP sightings), a daily DAG aggregates and exports the tables by date; a feed
whose gold tables are kept current per key instead has them refreshed and exported by its
landing DAG, with no daily DAG.

```
<feed>_hourly:            bronze_<feed> ──▶ silver_<feed>
<feed>_daily:             gold_<feed> ──▶ quality_gate ──▶ export_gold
ip_events_every_10_min:   bronze_ip_events ──▶ silver_ip_events ──▶ gold_ip_events ──▶ export_current
```

- **web_events** (seed 002): `gold_web_events` recomputes `traffic_5min`,
  `traffic_5min_referrer` and `sessions` for the day that just ended (`ds`) and every
  date new silver rows touched, late events included; `lakehouse stream-windows` keeps
  the same tables current within seconds between runs (in gold and in the database).
- **api_ticks** (seed 003): `lakehouse poll` fetches the endpoint; `gold_api_ticks`
  writes `api_daily_summary`.
- **ip_events** (seed 000): the IP collector of `lakehouse serve` lands the sightings;
  every 10 minutes `gold_ip_events` upserts `ip_geolocation` (a row per IP: the IPs seen
  since its last run) and `export_current` (`lakehouse export --current`) upserts the
  changed rows into the database, as the collector's own table was refreshed.

`bronze_<feed>` is `lakehouse bronze --dataset <feed>`: it reads where the feed's producer
writes, as one setting of conf/lakehouse.yaml says for both (`web_events.source`,
`poll.sink`, `ip_events.sink`: `landing`, `kafka`, or `auto`, landing in the local
profile and kafka in the others). From Kafka it is a catch-up run of the stream for that
topic only; pause it while a `lakehouse stream --dataset <feed>` runs (they share the
checkpoint). Every job is
idempotent: files already landed, bronze rows already in silver and dates already
exported are not done twice. The quality gate (`lakehouse check --date ds`) stops the
export when a `fail` rule fails. The export sends every date refreshed since its last
run, whichever DAG refreshed it.

**Assets**: `silver_<feed>` updates `lakehouse.silver.<feed>`, `gold_<feed>` its gold
tables, `export_gold` / `export_current` their `lakehouse.export.*` Assets. **Settings**: as in `dags/_lakehouse.py`.
"""

from __future__ import annotations

from datetime import timedelta

from _lakehouse import (
    DAG_DEFAULTS,
    FEEDS,
    HOURLY_FEEDS,
    SILVER_ASSETS,
    export_assets,
    gold_assets,
    spark_job,
)
from airflow.sdk import DAG, CronDataIntervalTimetable


def bronze_task(feed: str):
    """Where the feed lands (files or its topic) is the job's to read from the config."""
    return spark_job(f"bronze_{feed}", "bronze_feed", ["--dataset", feed], timeout_minutes=30)


def landing_dag_id(feed: str) -> str:
    minutes = FEEDS[feed].landing_minutes
    return f"lakehouse_{feed}_hourly" if minutes == 60 else f"lakehouse_{feed}_every_{minutes}_min"


for feed in HOURLY_FEEDS:
    minutes = FEEDS[feed].landing_minutes
    with DAG(
        dag_id=landing_dag_id(feed),
        description=f"{feed}: landing files or Kafka → bronze → silver, every {minutes} minutes"
        + (" → its tables kept current → database" if FEEDS[feed].current else ""),
        doc_md=__doc__,
        schedule=timedelta(minutes=minutes),
        dagrun_timeout=timedelta(minutes=minutes),
        **DAG_DEFAULTS,
        tags=["lakehouse", "spark", feed],
    ):
        landed = bronze_task(feed) >> spark_job(
            f"silver_{feed}", "silver", ["--dataset", feed], timeout_minutes=min(45, minutes),
            outlets=[SILVER_ASSETS[feed]],
        )
        if FEEDS[feed].current:
            # No report date: the rows new since the last run are upserted, here and in SQL.
            landed >> spark_job(
                f"gold_{feed}", "gold_daily", ["--source", feed], timeout_minutes=min(30, minutes), outlets=gold_assets(feed)
            ) >> spark_job(
                "export_current", "export_gold", ["--current"], timeout_minutes=min(30, minutes), outlets=export_assets(feed)
            )

    if not FEEDS[feed].gold:  # every table of it is kept current above
        continue
    with DAG(
        dag_id=f"lakehouse_{feed}_daily",
        description=f"{feed}: silver → gold for the day that ended → quality gate → export",
        doc_md=__doc__,
        schedule=CronDataIntervalTimetable("30 0 * * *", timezone="UTC"),
        dagrun_timeout=timedelta(hours=2),
        **DAG_DEFAULTS,
        tags=["lakehouse", "spark", feed],
    ):
        (
            spark_job(
                f"gold_{feed}", "gold_daily", ["--report-date", "{{ ds }}", "--source", feed], timeout_minutes=60,
                outlets=gold_assets(feed),
            )
            >> spark_job("quality_gate", "check", ["--date", "{{ ds }}"], timeout_minutes=30)
            >> spark_job("export_gold", "export_gold", [], timeout_minutes=30, outlets=export_assets(feed))
        )
