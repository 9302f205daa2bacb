"""The opt-in raw export (`export.raw_rows`): silver rows one for one in SQLite, per date with gold."""

from __future__ import annotations

import sqlite3
import uuid
from dataclasses import replace
from datetime import date, datetime

from pyspark.sql import functions as F

from lakehouse.io import delta
from lakehouse.jobs import export_gold, gold_daily
from lakehouse.jobs.runtime import JobRun

D1, D2 = date(2024, 3, 1), date(2024, 3, 2)
ACCESS = (
    "event_id string, event_date date, event_ts timestamp, ip string, method string, endpoint string, path string, "
    "query string, protocol string, status int, bytes bigint, response_time_ms double, referrer string, "
    "user_agent string, ua_device string, ua_os string, ua_browser string, is_bot boolean, country string, "
    "city string, latitude double, longitude double, source_file string"
)
WEB = (
    "event_id string, event_ts timestamp, event_date date, ip string, host string, url string, path string, "
    "referrer string, referrer_host string, country string, region string, city string, user_agent string, "
    "ua_browser string, ua_os string, ua_device string, is_bot boolean, extra string, topic string"
)


def access_row(n: int, day: date, path: str = "/home"):
    ts = datetime(day.year, day.month, day.day, 10, 0, n)
    return (f"a{n}", day, ts, "10.0.0.1", "GET", path, f"{path}?q={n}", f"q={n}", "HTTP/1.1", 200, 10 * n, 1.5,
            None, "curl/8", "other", "Other", "curl", False, "GB", "London", 51.5, -0.1, "a.log")  # fmt: skip


def web_row(n: int, day: date):
    ts = datetime(day.year, day.month, day.day, 11, 0, n)
    return (f"w{n}", ts, day, "10.0.0.2", "shop.example", "https://shop.example/p", "/p", "https://ref.example/",
            "ref.example", "GB", "England", "London", "Mozilla/5.0", "Firefox", "Linux", "desktop", True,
            '{"k":"v"}', "web_events")  # fmt: skip


def write_silver(spark, cfg, dataset: str, schema: str, rows: list[tuple], day: date) -> None:
    """`rows` become silver/<dataset>'s rows of `day`, logged as refreshed by gold (as `lakehouse gold` does)."""
    delta.replace_where(
        spark.createDataFrame(rows, schema), cfg.table_path("silver", dataset), f"event_date = DATE'{day}'",
        partition_by=("event_date",),
    )  # fmt: skip
    log = spark.createDataFrame([(day, dataset, uuid.uuid4().hex, None)], gold_daily.REPORT_DATES_SCHEMA)
    delta.append(log.withColumn("refreshed_at", F.current_timestamp()), cfg.table_path("gold", "_report_dates"))


def sql(cfg, query: str) -> list[tuple]:
    with sqlite3.connect(cfg.export.url.removeprefix("jdbc:sqlite:")) as db:
        return db.execute(query).fetchall()


WEB_LOGS = "SELECT event_id, event_date, ts, endpoint, path, status, bytes, is_bot, city FROM web_logs ORDER BY 1"


def test_raw_rows_are_off_by_default_then_export_exactly_silver_once_and_replace_a_changed_date_only(
    spark, warehouse_config
):
    off = warehouse_config
    assert off.export.raw_rows == ()
    write_silver(spark, off, "access_logs", ACCESS, [access_row(1, D1), access_row(2, D1)], D1)
    write_silver(spark, off, "access_logs", ACCESS, [access_row(3, D2)], D2)
    write_silver(spark, off, "web_events", WEB, [web_row(1, D2)], D2)
    export_gold.run(spark, off, JobRun("export"))
    assert sql(off, "SELECT name FROM sqlite_master WHERE name IN ('web_logs', 'processed_events')") == []

    # Turned on, the dates already exported come with `--all` (the backfill), then exactly silver's rows.
    cfg = replace(off, export=replace(off.export, raw_rows=("access_logs", "web_events")))
    run = JobRun("export")
    export_gold.run(spark, cfg, run, everything=True)
    assert run.counts == {"dates_exported": 2, "rows_exported": 0, "web_logs_rows_exported": 3, "processed_events_rows_exported": 1}
    first = [
        ("a1", "2024-03-01", "2024-03-01 10:00:01.000000", "/home", "/home?q=1", 200, 10, 0, "London"),
        ("a2", "2024-03-01", "2024-03-01 10:00:02.000000", "/home", "/home?q=2", 200, 20, 0, "London"),
        ("a3", "2024-03-02", "2024-03-02 10:00:03.000000", "/home", "/home?q=3", 200, 30, 0, "London"),
    ]
    assert sql(cfg, WEB_LOGS) == first
    assert sql(cfg, "SELECT * FROM processed_events") == [
        ("w1", "2024-03-02", "2024-03-02 11:00:01.000000", "10.0.0.2", "shop.example", "https://shop.example/p", "/p",
         "https://ref.example/", "ref.example", "GB", "England", "London", "Mozilla/5.0", "Firefox", "Linux",
         "desktop", 1, '{"k":"v"}'),
    ]  # fmt: skip

    rerun = JobRun("export")  # every date again: replaced, not doubled
    export_gold.run(spark, cfg, rerun, everything=True)
    assert rerun.counts == run.counts
    assert sql(cfg, WEB_LOGS) == first
    assert sql(cfg, "SELECT count(*) FROM processed_events") == [(1,)]

    # D1 changes in silver (a row gone, one new): D1's rows are replaced, D2's stay as they were.
    write_silver(spark, cfg, "access_logs", ACCESS, [access_row(2, D1, path="/new"), access_row(4, D1)], D1)
    again = JobRun("export")
    export_gold.run(spark, cfg, again)
    assert again.counts == {"dates_exported": 1, "rows_exported": 0, "web_logs_rows_exported": 2, "processed_events_rows_exported": 0}
    assert sql(cfg, WEB_LOGS) == [
        ("a2", "2024-03-01", "2024-03-01 10:00:02.000000", "/new", "/new?q=2", 200, 20, 0, "London"),
        ("a3", "2024-03-02", "2024-03-02 10:00:03.000000", "/home", "/home?q=3", 200, 30, 0, "London"),
        ("a4", "2024-03-01", "2024-03-01 10:00:04.000000", "/home", "/home?q=4", 200, 40, 0, "London"),
    ]
    assert sql(cfg, "SELECT count(*) FROM processed_events") == [(1,)]

