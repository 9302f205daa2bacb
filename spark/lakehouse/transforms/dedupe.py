"""Deduplication on `event_id`, within a batch and against what silver already holds."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F


def dedupe_events(df: DataFrame, order_by: tuple[str, ...] = ()) -> DataFrame:
    """One row per `event_id`; with `order_by`, the smallest row by those columns wins."""
    if not order_by:
        return df.dropDuplicates(["event_id"])
    columns = df.columns
    winner = F.min_by(F.struct(*columns), F.struct(*order_by))
    return df.groupBy("event_id").agg(winner.alias("_row")).select("_row.*").select(*columns)


def drop_seen_events(batch: DataFrame, seen: DataFrame) -> DataFrame:
    """Rows of `batch` whose (event_date, event_id) is not in `seen` (the silver table)."""
    keys = seen.select("event_date", "event_id")
    return batch.join(keys, ["event_date", "event_id"], "left_anti")
