"""Silver and quarantine rows from a parsed bronze batch: the pure core of the silver jobs.

`jobs/silver.py` reads (the bronze batch, parsed once into scratch Parquet; the
dimension rows of its user agents and IPs; the ids silver already holds), calls these,
and writes what they return.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from lakehouse.transforms import enrich
from lakehouse.transforms.dedupe import drop_rows, duplicate_rows, seen_rows
from lakehouse.transforms.records import require_columns, to_quarantine

# What every parsed batch holds besides its dataset's own columns.
PARSED_COLUMNS = ("_row", "is_blank", "reason", "event_id", "event_date")


def valid_rows(parsed: DataFrame) -> DataFrame:
    """Parsed rows that are neither blank nor rejected."""
    require_columns(parsed, PARSED_COLUMNS, "a parsed batch")
    return parsed.where(~F.col("is_blank") & F.col("reason").isNull())


def quarantine_rows(parsed: DataFrame, quarantined_at: Column) -> DataFrame:
    """The rejected rows of a parsed batch, in the quarantine table's shape."""
    require_columns(parsed, PARSED_COLUMNS, "a parsed batch")
    return to_quarantine(parsed, quarantined_at)


def new_silver_rows(
    parsed: DataFrame,
    agents: DataFrame | None,
    places: DataFrame,
    seen: DataFrame | None,
    *,
    ip_column: str,
    geo_columns: tuple[str, ...],
    winner_order: tuple[str, ...],
    silver_columns: tuple[str, ...],
    seen_by_date: bool,
) -> DataFrame:
    """The batch's new silver rows: valid, enriched from the dimension rows (`agents`, None
    for a dataset without user agents, and `places`), without the rows whose `event_id` repeats in the batch (all but the first by
    `winner_order`) or is among `seen` (the ids silver holds; matched with their date when
    `seen_by_date`)."""
    valid = valid_rows(parsed)
    keys = valid.select("_row", "event_date", "event_id", *winner_order)
    drop = duplicate_rows(keys, winner_order)
    if seen is not None:
        drop = drop.unionByName(seen_rows(keys, seen, by_date=seen_by_date))
    if agents is not None:
        valid = valid.transform(lambda d: enrich.with_user_agent(d, agents))
    enriched = valid.transform(lambda d: enrich.with_geo(d, places, ip_column, geo_columns))
    return drop_rows(enriched, drop).select(*silver_columns)
