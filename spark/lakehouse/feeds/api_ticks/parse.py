"""API ticks (seed 003): raw polled responses -> typed ticks, and their daily summary.

A bronze record holds one response of the polled endpoint: one JSON object or a list of
them (a Binance 24h ticker by default). Silver has one row per tick, so a record is
exploded into its entries first; an entry is what every count of the silver job is in
(a record that is blank, not JSON or an empty list is one entry). Where the symbol,
price and time live in an object is given as dotted paths (`TickFields`).
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.transforms.bronze import BRONZE_COLUMNS
from lakehouse.transforms.dedupe import drop_rows, duplicate_rows, seen_rows
from lakehouse.transforms.records import (
    is_blank_line,
    normalized_line,
    out_of_range_reason,
    require_columns,
    with_event_date,
    with_message_checks,
)

# The longest symbol gold exports (`symbol VARCHAR(64)` in conf/sql/gold_tables.sql).
MAX_SYMBOL_LENGTH = 64
# A numeric time at or above this is epoch milliseconds, below it epoch seconds: 1e11
# seconds is the year 5138, 1e11 ms is March 1973. Binance's `closeTime` is milliseconds.
EPOCH_MS_FROM = 1e11
# Larger numbers are no epoch time in ms (year ~33658): unparseable rather than an overflow.
EPOCH_MS_UNTIL = 1e15

SILVER_COLUMNS = (
    "event_id",
    "symbol",
    "price",
    "event_time",
    "event_ts",
    "event_date",
    "source",
    "tick_index",
    "source_file",
    "source_file_id",
    "source_line",
    "topic",
    "partition",
    "offset",
    "ingested_at",
)
# Among copies of one tick in a batch, the first ingested wins, then the first in source
# order; a copy arriving in a later batch loses to the one silver holds.
WINNER_ORDER = (
    "ingested_at",
    "source_file_id",
    "source_line",
    "topic",
    "partition",
    "offset",
    "tick_index",
)


@dataclass(frozen=True)
class TickFields:
    """Dotted paths of a tick's symbol, price and time inside one JSON object (`poll.*_field`)."""

    symbol: str = "symbol"
    price: str = "lastPrice"
    time: str = "closeTime"


def json_path(dotted: str) -> str:
    """`a.b` -> `$['a']['b']`: a variant path that also takes keys with odd characters."""
    parts = [p for p in dotted.split(".") if p]
    if not parts:
        raise ValueError(f"empty field path {dotted!r}")
    return "$" + "".join("['" + p.replace("'", "\\'") + "']" for p in parts)


def _field(entry: Column, dotted: str, as_type: str = "string") -> Column:
    return F.try_variant_get(entry, json_path(dotted), as_type)


def _html_title(line: Column) -> Column:
    title = F.trim(F.regexp_extract(line, r"(?is)<title[^>]*>(.*?)</title>", 1))
    return F.when(
        title != "", F.concat(F.lit(' "'), F.substring(title, 1, 100), F.lit('"'))
    ).otherwise(F.lit(""))


