"""Gold daily aggregates, recomputed only for the report dates new silver data touched.

    lakehouse gold [--report-date 2024-03-01 ...]
    spark-submit spark/lakehouse/jobs/gold_daily.py --report-date {{ ds }}

For each silver table, the rows appended since the last run (a checkpointed streaming
read) name the touched event dates, late events included; every gold table built
from that silver table is recomputed from all of silver for exactly those dates and
swapped in with one `replaceWhere` overwrite (a gold table is created partitioned by
`report_date`, so that overwrite drops whole files instead of rewriting them). `--report-date` adds dates to recompute.
Each refreshed date is logged in `gold/_report_dates` with a refresh id, which the
export uses to know what changed.

`gold/ip_geolocation` is no daily table but one row per IP, kept current: the IPs new
silver rows name are recomputed from all their silver rows and upserted (MERGE on ip),
each with the `refreshed_at` the export picks changed rows by.

Web-event sessions may cross midnight (a session belongs to the date it starts): for
them the touched dates grow to every date a session spanning one of them covers, and
silver is read over enough days around those that no session is cut at an edge
(`session_dates`).
"""

from __future__ import annotations

import logging
import sys
import uuid
from datetime import UTC, date, datetime
from functools import partial

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.config import Config
from lakehouse.feeds import FEEDS, NAMES
from lakehouse.feeds.web_events import windows as web_windows
from lakehouse.io import delta, delta_merge
from lakehouse.jobs.runtime import JobRun, in_parallel, run_job, timed
from lakehouse.transforms.gold import CURRENT_BUILDERS, GOLD_TABLES, GoldParams, build_gold

log = logging.getLogger("lakehouse.gold")

REPORT_DATES_SCHEMA = T.StructType(
    [
        T.StructField("report_date", T.DateType()),
        T.StructField("source", T.StringType()),
        T.StructField("refresh_id", T.StringType()),
        T.StructField("refreshed_at", T.TimestampType()),
    ]
)


def tables_from(source: str) -> list[str]:
    return [name for name, (src, _fn) in GOLD_TABLES.items() if src == source]


def _date_list(dates) -> str:
    return ", ".join(f"DATE'{d.isoformat()}'" for d in sorted(dates))


def session_dates(silver: DataFrame, touched: set[date], gap_seconds: int) -> tuple[set[date], set[date]]:
    """(dates to rewrite, dates of silver to read) so that web-event sessions come out whole.

    Rewritten: the touched dates and every date a session spanning one of them covers.
    Read: those and the days around them until no session spanning a touched date or
    starting in a rewritten one may be cut at the edge of what is read. Each round looks
    at a small aggregate of the sessions (`web_windows.session_extents`), never at rows.
    """
    rewrite = set(touched)
    read = web_windows.around(touched, web_windows.days_reached(gap_seconds))
    while True:
        events = silver.where(F.col("event_date").isin(sorted(read)))
        extents = web_windows.session_extents(events, gap_seconds, touched, rewrite, read).collect()
        wider = web_windows.widen_dates(extents, rewrite, read, gap_seconds)
        if wider == (rewrite, read):
            return rewrite, read
        rewrite, read = wider
        log.info("sessions: rewriting %d date(s), reading %d", len(rewrite), len(read))


def refresh_dates(
    spark: SparkSession,
    config: Config,
    source: str,
    dates: set[date],
    txn: tuple[str, int] | None,
    run: JobRun,
) -> None:
    """Recompute the gold tables built from silver/<source> for `dates` and log the refresh."""
    if not dates:
        return
    silver_path = config.table_path("silver", source)
    if not delta.table_exists(spark, silver_path):
        log.info("no silver/%s yet: nothing to aggregate", source)
        return
    params = GoldParams(config.top_ips_per_day, config.web_events.session_gap_seconds)
    silver = delta.read_table(spark, silver_path)
    read = dates = set(dates)
    if FEEDS[source].gold_spans_dates:
        with timed(log, "session dates"):
            dates, read = session_dates(silver, dates, params.session_gap_seconds)
    silver = silver.where(F.col("event_date").isin(sorted(read)))
    condition = f"report_date IN ({_date_list(dates)})"

    def refresh(table: str) -> None:
        rows = build_gold(table, silver, params)
        if read != dates:  # the days read around the rewritten ones only complete their sessions
            rows = rows.where(F.col("report_date").isin(sorted(dates)))
        with timed(log, table):
            delta.replace_where(rows, config.table_path("gold", table), condition, txn=txn, partition_by=("report_date",))
            written = int(delta.last_commit_metrics(spark, config.table_path("gold", table)).get("numOutputRows", 0))
        run.add(**{f"{table}_rows": written})

    in_parallel({table: partial(refresh, table) for table in tables_from(source)}, config.driver_threads)
    refresh_id = uuid.uuid4().hex
    log_rows = spark.createDataFrame(
        [(d, source, refresh_id, None) for d in sorted(dates)], REPORT_DATES_SCHEMA
    ).withColumn("refreshed_at", F.current_timestamp())
    with timed(log, "_report_dates"):
        if txn is None:
            delta.append(log_rows, config.table_path("gold", "_report_dates"))
        else:
            delta.append_once(log_rows, config.table_path("gold", "_report_dates"), *txn)
    run.add(**{f"{source}_dates_refreshed": len(dates)})
    log.info("%s: refreshed %d report date(s): %s", source, len(dates), ", ".join(str(d) for d in sorted(dates)))


