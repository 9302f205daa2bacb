"""Bronze product-view JSON lines -> typed rows (silver) or quarantine reasons.

Accepts seed-004 events: `_id` (string or Mongo `{"$oid": ...}`) or `event_id`;
`timestamp` ISO-8601 with any offset or `time_stamp` epoch seconds. Fields we do not
model are kept, as a JSON object in `extra`.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.transforms.bronze import BRONZE_COLUMNS
from lakehouse.transforms.records import (
    MAX_HOST_LENGTH,
    MAX_ID_LENGTH,
    MAX_URL_BYTES,
    normalized_line,
    out_of_range_reason,
    record_place,
    require_columns,
    too_long_reason,
    too_many_bytes_reason,
    url_host,
    with_event_date,
    with_message_checks,
)

# Every known field is read as text and typed afterwards with try_* functions, so a
# number where a string was expected (or the reverse) never fails the whole batch.
KNOWN_FIELDS = (
    "_id", "event_id", "product_id", "device_id", "store_id", "referrer_url", "remote_ip",
    "user_agent", "timestamp", "time_stamp", "local_time", "collection",
)
# Ids that must be a JSON string or number: an object, array or boolean there is not an id
# (read as text, `{"a": 1}` would become a product called `{"a":1}`).
SCALAR_IDS = ("product_id", "device_id")
EVENT_SCHEMA = T.StructType([T.StructField(name, T.StringType()) for name in KNOWN_FIELDS])

SILVER_COLUMNS = (
    "event_id", "product_id", "device_id", "store_id", "referrer_url", "referrer_host",
    "remote_ip", "country", "event_ts", "event_date", "local_time", "ua_browser", "ua_os",
    "ua_device", "is_bot", "user_agent", "collection", "extra",
    "source_file", "topic", "partition", "offset", "ingested_at",
)


def _blank_to_null(col):
    return F.when(F.trim(col) != "", col)


def parse_product_views(df: DataFrame) -> DataFrame:
    """Add the event's fields, `extra` (unknown fields as JSON) and the JSON validity flags."""
    line = normalized_line(F.col("value"))
    as_map = F.from_json(line, T.MapType(T.StringType(), T.StringType()))
    known = F.array(*[F.lit(name) for name in KNOWN_FIELDS])
    extra = F.map_filter(as_map, lambda k, _v: ~F.array_contains(known, k))
    parsed = (
        df.withColumn("line", line)
        .withColumn("is_blank", F.coalesce(F.col("line").rlike(r"^\s*$"), F.lit(True)))
        .withColumn("_json", F.try_parse_json(F.col("line")))
        .withColumn("is_json", F.col("_json").isNotNull())
        .withColumn("is_object", as_map.isNotNull())
        .withColumn("event", F.from_json(F.col("line"), EVENT_SCHEMA))
        .withColumn("extra", F.when(F.size(extra) > 0, F.to_json(extra)))
    )
    return (
        parsed.select("*", *[F.col("event").getField(name).alias(name) for name in KNOWN_FIELDS])
        .withColumns({f"_{name}_type": _json_type(F.col("_json"), name) for name in SCALAR_IDS})
        .drop("event", "_json")
    )


def _json_type(doc, name: str):
    """The JSON type of top-level field `name` of the parsed document, as Spark names it (null when absent)."""
    return F.schema_of_variant(F.try_variant_get(doc, f"$.{name}", "variant"))


def _not_scalar(type_name):
    return type_name.startswith("OBJECT") | type_name.startswith("ARRAY") | (type_name == "BOOLEAN")


def with_event_time(df: DataFrame) -> DataFrame:
    """`event_ts` (UTC) from `timestamp` (ISO-8601, naive = UTC) or else `time_stamp` (epoch s)."""
    iso = F.try_to_timestamp(_blank_to_null(F.col("timestamp")))
    epoch = F.col("time_stamp").try_cast("double")
    from_epoch = F.when(epoch.isNotNull() & (F.abs(epoch) < 1e11), F.timestamp_seconds(epoch.cast("bigint")))
    return df.withColumn("event_ts", F.coalesce(iso, from_epoch)).transform(with_event_date)


def with_ids(df: DataFrame) -> DataFrame:
    """`event_id` from `_id` / `{"$oid"}` / `event_id`, else the sha-256 of the record's
    place in its source (two identical events without an id are two views)."""
    oid = F.get_json_object(F.col("_id"), "$['$oid']")
    return df.withColumn(
        "event_id",
        F.coalesce(oid, _blank_to_null(F.col("_id")), _blank_to_null(F.col("event_id")), F.sha2(record_place(df), 256)),
    ).withColumn("product_id", _blank_to_null(F.trim(F.col("product_id"))))


def with_referrer_host(df: DataFrame) -> DataFrame:
    """`referrer_host`: lower-cased host of `referrer_url`; null when empty or not a URL."""
    return df.withColumn("referrer_host", url_host(F.col("referrer_url")))


def type_product_views(df: DataFrame, min_event_date: str, max_future_hours: int) -> DataFrame:
    """Typed columns plus `reason` (null when the event is valid)."""
    typed = df.transform(with_ids).transform(with_event_time).transform(with_referrer_host)
    reason = (
        F.when(F.col("is_blank"), F.lit(None))
        .when(~F.col("is_json"), F.lit("invalid JSON"))
        .when(~F.col("is_object"), F.lit("JSON is not an object"))
        .when(_not_scalar(F.col("_product_id_type")), F.concat(F.lit("invalid product_id: not a string or number but "), F.lower("_product_id_type")))
        .when(F.col("product_id").isNull(), F.lit("missing product_id"))
        .when(F.length("product_id") > MAX_ID_LENGTH, too_long_reason(F.col("product_id"), MAX_ID_LENGTH, "product_id"))
        .when(F.length("referrer_host") > MAX_HOST_LENGTH,
              too_long_reason(F.col("referrer_host"), MAX_HOST_LENGTH, "referrer host"))
        # store_id and the full referrer_url name rows of gold too (store_views_daily,
        # referrer_url_views_daily): bounded like every key, quarantined, never cut.
        .when(F.length("store_id") > MAX_ID_LENGTH, too_long_reason(F.col("store_id"), MAX_ID_LENGTH, "store_id"))
        .when(F.octet_length("referrer_url") > MAX_URL_BYTES,
              too_many_bytes_reason(F.col("referrer_url"), MAX_URL_BYTES, "referrer_url"))
        .when(_not_scalar(F.col("_device_id_type")), F.concat(F.lit("invalid device_id: not a string or number but "), F.lower("_device_id_type")))
        .when(
            F.col("event_ts").isNull(),
            F.concat(
                F.lit("unparseable time: timestamp="),
                F.coalesce(F.col("timestamp"), F.lit("null")),
                F.lit(" time_stamp="),
                F.coalesce(F.col("time_stamp"), F.lit("null")),
            ),
        )
        .otherwise(out_of_range_reason(F.col("event_ts"), F.col("ingested_at"), min_event_date, max_future_hours))
    )
    return typed.withColumn("reason", reason)


def product_view_rows(df: DataFrame, min_event_date: str, max_future_hours: int) -> DataFrame:
    """Bronze rows -> parsed, typed rows with `reason` and `is_blank` (the whole silver parse)."""
    require_columns(df, BRONZE_COLUMNS, "bronze product-view rows")
    return (
        df.transform(parse_product_views)
        .transform(lambda d: type_product_views(d, min_event_date, max_future_hours))
        .transform(with_message_checks)
    )
