"""Export gold to SQL (PostgreSQL, or SQLite for the embedded default), one transaction per date.

    lakehouse export                      # every report date refreshed since its last export
    lakehouse export --all                # every report date gold holds
    lakehouse export --current            # only the tables kept current per key (every 10 minutes)
    spark-submit spark/lakehouse/jobs/export_gold.py --profile services

The target comes from `export.url` in conf/lakehouse.yaml (password from the env var
named by `export.password_env`); `none` disables the export. Tables are created from
conf/sql/gold_tables.sql. Each report date is replaced in a single transaction
(DELETE + INSERT from staging + the `lakehouse_export_state` row), so a failed or
repeated export never leaves a partial or doubled day. Tables kept current per key
(`ip_geolocation`) are upserted by key in one transaction: the rows refreshed since the
newest one the database holds (all with `--all`). `lakehouse stream-windows` upserts
its closed windows and sessions by key as they close (`upsert_live`); the daily export
then replaces their dates from gold as for every table.

Opt-in (`export.raw_rows`, off by default; docs/raw-rows.md): the silver rows of the
datasets listed are exported one for one too (access_logs -> `web_logs`, web_events ->
`processed_events`, conf/sql/raw_tables.sql), for exactly the report dates exported, each
date's rows (by event_date) swapped in within that date's transaction.
"""

from __future__ import annotations

import logging
import sys

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse.config import Config
from lakehouse.feeds import FEEDS
from lakehouse.io import delta, jdbc
from lakehouse.jobs.runtime import JobRun, run_job
from lakehouse.transforms.gold import CURRENT_TABLES, GOLD_TABLES, PRIMARY_KEYS
from lakehouse.transforms.raw_rows import raw_rows

log = logging.getLogger("lakehouse.export")


def target_from(config: Config) -> jdbc.JdbcTarget:
    return jdbc.JdbcTarget(config.export.url, config.export.dialect, config.export.user, config.export.password)


def pending_refreshes(spark: SparkSession, config: Config, exported: dict[str, str], everything: bool) -> dict[str, str]:
    """{report_date: latest refresh_id} of the dates whose latest gold refresh is not exported."""
    path = config.table_path("gold", "_report_dates")
    if not delta.table_exists(spark, path):
        return {}
    latest = (
        delta.read_table(spark, path)
        .groupBy("report_date")
        .agg(F.max_by("refresh_id", "refreshed_at").alias("refresh_id"))
        .collect()
    )
    pending = {r["report_date"].isoformat(): r["refresh_id"] for r in latest}
    if everything:
        return pending
    return {d: rid for d, rid in pending.items() if exported.get(d) != rid}


def raw_tables(config: Config) -> list[str]:
    """The SQL tables of the datasets whose silver rows are exported one for one (`export.raw_rows`)."""
    return [FEEDS[name].raw_table for name in config.export.raw_rows]


def stage_raw_rows(spark: SparkSession, config: Config, target: jdbc.JdbcTarget, dates: list[str]) -> dict[str, list[str]]:
    """Stage the silver rows of `dates` of each dataset `export.raw_rows` names in
    `_stg_<its table>`; returns {table: columns} of those staged."""
    columns = {}
    for name in config.export.raw_rows:
        path, feed = config.table_path("silver", name), FEEDS[name]
        if not delta.table_exists(spark, path):
            continue
        rows = raw_rows(delta.read_table(spark, path), feed.raw_columns, dates)
        # Indexed on its date: `--all` swaps in many dates, each reading only its own rows.
        jdbc.stage(rows, target, f"_stg_{feed.raw_table}", like=feed.raw_table, index="event_date")
        columns[feed.raw_table] = rows.columns
    return columns


def export_dates(spark: SparkSession, config: Config, target: jdbc.JdbcTarget, dates: dict[str, str], run: JobRun) -> None:
    """Stage the gold rows of `dates` (and the silver rows of `export.raw_rows`), then swap
    each date in with one transaction."""
    tables = [t for t in GOLD_TABLES if delta.table_exists(spark, config.table_path("gold", t))]
    columns = {}
    for table in tables:
        gold = delta.read_table(spark, config.table_path("gold", table))
        jdbc.stage(gold.where(F.col("report_date").isin(sorted(dates))), target, f"_stg_{table}", like=table)
        columns[table] = gold.columns
    raw = stage_raw_rows(spark, config, target, sorted(dates))
    done = 0
    try:
        for day, moved in jdbc.replace_report_dates(spark, target, columns | raw, dates, dict.fromkeys(raw, "event_date")):
            done += 1
            rows = sum(n for table, n in moved.items() if table not in raw)
            run.add(dates_exported=1, rows_exported=rows, **{f"{table}_rows_exported": moved[table] for table in raw})
            log.info(
                "exported %s (%d/%d): %d rows%s", day, done, len(dates), rows, "".join(f", {moved[t]} in {t}" for t in raw)
            )
    except Exception:
        log.error("export of %s failed: rolled back, earlier dates stay exported", sorted(dates)[done])
        raise


