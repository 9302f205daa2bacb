"""What every bronze record goes through on its way to silver, whatever its dataset.

Its place (identity), its line normalised, the checks that hold for any message, time
range checks, the quarantine shape, the batch's facts; and `require_columns`, the
contract check each transform makes at its door.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

SOURCE_COLUMNS = ("topic", "partition", "offset", "kafka_ts", "source_file", "source_file_id", "source_line", "ingested_at")

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


# The one length rule of values that name a gold row (and so a PostgreSQL key): longer ones
# are quarantined in silver with the reason, never cut (two long values cut alike would be
# merged) and never left to fail an export. A DNS host name has at most 255 characters.
MAX_HOST_LENGTH = 255
MAX_ENDPOINT_LENGTH = 2048
MAX_ID_LENGTH = 255
# A full URL that names a gold row (product views' referrer_url) is bounded in UTF-8 bytes,
# not characters: PostgreSQL indexes at most ~2700 bytes per key, which 2048 characters of
# a non-ASCII URL could exceed; 2048 bytes fit the key and a VARCHAR(2048) alike.
MAX_URL_BYTES = 2048
# Descriptive labels derived from a value (a user agent's browser and OS family) are cut to
# this instead: the row is genuine whatever its agent says.
MAX_LABEL_LENGTH = 512


def too_long_reason(value: Column, limit: int, what: str) -> Column:
    """`<what> longer than <limit> characters` when `value` is, else null."""
    return F.when(F.length(value) > limit, F.lit(f"{what} longer than {limit} characters"))


def too_many_bytes_reason(value: Column, limit: int, what: str) -> Column:
    """`<what> longer than <limit> bytes` when `value` is longer in UTF-8, else null."""
    return F.when(F.octet_length(value) > limit, F.lit(f"{what} longer than {limit} bytes"))


DIRECT_REFERRER = "(direct)"  # the referrer host of a hit without one, in every feed's gold


def url_host(url: Column) -> Column:
    """The lower-cased host of a URL (a missing scheme read as http://); null when `url` is
    null, blank or not a URL. Shared by product views' `referrer_url` and access logs' referrer."""
    url = F.when(F.trim(url) != "", url)
    with_scheme = F.when(url.contains("://"), url).otherwise(F.concat(F.lit("http://"), url))
    return F.lower(F.try_parse_url(with_scheme, F.lit("HOST")))


def require_columns(df: DataFrame, required: tuple[str, ...] | list[str], what: str) -> None:
    """Fail, naming them, when `df` lacks any of the `required` columns (a layer's input contract)."""
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ValueError(f"{what} must have the columns {missing}; it has {sorted(df.columns)}")


def with_message_checks(df: DataFrame) -> DataFrame:
    """Reasons that hold for any Kafka message, whatever the dataset, before parsing reasons.

    An empty (or null) Kafka value is a record that carries nothing: quarantined as
    "empty message" (a blank *line* of a file stays a counted skip). A value that was not
    valid UTF-8 (bronze kept its bytes in `raw_value`) is quarantined with those bytes.
    """
    topic, raw = F.col("topic"), F.col("raw_value")
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
    require_columns(df, ("source_file_id", "source_line", "topic", "partition", "offset", "line"), "a record")
    return F.coalesce(
        F.concat(F.lit("file:"), F.col("source_file_id"), F.lit(":"), F.col("source_line").cast("string")),
        F.concat(
            F.lit("kafka:"), F.col("topic"), F.lit(":"), F.col("partition").cast("string"), F.lit(":"), F.col("offset").cast("string")
        ),
        F.concat(F.lit("line:"), F.col("line")),
    )


def to_quarantine(df: DataFrame, quarantined_at: Column) -> DataFrame:
    """Rows with a `reason` -> the quarantine table's columns (`quarantined_at`: the job's clock)."""
    require_columns(df, QUARANTINE_COLUMNS[:-1], "rows to quarantine")
    return df.filter(F.col("reason").isNotNull()).select(
        *QUARANTINE_COLUMNS[:-1], quarantined_at.cast("timestamp").alias("quarantined_at")
    )


# What `batch_facts` counts: rows per kind, and distinct values of a column.
ROW_KINDS = ("valid", "quarantined", "skipped_blank", "flagged")
DISTINCT = "distinct"


def batch_facts(rows: DataFrame, lookups: tuple[str, ...]) -> DataFrame:
    """(fact, column, value, count): rows per kind (`ROW_KINDS`; valid ones per event_date in
    `value`), and the distinct values of each `lookups` column among valid rows (fact
    `DISTINCT`, the column's name in `column`).

    One aggregation pass over the staged rows answers what the batch needs to know before
    its silver write (counts, dates, the values to build dimensions for); its result is
    small: a row per kind and date, per distinct agent, per distinct IP. Rows flagged
    `needs_reparse` are counted apart (the reparse decides what they are).
    """
    flagged = F.col("needs_reparse") if "needs_reparse" in rows.columns else F.lit(False)
    kind = (
        F.when(flagged, "flagged")
        .when(F.col("is_blank"), "skipped_blank")
        .when(F.col("reason").isNotNull(), "quarantined")
        .otherwise("valid")
    )
    valid = F.col("_kind") == "valid"
    no_column = F.lit(None).cast("string")
    entries = F.array(
        F.struct(
            F.col("_kind").alias("fact"), no_column.alias("column"), F.when(valid, F.col("event_date").cast("string")).alias("value")
        ),
        *[F.struct(F.lit(DISTINCT).alias("fact"), F.lit(c).alias("column"), F.when(valid, F.col(c)).alias("value")) for c in lookups],
    )
    return (
        rows.select(kind.alias("_kind"), "event_date", *lookups)
        .select(F.inline(entries))
        .where((F.col("fact") != DISTINCT) | F.col("value").isNotNull())
        .groupBy("fact", "column", "value")
        .count()
    )