def refresh_current(spark: SparkSession, config: Config, source: str, new_rows: DataFrame, run: JobRun) -> None:
    """Recompute the gold tables kept current per key (`ip_geolocation`) for the keys
    `new_rows` (new silver rows of `source`) name, from all their silver rows, and upsert
    them: a replayed batch computes the same figures."""
    silver = delta.read_table(spark, config.table_path("silver", source))
    for table, keys in FEEDS[source].current:
        # A semi join, not a list of keys: a batch may name millions of them.
        rows = CURRENT_BUILDERS[table](silver.join(new_rows.select(*keys).distinct(), list(keys), "left_semi"),
                                      F.lit(datetime.now(UTC)))
        path = config.table_path("gold", table)
        with timed(log, table):
            delta_merge.upsert(rows, path, keys)
        metrics = delta.last_commit_metrics(spark, path)
        added = int(metrics.get("numTargetRowsInserted", metrics.get("numOutputRows", 0)))
        updated = int(metrics.get("numTargetRowsUpdated", 0))
        run.add(**{f"{table}_added": added, f"{table}_updated": updated})
        log.info("%s: %d key(s) added, %d updated", table, added, updated)


def run(
    spark: SparkSession,
    config: Config,
    run_log: JobRun,
    forced: set[date] | None = None,
    sources: tuple[str, ...] = NAMES,
) -> None:
    """Refresh the gold dates touched by new silver rows of `sources`, plus `forced` dates
    (each source's tables apart from the others', so the sources run side by side)."""
    in_parallel({source: partial(_refresh_source, spark, config, run_log, forced, source) for source in sources},
                config.driver_threads)


def _refresh_source(spark: SparkSession, config: Config, run_log: JobRun, forced: set[date] | None, source: str) -> None:
    """The gold tables of one silver table: the dates its new rows touch, plus `forced`."""
    silver_path = config.table_path("silver", source)
    if not delta.table_exists(spark, silver_path):
        log.info("no silver/%s yet: skipping its gold tables", source)
        return

    def handle(batch: DataFrame, batch_id: int, app_id: str) -> None:
        if FEEDS[source].current:
            refresh_current(spark, config, source, batch, run_log)
        if not FEEDS[source].gold:
            return
        with timed(log, "touched dates"):
            touched = {r[0] for r in batch.select("event_date").distinct().collect() if r[0] is not None}
        refresh_dates(spark, config, source, touched, (app_id, batch_id), run_log)

    # Rows deleted from silver (a GDPR erasure, a repair) must not stop gold: such
    # commits are passed over, and the dates they touch are brought in line by a
    # recompute (`--report-date`; the quality rule gold_totals flags any date that differs).
    delta.process_new_rows(
        spark, silver_path, config.checkpoint(f"gold_{source}"), f"gold_{source}", handle, skip_change_commits=True
    )
    if forced and FEEDS[source].gold:  # tables kept current per key have no report dates
        refresh_dates(spark, config, source, set(forced), None, run_log)


def main(argv: list[str] | None = None) -> int:
    def arguments(parser) -> None:
        parser.add_argument(
            "--report-date", action="append", type=date.fromisoformat, default=[], help="also recompute this date (repeatable)"
        )
        parser.add_argument(
            "--source", action="append", choices=NAMES, help="only the gold tables of this silver table (repeatable; default: all)"
        )

    return run_job(
        "gold",
        "Silver -> gold daily aggregates (touched dates only).",
        lambda spark, config, run_log, args: run(spark, config, run_log, set(args.report_date), tuple(args.source or NAMES)),
        argv,
        arguments,
    )


if __name__ == "__main__":
    sys.exit(main())