def response_entries(df: DataFrame) -> DataFrame:
    """One row per entry of each bronze record: `tick_index` (0-based), `list_size` (null when
    the response is not a list), `entry_text` (the entry's JSON text) and `entry` (parsed),
    with the record-level `is_blank` and `reason`; a record that is blank, not JSON, not an
    object or list, or an empty list is one entry (its reason says which)."""
    require_columns(df, ("value", "raw_value", "topic"), "bronze API-tick rows")
    line = F.col("line")
    doc = F.col("_doc")
    elements = F.col("_elements")
    reason = (
        F.when(F.col("is_blank"), F.lit(None))
        .when(
            doc.isNull() & F.trim(line).startswith("<"),
            F.concat(F.lit("not JSON: an HTML page"), _html_title(line)),
        )
        .when(doc.isNull(), F.lit("invalid JSON"))
        .when(F.col("_is_list") & elements.isNull(), F.lit("invalid JSON"))
        .when(
            F.col("_is_list") & (F.size(elements) == 0), F.lit("empty response: a list of no ticks")
        )
        .when(
            ~F.col("_is_list") & ~F.schema_of_variant(doc).startswith("OBJECT"),
            F.lit("JSON is not an object or a list of objects"),
        )
    )
    records = (
        df.withColumn("line", normalized_line(F.col("value")))
        .withColumn("is_blank", is_blank_line(line))
        .withColumn("_doc", F.try_parse_json(line))
        .withColumn(
            "_is_list", F.coalesce(F.schema_of_variant(doc).startswith("ARRAY"), F.lit(False))
        )
        # The JSON text of each element (a nested value read as a string field: compact,
        # keys in the API's order), so quarantine shows the entry as the API wrote it.
        .withColumn(
            "_elements", F.when(F.col("_is_list"), F.from_json(line, T.ArrayType(T.StringType())))
        )
        .withColumn("reason", reason)
        .transform(with_message_checks)
    )
    good = F.col("reason").isNull() & ~F.col("is_blank")
    texts = F.when(good & F.col("_is_list"), elements).otherwise(F.array(line))
    return (
        records.withColumn("list_size", F.when(good & F.col("_is_list"), F.size(elements)))
        .withColumn("_good", good)
        .select("*", F.posexplode(texts).alias("tick_index", "entry_text"))
        .withColumn("entry", F.when(F.col("_good"), F.try_parse_json(F.col("entry_text"))))
        .drop("_doc", "_is_list", "_elements", "_good")
    )


def with_tick_fields(df: DataFrame, fields: TickFields) -> DataFrame:
    """`symbol`, `price` (double) and `event_ts` (UTC) of each entry, with the raw texts."""
    entry = F.col("entry")
    time_text = _field(entry, fields.time)
    number = time_text.try_cast("double")
    millis = F.when(F.abs(number) >= EPOCH_MS_FROM, number).otherwise(number * 1000)
    from_number = F.when(
        F.abs(millis) < EPOCH_MS_UNTIL, F.timestamp_micros((millis * 1000).try_cast("bigint"))
    )
    # Naive ISO text is read as UTC (the session time zone).
    from_text = F.when(number.isNull(), F.try_to_timestamp(time_text))
    return df.withColumns(
        {
            "_symbol_type": F.schema_of_variant(_field(entry, fields.symbol, "variant")),
            "symbol": F.trim(_field(entry, fields.symbol)),
            "_price_text": _field(entry, fields.price),
            "_time_text": time_text,
            "event_ts": F.coalesce(from_number, from_text),
        }
    ).withColumn("price", F.col("_price_text").try_cast("double"))


def _tick_reason(fields: TickFields, min_event_date: str, max_future_hours: int) -> Column:
    entry = F.col("entry")
    price, symbol = F.col("price"), F.col("symbol")
    error_code = _field(entry, "code")
    error_msg = F.coalesce(_field(entry, "msg"), _field(entry, "message"), F.lit(""))
    where = F.when(
        F.col("list_size").isNotNull(),
        F.concat(
            F.lit(" (tick "),
            (F.col("tick_index") + 1).cast("string"),
            F.lit(" of "),
            F.col("list_size").cast("string"),
            F.lit(")"),
        ),
    ).otherwise(F.lit(""))
    reason = (
        # A list element that is no JSON object (a string element's text is not JSON either).
        F.when(
            entry.isNull() | ~F.schema_of_variant(entry).startswith("OBJECT"),
            F.lit("tick is not an object"),
        )
        .when(
            F.col("_symbol_type").isNull() & error_code.isNotNull(),
            F.concat(F.lit("API error "), error_code, F.lit(": "), error_msg),
        )
        .when(
            F.col("_symbol_type").isNotNull() & (F.col("_symbol_type") != "STRING"),
            F.concat(
                F.lit(f"invalid symbol ({fields.symbol}): not a string but "),
                F.lower(F.col("_symbol_type")),
            ),
        )
        .when(F.coalesce(symbol, F.lit("")) == "", F.lit(f"missing symbol ({fields.symbol})"))
        .when(
            F.length(symbol) > MAX_SYMBOL_LENGTH,
            F.lit(f"symbol longer than {MAX_SYMBOL_LENGTH} characters"),
        )
        .when(F.col("_time_text").isNull(), F.lit(f"missing time ({fields.time})"))
        .when(
            F.col("event_ts").isNull(),
            F.concat(F.lit(f"unparseable time: {fields.time}="), F.col("_time_text")),
        )
        .when(F.col("_price_text").isNull(), F.lit(f"missing price ({fields.price})"))
        .when(
            price.isNull() | F.isnan(price) | (F.abs(price) == float("inf")),
            F.concat(F.lit(f"non-numeric price: {fields.price}="), F.col("_price_text")),
        )
        .when(price < 0, F.concat(F.lit(f"negative price: {fields.price}="), F.col("_price_text")))
        .otherwise(
            out_of_range_reason(
                F.col("event_ts"), F.col("ingested_at"), min_event_date, max_future_hours
            )
        )
    )
    return F.when(reason.isNotNull(), F.concat(reason, where))


