"""What both silver jobs share: the incremental read of bronze and the per-batch write."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse.config import Config
from lakehouse.io import delta, staging
from lakehouse.jobs.common import JobRun, base_parser, config_from_args, get_session, setup_logging
from lakehouse.transforms.common import QUARANTINE_COLUMNS, batch_facts, to_quarantine
from lakehouse.transforms.dedupe import drop_rows, duplicate_rows, seen_rows

log = logging.getLogger("lakehouse.silver")

# Staged beside the silver and quarantine columns: what counting, dedupe and the fallback read.
STAGE_FLAGS = ("_row", "is_blank", "reason", "event_id", "event_date", "needs_fallback")
# Wide and only needed for rejected rows (quarantine keeps them; the fallback re-parses them).
RAW_COLUMNS = ("value", "raw_value")
# File statistics on event_ts only: readers select silver by event_date (the partition),
# and min/max of every column cost about a third of the silver write.
SILVER_PROPERTIES = {"delta.dataSkippingStatsColumns": "event_ts"}


def _staged(rows: DataFrame, silver_columns: tuple[str, ...], order_by: tuple[str, ...]) -> DataFrame:
    """The columns later steps read; the raw line only where quarantine or the fallback needs it."""
    wanted = {*silver_columns, *QUARANTINE_COLUMNS, *order_by, *STAGE_FLAGS}
    rejected = F.col("reason").isNotNull()
    return rows.select(
        *[F.when(rejected, F.col(c)).alias(c) if c in RAW_COLUMNS else F.col(c) for c in rows.columns if c in wanted]
    )


@dataclass
class StagedBatch:
    """A batch parsed into scratch Parquet, with its `batch_facts`."""

    rows: DataFrame
    counts: dict[str, int]  # read, skipped_blank, quarantined, valid
    dates: set  # event_date of the valid rows
    values: dict[str, set[str]]  # distinct values of each lookup column among the valid rows


def _collect_facts(rows: DataFrame, lookups: tuple[str, ...]) -> dict:
    facts: dict = {"counts": {}, "dates": set(), "values": {c: set() for c in lookups}}
    for fact, value, count in batch_facts(rows, lookups).collect():
        if fact.startswith("lookup:"):
            facts["values"][fact.removeprefix("lookup:")].add(value)
            continue
        facts["counts"][fact] = facts["counts"].get(fact, 0) + count
        if fact == "valid" and value is not None:
            facts["dates"].add(date.fromisoformat(value))
    return facts


def stage_parsed_rows(
    batch: DataFrame,
    parse: Callable[[DataFrame], DataFrame],
    fallback: Callable[[DataFrame], DataFrame] | None,
    staging_path: str,
    silver_columns: tuple[str, ...],
    order_by: tuple[str, ...] = (),
    lookups: tuple[str, ...] = (),
) -> StagedBatch:
    """Parse the batch once into scratch Parquet; every later step reads that, never bronze.

    With a `fallback`, the rows `parse` flagged `needs_fallback` are parsed again by it
    (on their bronze columns) and stored beside the others, replacing them.
    """
    parsed = parse(batch).withColumn("_row", F.monotonically_increasing_id())
    staged = staging.write(_staged(parsed, silver_columns, order_by), f"{staging_path}/rows")
    facts = [_collect_facts(staged, lookups)]
    if fallback is not None and facts[0]["counts"].get("flagged"):
        source = [c for c in batch.columns if c in staged.columns]
        flagged = staged.where(F.col("needs_fallback")).select(*source, "_row")
        redone = fallback(flagged).withColumn("needs_fallback", F.lit(False))
        redone = staging.write(_staged(redone, silver_columns, order_by).select(*staged.columns), f"{staging_path}/fallback")
        facts.append(_collect_facts(redone, lookups))
        staged = staged.where(~F.col("needs_fallback")).unionByName(redone)
    kinds = ("skipped_blank", "quarantined", "valid")
    counts = {k: sum(f["counts"].get(k, 0) for f in facts) for k in kinds}
    return StagedBatch(
        rows=staged,
        counts={"read": sum(facts[0]["counts"].values()), **counts},
        dates={d for f in facts for d in f["dates"]},
        values={c: {v for f in facts for v in f["values"][c]} for c in lookups},
    )


def write_silver_batch(
    spark: SparkSession,
    batch: StagedBatch,
    silver_path: str,
    quarantine_path: str,
    silver_columns: tuple[str, ...],
    txn: tuple[str, int],
    enrich: Callable[[DataFrame, dict[str, set[str]]], DataFrame],
    order_by: tuple[str, ...] = (),
) -> dict[str, int]:
    """Write one staged batch: quarantine rows, then new deduped silver rows. Returns counts."""
    staged, valid_count = batch.rows, batch.counts["valid"]
    counts = {k: batch.counts[k] for k in ("read", "skipped_blank", "quarantined")}
    if counts["quarantined"]:
        delta.append(to_quarantine(staged), quarantine_path, txn=txn)
    written = 0
    if valid_count:
        valid = staged.where(~F.col("is_blank") & F.col("reason").isNull())
        keys = valid.select("_row", "event_date", "event_id", *order_by)
        drop = duplicate_rows(keys, order_by)
        if delta.table_exists(spark, silver_path):
            seen = delta.read_table(spark, silver_path).where(F.col("event_date").isin(sorted(batch.dates)))
            drop = drop.unionByName(seen_rows(keys, seen))
        new = drop_rows(enrich(valid, batch.values), drop)
        delta.append(
            new.select(*silver_columns), silver_path, partition_by=("event_date",), txn=txn, properties=SILVER_PROPERTIES
        )
        written = int(delta.last_commit_metrics(spark, silver_path).get("numOutputRows", 0))
    counts["written"] = written
    counts["duplicates"] = valid_count - written
    return counts


def run_silver(
    spark: SparkSession,
    config: Config,
    dataset: str,
    parse: Callable[[DataFrame], DataFrame],
    enrich: Callable[[DataFrame, dict[str, set[str]]], DataFrame],
    silver_columns: tuple[str, ...],
    run_log: JobRun,
    order_by: tuple[str, ...] = (),
    fallback: Callable[[DataFrame], DataFrame] | None = None,
    lookups: tuple[str, ...] = (),
) -> None:
    """Parse, enrich and write every bronze/<dataset> row this job has not seen yet.

    `fallback` (optional) re-parses the rows `parse` flagged `needs_fallback`.
    `lookups` are the columns whose distinct values (among valid rows) `enrich` gets,
    with the valid rows, to build its dimensions from.
    """
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
        staging_path = f"{config.checkpoint(f'silver_{dataset}_staging')}/batch_{batch_id}"
        try:
            staged = stage_parsed_rows(batch, parse, fallback, staging_path, silver_columns, order_by, lookups)
            counts = write_silver_batch(
                spark,
                staged,
                config.table_path("silver", dataset),
                config.table_path("quarantine", dataset),
                silver_columns,
                (app_id, batch_id),
                enrich,
                order_by,
            )
        finally:
            staging.remove(spark, staging_path)
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
