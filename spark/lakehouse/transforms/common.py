"""Column helpers shared by the silver transforms: line normalisation, time checks, quarantine."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

SOURCE_COLUMNS = ("topic", "partition", "offset", "kafka_ts", "source_file", "source_file_id", "source_line", "ingested_at")

SOURCE_TYPES = dict(zip(SOURCE_COLUMNS, ("string", "int", "bigint", "timestamp", "string", "string", "bigint", "timestamp"), strict=True))

QUARANTINE_COLUMNS = ("value", "raw_value", "reason", *SOURCE_COLUMNS, "quarantined_at")


# What `$` in a Java regex may stand before at the end of the input.
_LINE_TERMINATORS = ("\r", "\n", "\u0085", "\u2028", "\u2029")


def normalized_line(value: Column) -> Column:
    """The raw line without trailing CR/LF (Windows line endings, a kept newline).

    Bytes that are not valid UTF-8 come out as U+FFFD (the line goes through a Java string).
    """
    # The regex (and its string round trip) only for lines it may change: valid UTF-8
    # that does not end with a line terminator comes out as it is.
    unchanged = F.is_valid_utf8(value)
    for terminator in _LINE_TERMINATORS:
        unchanged = unchanged & ~value.endswith(terminator)
    return F.when(unchanged, value).otherwise(F.regexp_replace(value, r"[\r\n]+$", ""))


_WHITESPACE = " \t\n\u000b\f\r"  # what \s matches in a Java regex


def is_blank_line(line: Column) -> Column:
    """True when `line` is empty or only whitespace; a null line counts as blank."""
    # Almost every line starts with a non-blank character: decide on that one character,
    # and only trim (a scan of the whole line) the others.
    first = F.substring(line, 1, 1)
    return (
        F.when(line.isNull(), F.lit(True))
        .when(first.isin(*_WHITESPACE) | (first == ""), F.length(F.trim(line, F.lit(_WHITESPACE))) == 0)
        .otherwise(F.lit(False))
    )


def out_of_range_reason(event_ts: Column, ingested_at: Column, min_event_date: str, max_future_hours: int) -> Column:
    """A quarantine reason when `event_ts` is before `min_event_date` or too far past ingestion."""
    too_early = event_ts < F.lit(min_event_date).cast("timestamp")
    # In microseconds: plain arithmetic rather than a per-row interval addition.
    too_late = F.unix_micros(event_ts) > F.unix_micros(ingested_at) + F.lit(max_future_hours * 3_600_000_000)
    # One timestamp-to-text conversion in the generated code, not one per case.
    return F.when(
        too_early | too_late,
        F.concat(
            F.when(too_early, F.lit(f"timestamp out of range: before {min_event_date}: ")).otherwise(
                F.lit(f"timestamp out of range: more than {max_future_hours}h after ingestion: ")
            ),
            event_ts.cast("string"),
        ),
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
    return (
        df.withColumn("_message_reason", message)
        .withColumns(
            {
                "reason": F.coalesce(F.col("_message_reason"), F.col("reason")),
                "is_blank": F.coalesce(F.col("is_blank"), F.lit(False)) & F.col("_message_reason").isNull(),
            }
        )
        .drop("_message_reason")
    )


def record_place(df: DataFrame) -> Column:
    """Where a bronze record was read, the identity of a record: `file:<file id>:<line>` or
    `kafka:<topic>:<partition>:<offset>` (`line:<text>` for rows of bronze tables written
    before records carried their place)."""
    file_id = _column_or_null(df, "source_file_id", "string")
    line = _column_or_null(df, "source_line", "bigint")
    topic = _column_or_null(df, "topic", "string")
    partition = _column_or_null(df, "partition", "int").cast("string")
    offset = _column_or_null(df, "offset", "bigint").cast("string")
    return F.coalesce(
        F.concat(F.lit("file:"), file_id, F.lit(":"), line.cast("string")),
        F.concat(F.lit("kafka:"), topic, F.lit(":"), partition, F.lit(":"), offset),
        F.concat(F.lit("line:"), F.col("line")),
    )


def to_quarantine(df: DataFrame) -> DataFrame:
    """Rows with a `reason` -> the quarantine table's columns."""
    return df.filter(F.col("reason").isNotNull()).select(
        "value",
        _column_or_null(df, "raw_value", "binary"),
        "reason",
        *[_column_or_null(df, c, t) for c, t in SOURCE_TYPES.items()],
        F.current_timestamp().alias("quarantined_at"),
    )


def batch_facts(rows: DataFrame, lookups: tuple[str, ...]) -> DataFrame:
    """(fact, value, count): rows per kind (valid ones per event_date), and the distinct
    values of the `lookups` columns among valid rows (fact `lookup:<column>`).

    One aggregation pass over the staged rows answers what the batch needs to know before
    its silver write (counts, dates, the values to build dimensions for); its result is
    small: a row per kind and date, per distinct agent, per distinct IP. Rows flagged
    `needs_fallback` are counted apart (the fallback decides what they are).
    """
    flagged = F.col("needs_fallback") if "needs_fallback" in rows.columns else F.lit(False)
    kind = (
        F.when(flagged, "flagged")
        .when(F.col("is_blank"), "skipped_blank")
        .when(F.col("reason").isNotNull(), "quarantined")
        .otherwise("valid")
    )
    valid = F.col("_kind") == "valid"
    entries = F.array(
        F.struct(F.col("_kind").alias("fact"), F.when(valid, F.col("event_date").cast("string")).alias("value")),
        *[F.struct(F.lit(f"lookup:{c}").alias("fact"), F.when(valid, F.col(c)).alias("value")) for c in lookups],
    )
    return (
        rows.select(kind.alias("_kind"), "event_date", *lookups)
        .select(F.inline(entries))
        .where(~F.col("fact").startswith("lookup:") | F.col("value").isNotNull())
        .groupBy("fact", "value")
        .count()
    )
