"""What both silver jobs share: the incremental read of bronze and the per-batch write."""

from __future__ import annotations

import logging
from collections.abc import Callable

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse.config import Config
from lakehouse.io import delta
from lakehouse.jobs.common import JobRun, base_parser, config_from_args, get_session, setup_logging
from lakehouse.transforms.common import to_quarantine
from lakehouse.transforms.dedupe import dedupe_events, drop_seen_events

log = logging.getLogger("lakehouse.silver")


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


def run_silver(
    spark: SparkSession,
    config: Config,
    dataset: str,
    parse: Callable[[DataFrame], DataFrame],
    enrich: Callable[[DataFrame], DataFrame],
    silver_columns: tuple[str, ...],
    run_log: JobRun,
    order_by: tuple[str, ...] = (),
) -> None:
    """Parse, enrich and write every bronze/<dataset> row this job has not seen yet."""
    bronze = config.table_path("bronze", dataset)
    if not delta.table_exists(spark, bronze):
        log.info("no bronze/%s table yet: nothing to do", dataset)
        return

    parallelism = spark.sparkContext.defaultParallelism

    def handle(batch: DataFrame, batch_id: int, app_id: str) -> None:
        # One big bronze file (a gzip, or a compacted table) is one partition: spread it
        # over the cores, or parsing runs on one of them.
        if batch.rdd.getNumPartitions() < parallelism:
            batch = batch.repartition(parallelism)
        counts = write_silver_batch(
            spark,
            parse(batch),
            config.table_path("silver", dataset),
            config.table_path("quarantine", dataset),
            silver_columns,
            (app_id, batch_id),
            enrich,
            order_by,
        )
        run_log.add(**counts)
        log.info("%s batch %d: %s", dataset, batch_id, ", ".join(f"{k}={v:,}" for k, v in counts.items()))

    delta.process_new_rows(spark, bronze, config.checkpoint(f"silver_{dataset}"), f"silver_{dataset}", handle)


def silver_main(dataset: str, run: Callable[[SparkSession, Config, JobRun], None], argv: list[str] | None) -> int:
    """The command line of a silver job."""
    name = f"silver-{dataset.replace('_', '-')}"
    args = base_parser(f"lakehouse {name}", f"Bronze {dataset} -> silver + quarantine.").parse_args(argv)
    setup_logging(args.verbose)
    config = config_from_args(args)
    spark = get_session(config, name)
    run_log = JobRun(f"silver {dataset}")
    run(spark, config, run_log)
    run_log.record(spark, config)
    return 0
