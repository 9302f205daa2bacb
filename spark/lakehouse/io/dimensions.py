"""Dimension tables: each distinct value (a user agent, an IP) classified once, kept in the warehouse.

`silver/dim_user_agents` and `silver/dim_ip_geo` hold one row per value and classifier
(the library version or database build that classified it). A batch looks its values
up there; only values not yet classified by the current classifier are classified (on
the executors) and appended. A new GeoIP build or user-agent library version makes every
value new again, so it is classified afresh, while the older rows stay for the record.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse.io import delta, staging


@dataclass(frozen=True)
class Dimension:
    """One dimension table: its location, key column, current classifier and classify function."""

    table: str
    key: str
    classifier: str
    classify: Callable[[DataFrame], DataFrame]  # distinct keys -> classified rows (with `classifier`)


def lookup(spark: SparkSession, dimension: Dimension, values: DataFrame, scratch: str) -> tuple[DataFrame, int]:
    """The dimension's rows for the distinct `values` (column `dimension.key`), and how many
    of them were classified now (new to this classifier).

    The result is staged under `scratch` (exact size on disk, so Spark broadcasts it when
    it is small and shuffles when it is not); nothing passes through the driver.
    """
    key = dimension.key
    current = F.col("classifier") == dimension.classifier
    values = values.select(key).where(F.col(key).isNotNull()).distinct()
    exists = delta.table_exists(spark, dimension.table)
    new = values.join(delta.read_table(spark, dimension.table).where(current).select(key), key, "left_anti") if exists else values
    new = staging.write(new, f"{scratch}/new")
    count = new.count()
    if count:
        delta.append(dimension.classify(new), dimension.table)
    elif not exists:  # no values at all and no table yet: the (empty) classification gives the columns
        return dimension.classify(new), 0
    # Two jobs classifying the same new value at once may both append it: one row per key.
    rows = delta.read_table(spark, dimension.table).where(current).join(values, key, "left_semi").dropDuplicates([key])
    return staging.write(rows, f"{scratch}/rows"), count
