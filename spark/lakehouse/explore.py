"""What the notebooks share: a session sized for small reads, the warehouse's tables by layer
and name (None, said aloud, while a table does not exist yet), and small results as pandas.

    from lakehouse.config import load_config
    from lakehouse.explore import Tables, small_session, summarize

    config = load_config()              # LAKEHOUSE_PROFILE / LAKEHOUSE_WAREHOUSE, as for the jobs
    spark = small_session(config, "notebook-traffic")
    tables = Tables(spark, config)
    by_day = summarize(tables.gold("traffic_daily"), report.traffic_by_day)

Aggregations live in `lakehouse.transforms` (report, trends, lineage); notebooks only read,
call them and plot.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
from pyspark.sql import DataFrame, SparkSession

from lakehouse.config import Config
from lakehouse.io import delta

# The layers in the order data flows through them.
LAYERS = ("bronze", "silver", "quarantine", "gold")
# Notebooks read gold (a few rows per day) and count tables: a couple of shuffle and Delta
# state partitions is plenty, and each kernel starts its own JVM on a small machine.
SMALL_READS = {
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "2",
    "spark.databricks.delta.snapshotPartitions": "2",
    "spark.sql.sources.parallelPartitionDiscovery.parallelism": "2",
}


def small_session(config: Config, app_name: str) -> SparkSession:
    """The project's session (`lakehouse.session.get_spark`) with SMALL_READS settings."""
    from lakehouse.session import get_spark

    return get_spark(config, app_name=app_name, extra_conf=SMALL_READS)


class Tables:
    """The warehouse's Delta tables, located through the config (`config.table_path`)."""

    def __init__(self, spark: SparkSession, config: Config) -> None:
        self.spark = spark
        self.config = config

    def path(self, layer: str, name: str) -> str:
        return self.config.table_path(layer, name)

    def exists(self, layer: str, name: str) -> bool:
        return delta.table_exists(self.spark, self.path(layer, name))

    def get(self, layer: str, name: str, version: int | None = None) -> DataFrame | None:
        """`<layer>/<name>` (at `version` when given), or None, with a note, when it does not exist."""
        if not self.exists(layer, name):
            print(f"no data: {layer}/{name} does not exist yet in {self.config.warehouse}")
            return None
        return delta.read_table(self.spark, self.path(layer, name), version)

    def gold(self, name: str, version: int | None = None) -> DataFrame | None:
        return self.get("gold", name, version)

    def present(self, layers: tuple[str, ...] = LAYERS) -> dict[str, DataFrame]:
        """Every Delta table of `layers` that exists, as `{"<layer>/<table>": DataFrame}`, in
        the order of the layers, then by name."""
        found = {}
        for layer in layers:
            folder = self.path(layer, "_").rsplit("/", 1)[0]
            for path in delta.tables_under(self.spark, folder):
                found[f"{layer}/{path.rstrip('/').rsplit('/', 1)[-1]}"] = delta.read_table(self.spark, path)
        return found

    def history(self, layer: str, name: str) -> DataFrame | None:
        """The table's Delta history (newest first), or None when it does not exist."""
        if not self.exists(layer, name):
            print(f"no data: {layer}/{name} does not exist yet in {self.config.warehouse}")
            return None
        return delta.history(self.spark, self.path(layer, name))


def summarize(
    df: DataFrame | None, summary: Callable[..., DataFrame], *args, limit: int | None = None
) -> pd.DataFrame:
    """`summary(df, *args)` collected as pandas (its first `limit` rows); an empty frame when
    `df` is None (a table not there yet), which the charts draw as "no data"."""
    if df is None:
        return pd.DataFrame()
    result = summary(df, *args)
    return to_pandas(result.limit(limit) if limit is not None else result)


def to_pandas(df: DataFrame | None) -> pd.DataFrame:
    """A small DataFrame as pandas (an empty frame for None). Callers pass summaries of gold
    (a row per day, table, run or top-N value), never rows whose number grows with the input."""
    return pd.DataFrame() if df is None else df.toPandas()