def export_current(
    spark: SparkSession, config: Config, target: jdbc.JdbcTarget, everything: bool, run: JobRun, staging: str = "_stg_"
) -> None:
    """Upsert the rows of each table kept current that were refreshed since the newest
    refresh the database holds (every row with `everything`), one transaction per table,
    staged in `<staging><table>`."""
    for table, (_source, keys) in CURRENT_TABLES.items():
        path = config.table_path("gold", table)
        if not delta.table_exists(spark, path):
            continue
        gold = delta.read_table(spark, path)
        since = None if everything else jdbc.newest_timestamp(spark, target, table, "refreshed_at")
        if since is not None:
            # Every row a gold run changes gets that run's time, so the newest exported
            # one tells which runs the database has seen.
            gold = gold.where(F.col("refreshed_at") > F.lit(since))
        jdbc.stage(gold, target, f"{staging}{table}", like=table)
        moved = jdbc.upsert_staged(spark, target, table, gold.columns, keys, f"{staging}{table}")
        run.add(rows_exported=moved)
        log.info("exported %s: %d row(s) upserted", table, moved)


def schema_ddl(config: Config) -> str:
    """The export's DDL: the gold tables, and the raw tables `export.raw_rows` asks for."""
    ddl = config.export.schema_ddl.read_text()
    if config.export.raw_rows:
        ddl += ";\n" + jdbc.statements_creating(config.export.raw_ddl.read_text(), raw_tables(config))
    return ddl


def prepare_live(spark: SparkSession, config: Config) -> jdbc.JdbcTarget | None:
    """The export target with its tables created, for a stream that upserts rows as they
    close (`upsert_live`); None when the export is off."""
    if not config.export.enabled:
        return None
    target = target_from(config)
    jdbc.prepare_export(spark, target, config.export.schema_ddl.read_text())
    return target


def upsert_live(target: jdbc.JdbcTarget, table: str, rows: DataFrame, unless_larger: str | None = None) -> int:
    """Upsert final gold rows of `table` into the database by its key, in one transaction:
    a replayed micro-batch writes the same values again. Staged in `_live_<table>`, apart
    from the daily export's `_stg_<table>`, so both may run at once."""
    staged = f"_live_{table}"
    jdbc.stage(rows, target, staged, like=table)
    return jdbc.upsert_staged(rows.sparkSession, target, table, rows.columns, PRIMARY_KEYS[table], staged, unless_larger)


def run(spark: SparkSession, config: Config, run_log: JobRun, everything: bool = False, current_only: bool = False) -> None:
    """Export every gold report date refreshed since its last export (all with `everything`),
    then the changed rows of the tables kept current (only those with `current_only`: what
    a frequent DAG refreshes, staged apart from a daily export that may run at the same time)."""
    if not config.export.enabled:
        log.info("export disabled (export.url is none): skipping")
        return
    target = target_from(config)
    exported = jdbc.prepare_export(spark, target, schema_ddl(config))
    if current_only:
        export_current(spark, config, target, everything, run_log, staging="_cur_")
        return
    dates = pending_refreshes(spark, config, exported, everything)
    if dates:
        log.info("export: %d report date(s) to %s", len(dates), config.export.url.split("?")[0])
        export_dates(spark, config, target, dates, run_log)
    else:
        log.info("export: every report date is up to date in %s", config.export.url.split("?")[0])
    export_current(spark, config, target, everything, run_log)


def main(argv: list[str] | None = None) -> int:
    return run_job(
        "export",
        "Export gold tables to PostgreSQL/SQLite, transactionally per date.",
        lambda spark, config, run_log, args: run(spark, config, run_log, everything=args.all, current_only=args.current),
        argv,
        arguments,
    )


def arguments(parser) -> None:
    parser.add_argument("--all", action="store_true", help="re-export every date, not only changed ones")
    parser.add_argument("--current", action="store_true", help="only the tables kept current per key (ip_geolocation)")


if __name__ == "__main__":
    sys.exit(main())
