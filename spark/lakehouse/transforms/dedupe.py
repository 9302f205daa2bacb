"""Deduplication on `event_id`, within a batch and against what silver already holds.

Rows carry a batch-unique `_row` id. Both functions return the `_row`s to drop, computed
on narrow key columns only, so the wide rows are never shuffled: the caller removes
them with a broadcast anti-join (the set is usually empty or small).
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F


def duplicate_rows(keys: DataFrame, order_by: tuple[str, ...] = ()) -> DataFrame:
    """`_row` of every row but the first of its `event_id` (smallest by `order_by`, then `_row`)."""
    # The shuffle that finds repeats moves one long per row, not the 64-char ids; only
    # the (few) rows whose hash repeats are then compared on the ids themselves.
    hashed = keys.withColumn("_hash", F.xxhash64("event_id"))
    repeated = hashed.groupBy("_hash").count().where(F.col("count") > 1).select("_hash")
    candidates = hashed.join(F.broadcast(repeated), "_hash", "left_semi")
    first = Window.partitionBy("event_id").orderBy(*order_by, "_row")
    return candidates.withColumn("_rank", F.row_number().over(first)).where(F.col("_rank") > 1).select("_row")


def seen_rows(keys: DataFrame, seen: DataFrame, by_date: bool = True) -> DataFrame:
    """`_row` of the rows whose `event_id` is already in `seen` (the silver table).

    `by_date`: match on (event_date, event_id), for ids that always come with the same
    date (the caller then reads only those dates of silver); else on the id alone.
    """
    on = ["event_date", "event_id"] if by_date else ["event_id"]
    return keys.join(seen.select(*on), on, "left_semi").select("_row")


def drop_rows(df: DataFrame, rows: DataFrame) -> DataFrame:
    """`df` without the rows whose `_row` is in `rows` (a small set: broadcast)."""
    return df.join(F.broadcast(rows), "_row", "left_anti")
