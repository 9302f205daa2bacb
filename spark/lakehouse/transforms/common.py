"""Column helpers shared by the silver transforms: line normalisation, time checks, quarantine."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

SOURCE_COLUMNS = ("topic", "partition", "offset", "kafka_ts", "source_file", "ingested_at")

QUARANTINE_COLUMNS = ("value", "raw_value", "reason", *SOURCE_COLUMNS, "quarantined_at")


def normalized_line(value: Column) -> Column:
    """The raw line without trailing CR/LF (Windows line endings, a kept newline)."""
    return F.regexp_replace(value, r"[\r\n]+$", "")


def out_of_range_reason(event_ts: Column, ingested_at: Column, min_event_date: str, max_future_hours: int) -> Column:
    """A quarantine reason when `event_ts` is before `min_event_date` or too far past ingestion."""
    latest = ingested_at + F.make_interval(hours=F.lit(max_future_hours))
    return (
        F.when(
            event_ts < F.lit(min_event_date).cast("timestamp"),
            F.concat(F.lit(f"timestamp out of range: before {min_event_date}: "), event_ts.cast("string")),
        ).when(
            event_ts > latest,
            F.concat(F.lit(f"timestamp out of range: more than {max_future_hours}h after ingestion: "), event_ts.cast("string")),
        )
    )


def with_event_date(df: DataFrame) -> DataFrame:
    """`event_date`: the UTC calendar date of `event_ts` (sessions run in UTC)."""
    return df.withColumn("event_date", F.to_date(F.col("event_ts")))


def _column_or_null(df: DataFrame, name: str, type_name: str) -> Column:
    return F.col(name) if name in df.columns else F.lit(None).cast(type_name).alias(name)


def with_message_checks(df: DataFrame) -> DataFrame:
    """Reasons that hold for any Kafka message, whatever the dataset, before parsing reasons.

    An empty (or null) Kafka value is a record that carries nothing: quarantined as
    "empty message" (a blank *line* of a file stays a counted skip). A value that was not
    valid UTF-8 (bronze kept its bytes in `raw_value`) is quarantined with those bytes.
    """
    topic = _column_or_null(df, "topic", "string")
    raw = _column_or_null(df, "raw_value", "binary")
    message = (
        F.when(topic.isNotNull() & (F.col("value").isNull() | (F.col("value") == "")), F.lit("empty message"))
        .when(raw.isNotNull(), F.lit("not valid UTF-8 (the exact bytes are kept in raw_value)"))
    )
    return df.withColumn("reason", F.coalesce(message, F.col("reason"))).withColumn(
        "is_blank", F.coalesce(F.col("is_blank"), F.lit(False)) & message.isNull()
    )


def to_quarantine(df: DataFrame) -> DataFrame:
    """Rows with a `reason` -> the quarantine table's columns."""
    return df.filter(F.col("reason").isNotNull()).select(
        "value",
        _column_or_null(df, "raw_value", "binary"),
        *QUARANTINE_COLUMNS[2:-1],
        F.current_timestamp().alias("quarantined_at"),
    )
