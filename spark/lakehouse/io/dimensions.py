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
    # The version before this lookup's own append: what was stored before.
    version = delta.table_version(spark, dimension.table)
    known = None if version is None else delta.read_table(spark, dimension.table, version).where(current)
    new = values if known is None else values.join(known.select(key), key, "left_anti")
    classified = staging.write(dimension.classify(new), f"{scratch}/new")
    count = classified.count()
    if count:
        delta.append(classified, dimension.table)
    if known is None:
        return classified, count
    # Two jobs classifying the same new value at once may both have stored it: one row per
    # key of what was stored before (the values classified now are distinct already).
    seen = known.join(values, key, "left_semi").dropDuplicates([key])
    return staging.write(seen.unionByName(classified), f"{scratch}/rows"), count
