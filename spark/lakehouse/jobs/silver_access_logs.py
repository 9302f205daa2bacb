"""Silver access logs: parse, type, enrich and dedupe the bronze lines not yet processed.

    lakehouse silver --dataset access_logs
    spark-submit spark/lakehouse/jobs/silver_access_logs.py [--warehouse DIR]

Reads `bronze/access_logs` incrementally (checkpointed streaming read, availableNow),
writes `silver/access_logs` (partitioned by event_date, deduped on event_id across runs)
and `quarantine/access_logs` (every rejected line with its reason). Blank lines are
counted and skipped. Each micro-batch commits with a Delta transaction id, so a replay
after a crash writes nothing twice.
"""

from __future__ import annotations

import logging
import sys

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse.config import Config
from lakehouse.io import delta
from lakehouse.jobs.common import JobRun, base_parser, config_from_args, get_session, setup_logging
from lakehouse.transforms.access_logs import SILVER_COLUMNS, access_log_rows
from lakehouse.transforms.common import to_quarantine
from lakehouse.transforms.dedupe import dedupe_events, drop_seen_events
from lakehouse.transforms.enrich import (
    ip_geo_dimension,
    user_agent_dimension,
    with_geo,
    with_user_agent,
)
from lakehouse.transforms.log_format import compile_log_format

log = logging.getLogger("lakehouse.silver.access_logs")

GEO_COLUMNS = ("country", "city", "latitude", "longitude")


def enrich_requests(rows: DataFrame, geoip_database: str | None) -> DataFrame:
    """Valid rows + user-agent and GeoIP dimensions, computed per distinct value."""
    agents = user_agent_dimension(rows, "user_agent")
    places = ip_geo_dimension(rows, "ip", geoip_database)
    return rows.transform(lambda d: with_user_agent(d, agents)).transform(
        lambda d: with_geo(d, places, "ip", GEO_COLUMNS)
    )


def write_silver_batch(
    spark: SparkSession,
    rows: DataFrame,
    silver_path: str,
    quarantine_path: str,
    silver_columns: tuple[str, ...],
    txn: tuple[str, int],
    enrich,
    order_by: tuple[str, ...] = (),
) -> dict[str, int]:
    """Write one parsed batch: quarantine rows, then new deduped silver rows. Returns counts."""
    rows = rows.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        kinds = {
            r["kind"]: r["n"]
            for r in rows.groupBy(
                F.when(F.col("is_blank"), "blank").when(F.col("reason").isNotNull(), "quarantined").otherwise("valid").alias("kind")
            )
            .agg(F.count(F.lit(1)).alias("n"))
            .collect()
        }
        counts = {
            "read": sum(kinds.values()),
            "skipped_blank": kinds.get("blank", 0),
            "quarantined": kinds.get("quarantined", 0),
        }
        if counts["quarantined"]:
            delta.append(to_quarantine(rows), quarantine_path, txn=txn)
        valid = rows.where(~F.col("is_blank") & F.col("reason").isNull())
        new = dedupe_events(enrich(valid), order_by)
        if delta.table_exists(spark, silver_path) and kinds.get("valid", 0):
            dates = [r[0] for r in valid.select("event_date").distinct().collect()]
            seen = delta.read_table(spark, silver_path).where(F.col("event_date").isin(dates))
            new = drop_seen_events(new, seen)
        written = 0
        if kinds.get("valid", 0):
            delta.append(new.select(*silver_columns), silver_path, partition_by=("event_date",), txn=txn)
            written = int(delta.last_commit_metrics(spark, silver_path).get("numOutputRows", 0))
        counts["written"] = written
        counts["duplicates"] = kinds.get("valid", 0) - written
        return counts
    finally:
        rows.unpersist()


def run(spark: SparkSession, config: Config, run_log: JobRun) -> None:
    """Process every bronze access-log line not yet seen by this job."""
    bronze = config.table_path("bronze", "access_logs")
    if not delta.table_exists(spark, bronze):
        log.info("no bronze/access_logs table yet: nothing to do")
        return
    compiled = compile_log_format(config.access_logs.log_format, config.access_logs.also_accept_common)
    if compiled.regex is None:
        log.warning("log format %r has directives the fast parser does not model: every line goes through apachelogs", compiled.log_format)
    quality = config.quality

    def handle(batch: DataFrame, batch_id: int, app_id: str) -> None:
        rows = access_log_rows(batch, compiled, config.access_logs.also_accept_common, quality.min_event_date, quality.max_future_hours)
        counts = write_silver_batch(
            spark,
            rows,
            config.table_path("silver", "access_logs"),
            config.table_path("quarantine", "access_logs"),
            SILVER_COLUMNS,
            (app_id, batch_id),
            lambda valid: enrich_requests(valid, config.geoip_database),
        )
        run_log.add(**counts)
        log.info("batch %d: %s", batch_id, ", ".join(f"{k}={v:,}" for k, v in counts.items()))

    delta.process_new_rows(spark, bronze, config.checkpoint("silver_access_logs"), "silver_access_logs", handle)


def main(argv: list[str] | None = None) -> int:
    args = base_parser("lakehouse silver-access-logs", "Bronze access logs -> silver + quarantine.").parse_args(argv)
    setup_logging(args.verbose)
    config = config_from_args(args)
    spark = get_session(config, "silver-access-logs")
    run_log = JobRun("silver access_logs")
    run(spark, config, run_log)
    run_log.record(spark, config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