def with_event_id(df: DataFrame) -> DataFrame:
    """`event_id`: SHA-256 of symbol and time (in µs), so the same tick always gets the same id,
    whatever the form its time came in (ms number, text, ISO)."""
    key = F.concat_ws("|", F.col("symbol"), F.unix_micros(F.col("event_ts")).cast("string"))
    return df.withColumn(
        "event_id",
        F.when(F.col("event_ts").isNotNull() & F.col("symbol").isNotNull(), F.sha2(key, 256)),
    )


def with_source(df: DataFrame) -> DataFrame:
    """`source`: where the response came from, `kafka:<topic>` or `file:<path>`."""
    return df.withColumn(
        "source",
        F.coalesce(
            F.concat(F.lit("kafka:"), F.col("topic")),
            F.concat(F.lit("file:"), F.col("source_file")),
        ),
    )


def api_tick_rows(
    df: DataFrame, fields: TickFields, min_event_date: str, max_future_hours: int
) -> DataFrame:
    """Bronze rows -> one row per tick with `reason` and `is_blank` (the whole silver parse).

    Quarantined entries of a list carry the entry's own text as `value` (the record's place
    and `tick_index` lead back to the whole response); other rows keep the record's.
    """
    require_columns(df, BRONZE_COLUMNS, "bronze API-tick rows")
    entries = response_entries(df).transform(lambda d: with_tick_fields(d, fields))
    record_reason = F.col("reason")
    tick_reason = F.when(
        ~F.col("is_blank") & record_reason.isNull(),
        _tick_reason(fields, min_event_date, max_future_hours),
    )
    return (
        entries.withColumn("reason", F.coalesce(record_reason, tick_reason))
        .withColumn(
            "value",
            F.when(F.col("list_size").isNotNull(), F.col("entry_text")).otherwise(F.col("value")),
        )
        .withColumn("event_time", F.col("event_ts"))
        .transform(with_event_date)
        .transform(with_event_id)
        .transform(with_source)
        .drop("entry", "line")
    )


def new_ticks(parsed: DataFrame, seen: DataFrame | None) -> DataFrame:
    """The valid ticks of a parsed batch that are new: all but the first (`WINNER_ORDER`) of
    ticks repeating in the batch, none that `seen` (silver: event_date, event_id) holds.

    An id is made of the tick's time, so it always comes with the same `event_date`: the
    caller reads only the batch's dates of silver for `seen`.
    """
    require_columns(
        parsed,
        ("_row", "is_blank", "reason", "event_id", "event_date", *WINNER_ORDER),
        "a parsed API-tick batch",
    )
    valid = parsed.where(~F.col("is_blank") & F.col("reason").isNull())
    keys = valid.select("_row", "event_date", "event_id", *WINNER_ORDER)
    drop = duplicate_rows(keys, WINNER_ORDER)
    if seen is not None:
        drop = drop.unionByName(seen_rows(keys, seen, by_date=True))
    return drop_rows(valid, drop).select(*SILVER_COLUMNS)


def api_daily_summary(ticks: DataFrame) -> DataFrame:
    """Average, lowest and highest price and the tick count per (UTC report_date, symbol)."""
    require_columns(ticks, ("event_date", "symbol", "price"), "silver API ticks")
    price = F.col("price").cast("double")
    return ticks.groupBy(F.col("event_date").alias("report_date"), "symbol").agg(
        F.avg(price).alias("avg_price"),
        F.min(price).alias("min_price"),
        F.max(price).alias("max_price"),
        F.count(F.lit(1)).alias("n_records"),
    )
