"""Scratch Parquet: a job's intermediate rows, written once, read by several actions, then removed.

Cheaper than `DataFrame.persist()` for wide rows (no in-memory columnar cache to build
or hold in the driver), and later reads only decode the columns they use.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession

from lakehouse.io.files import filesystem


def write(df: DataFrame, path: str) -> DataFrame:
    """Write `df` to `path` (replacing what is there) and return it read back."""
    # Written once and read back soon, locally: no dictionaries, no statistics
    # (both cost more to build than they save here).
    df.write.mode("overwrite").option("parquet.enable.dictionary", "false").option(
        "parquet.column.statistics.enabled", "false"
    ).parquet(path)
    return df.sparkSession.read.parquet(path)


def remove(spark: SparkSession, path: str) -> None:
    """Delete `path` and everything under it (no error when absent)."""
    fs, jpath = filesystem(spark, path)
    fs.delete(jpath, True)
