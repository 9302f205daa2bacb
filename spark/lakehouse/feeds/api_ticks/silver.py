"""Silver API ticks: polled responses exploded into typed ticks, deduped, the rest quarantined.

    lakehouse silver --dataset api_ticks
    spark-submit spark/lakehouse/feeds/api_ticks/silver.py [--warehouse DIR]

Reads `bronze/api_ticks` incrementally (a record is one raw response: one object or a
list), writes `silver/api_ticks` (one row per tick, deduped on (symbol, time) across runs:
`event_id` is a hash of both) and `quarantine/api_ticks` (HTML error pages, `{"code",
"msg"}` error payloads, invalid JSON, missing symbol or time, non-numeric prices, symbols
longer than gold exports, with the reason).

Not `jobs/silver.run_silver`: that one stages a row per bronze record and enriches user
agents and IPs; a response explodes into several ticks and has neither. The guarantees
are the same: incremental read (`delta.process_new_rows`), quarantine and silver appended
with the micro-batch's id (`delta.append_once`: a replayed batch adds nothing), counts recorded
per batch in `_meta/silver_batches`.

Counts are in entries, not bronze records: each tick of a list is one, and a record that
is blank, not JSON or an empty list is one. Per batch, read = skipped_blank + quarantined
+ written + duplicates; `records` (logged and in the job's run) is the bronze records read.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, date, datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse.config import Config
from lakehouse.feeds.api_ticks.parse import SILVER_COLUMNS, TickFields, api_tick_rows, new_ticks
from lakehouse.io import delta, staging
from lakehouse.jobs.check import load_rules
from lakehouse.jobs.runtime import JobRun, timed
from lakehouse.jobs.silver import SILVER_PROPERTIES, record_batch, silver_main
from lakehouse.transforms import quality
from lakehouse.transforms.quality import Rule
from lakehouse.transforms.records import QUARANTINE_COLUMNS, to_quarantine

log = logging.getLogger("lakehouse.silver.api_ticks")

DATASET = "api_ticks"
# Wide and only needed for rejected rows (quarantine keeps them).
RECORD_COLUMNS = ("value", "raw_value")


def tick_fields(config: Config) -> TickFields:
    """Where symbol, price and time live in a response object (`poll.*_field`)."""
    poll = config.poll
    return TickFields(symbol=poll.symbol_field, price=poll.price_field, time=poll.time_field)


def stage_ticks(
    batch: DataFrame, fields: TickFields, config: Config, rules: tuple[Rule, ...], path: str
) -> DataFrame:
    """Parse the batch once into scratch Parquet: later steps read that, never bronze."""
    parsed = api_tick_rows(
        batch, fields, config.quality.min_event_date, config.quality.max_future_hours
    )
    parsed = quality.flag_rows(parsed, list(rules), f"silver/{DATASET}").withColumn(
        "_row", F.monotonically_increasing_id()
    )
    keep = dict.fromkeys(("_row", "is_blank", "reason", *SILVER_COLUMNS, *QUARANTINE_COLUMNS[:-1]))
    rejected = F.col("reason").isNotNull()
    return staging.write(
        parsed.select(
            *[
                F.when(rejected, F.col(c)).alias(c) if c in RECORD_COLUMNS else F.col(c)
                for c in keep
            ]
        ),
        path,
    )


def batch_counts(staged: DataFrame) -> tuple[dict[str, int], set[date]]:
    """Entries per kind, bronze records, and the event dates of the valid ticks (small: collected)."""
    kind = (
        F.when(F.col("is_blank"), F.lit("skipped_blank"))
        .when(F.col("reason").isNotNull(), F.lit("quarantined"))
        .otherwise(F.lit("valid"))
    )
    facts = (
        staged.groupBy(
            kind.alias("kind"), F.when(kind == "valid", F.col("event_date")).alias("event_date")
        )
        .agg(
            F.count(F.lit(1)).alias("entries"),
            F.count_if(F.col("tick_index") == 0).alias("records"),
        )
        .collect()
    )
    counts = dict.fromkeys(("read", "records", "skipped_blank", "quarantined", "valid"), 0)
    dates: set[date] = set()
    for row in facts:
        counts[row["kind"]] += row["entries"]
        counts["read"] += row["entries"]
        counts["records"] += row["records"]
        if row["event_date"] is not None:
            dates.add(row["event_date"])
    return counts, dates


def write_batch(
    spark: SparkSession, config: Config, staged: DataFrame, txn: tuple[str, int]
) -> dict[str, int]:
    """Quarantine the rejected entries, append the new ticks; returns the batch's counts."""
    counts, dates = batch_counts(staged)
    if counts["quarantined"]:
        with timed(log, "quarantine"):
            rows = to_quarantine(staged, F.lit(datetime.now(UTC)))
            delta.append_once(rows, config.table_path("quarantine", DATASET), *txn)
    written = 0
    if counts["valid"]:
        silver_path = config.table_path("silver", DATASET)
        seen = None
        if delta.table_exists(spark, silver_path):
            seen = delta.read_table(spark, silver_path).where(
                F.col("event_date").isin(sorted(dates))
            )
        with timed(log, "dedupe + silver append"):
            delta.append_once(
                new_ticks(staged, seen),
                silver_path,
                *txn,
                partition_by=("event_date",),
                properties=SILVER_PROPERTIES,
            )
        written = int(delta.last_commit_metrics(spark, silver_path).get("numOutputRows", 0))
    valid = counts.pop("valid")
    return {**counts, "written": written, "duplicates": valid - written}


def run(spark: SparkSession, config: Config, run_log: JobRun) -> None:
    """Process every bronze API-tick response not yet seen by this job."""
    bronze = config.table_path("bronze", DATASET)
    if not delta.table_exists(spark, bronze):
        log.info("no bronze/%s table yet: nothing to do", DATASET)
        return
    fields = tick_fields(config)
    rules = tuple(load_rules(config))

    def handle(batch: DataFrame, batch_id: int, app_id: str) -> None:
        txn = (app_id, batch_id)
        staging_path = f"{config.checkpoint(f'silver_{DATASET}_staging')}/batch_{batch_id}"
        try:
            with timed(log, "parse + stage"):
                staged = stage_ticks(batch, fields, config, rules, staging_path)
            counts = write_batch(spark, config, staged, txn)
            record_batch(spark, config, DATASET, counts, txn)
        finally:
            staging.remove(spark, staging_path)
        run_log.add(**counts)
        log.info(
            "%s batch %d: %s", DATASET, batch_id, ", ".join(f"{k}={v:,}" for k, v in counts.items())
        )

    # The checkpoint name is the one `lakehouse check`'s reconciliation reads.
    delta.process_new_rows(
        spark, bronze, config.checkpoint(f"silver_{DATASET}"), f"silver_{DATASET}", handle
    )


def main(argv: list[str] | None = None) -> int:
    return silver_main(DATASET, run, argv)


if __name__ == "__main__":
    sys.exit(main())
