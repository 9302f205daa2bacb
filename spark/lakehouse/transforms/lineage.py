"""Where rows went and how tables changed: quarantine over time, rows per layer, counts per
run, a Delta table's history and two of its versions side by side.

Pure functions of DataFrames (a table, its `DeltaTable.history()`, `_meta/job_runs`,
`_meta/silver_batches`): the data-quality-and-lineage notebook reads the tables and plots
what these return. Every result is small (a row per day and reason, table, run or version).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from lakehouse.transforms.records import require_columns

# The silver batch counts, in the order a line goes: read = skipped_blank + quarantined
# + duplicates + written.
BATCH_COUNTS = ("read", "skipped_blank", "quarantined", "duplicates", "written")


def quarantine_by_day(quarantine: DataFrame, dataset: str) -> DataFrame:
    """Quarantined rows of one dataset per UTC day quarantined and reason (the reason's text
    before the first colon; the rest names the value), by day, then most first."""
    require_columns(quarantine, ("reason", "quarantined_at"), f"quarantine/{dataset}")
    return (
        quarantine.groupBy(
            F.to_date("quarantined_at").alias("quarantine_date"),
            F.lit(dataset).alias("dataset"),
            F.substring_index("reason", ":", 1).alias("reason"),
        )
        .agg(F.count(F.lit(1)).alias("rows"))
        .orderBy("quarantine_date", F.desc("rows"), "reason")
    )


def layer_counts(tables: Mapping[str, DataFrame]) -> DataFrame:
    """Rows per table, one row per `"<layer>/<table>"` key of `tables`: layer, table, rows,
    in the order given (bronze, silver, quarantine, gold reads as the data flows)."""
    if not tables:
        raise ValueError("layer_counts: no tables given")
    counted = []
    for position, (name, df) in enumerate(tables.items()):
        layer, _, table = name.partition("/")
        if not table:
            raise ValueError(f"layer_counts: {name!r} is not '<layer>/<table>'")
        counted.append(
            df.agg(F.count(F.lit(1)).alias("rows")).select(
                F.lit(position).alias("_position"), F.lit(layer).alias("layer"), F.lit(table).alias("table"), "rows"
            )
        )
    return reduce(DataFrame.unionByName, counted).orderBy("_position").drop("_position")


def run_counts(job_runs: DataFrame) -> DataFrame:
    """One row per (run, count) of `_meta/job_runs`: run_id, job, started_at, seconds,
    status, count, value; oldest run first. A run that counted nothing has no rows."""
    require_columns(job_runs, ("run_id", "job", "started_at", "seconds", "counts"), "_meta/job_runs")
    status = F.col("status") if "status" in job_runs.columns else F.lit(None).cast("string")
    return (
        job_runs.select("run_id", "job", "started_at", "seconds", status.alias("status"), F.explode("counts").alias("count", "value"))
        .orderBy("started_at", "job", "count")
    )


def silver_batch_counts(silver_batches: DataFrame) -> DataFrame:
    """Per silver micro-batch of `_meta/silver_batches`, oldest first: dataset, recorded_at
    and where its lines went (read, skipped_blank, quarantined, duplicates, written)."""
    require_columns(silver_batches, ("dataset", "recorded_at", *BATCH_COUNTS), "_meta/silver_batches")
    return silver_batches.select("dataset", "recorded_at", *BATCH_COUNTS).orderBy("recorded_at", "dataset")


def _metric(name: str) -> Column:
    return F.col("operationMetrics").getItem(name).cast("long")


def history_summary(history: DataFrame) -> DataFrame:
    """A Delta table's history (`DeltaTable.history()`), newest version first: version,
    timestamp, operation, its mode and predicate (a `replaceWhere` overwrite names the dates it
    replaced), rows written, files added and files removed."""
    require_columns(history, ("version", "timestamp", "operation", "operationParameters", "operationMetrics"), "Delta history")
    parameters = F.col("operationParameters")
    return history.select(
        "version",
        "timestamp",
        "operation",
        parameters.getItem("mode").alias("mode"),
        parameters.getItem("predicate").alias("predicate"),
        _metric("numOutputRows").alias("rows_written"),
        F.coalesce(_metric("numFiles"), _metric("numAddedFiles")).alias("files_added"),
        _metric("numRemovedFiles").alias("files_removed"),
    ).orderBy(F.desc("version"))


def compare_versions(before: DataFrame, after: DataFrame, key: str, value: str) -> DataFrame:
    """`value` summed per `key` in two versions of one table: key, before, after, change
    (after - before); a key missing from one version counts 0 there. Ordered by key."""
    for name, df in (("before", before), ("after", after)):
        require_columns(df, (key, value), f"compare_versions {name}")

    def totals(df: DataFrame, alias: str) -> DataFrame:
        return df.groupBy(key).agg(F.sum(value).alias(alias))

    joined = totals(before, "before").join(totals(after, "after"), key, "full_outer")
    zero = F.lit(0).cast("long")
    return (
        joined.select(key, F.coalesce("before", zero).alias("before"), F.coalesce("after", zero).alias("after"))
        .withColumn("change", F.col("after") - F.col("before"))
        .orderBy(key)
    )
