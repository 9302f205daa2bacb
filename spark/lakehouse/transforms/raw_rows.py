"""Silver rows as the opt-in raw SQL tables hold them (`export.raw_rows`, docs/raw-rows.md)."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse.transforms.records import require_columns


def raw_rows(silver: DataFrame, columns: tuple[tuple[str, str], ...], dates: list[str]) -> DataFrame:
    """The silver rows of `dates` (ISO event dates), one for one, with each (SQL column,
    silver column) of `columns` renamed; lineage and other silver columns left out."""
    require_columns(silver, [source for _name, source in columns], "silver rows for a raw SQL table")
    return silver.where(F.col("event_date").isin(dates)).select(*[F.col(source).alias(name) for name, source in columns])
