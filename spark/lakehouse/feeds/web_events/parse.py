"""Bronze web-event JSON lines (seed 002) -> typed rows (silver) or quarantine reasons.

An event is a JSON object with `ip`, `host`, `url`, `referrer` (optional: absent, empty
or `-` means a direct visit), `user_agent` and `event_time` (ISO-8601 with any offset
or `Z`; naive means UTC). Events carry no id of their own: `event_id` is the sha-256 of
the record's place in its source, so two identical lines are two hits and the same
source ingested again adds nothing. Fields we do not model are kept, as a JSON object
in `extra`.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.transforms.bronze import BRONZE_COLUMNS
from lakehouse.transforms.records import (
    is_blank_line,
    normalized_line,
    out_of_range_reason,
    record_place,
    require_columns,
    url_host,
    with_event_date,
    with_message_checks,
)

KNOWN_FIELDS = ("ip", "host", "url", "referrer", "user_agent", "event_time")
# Fields that must be JSON strings: a number, object or array there is not an address,
# a host name or a time (read as text, `{"a": 1}` would become a host called `{"a":1}`).
STRING_FIELDS = ("ip", "host", "event_time")
# The widest values the export's columns take (conf/sql/gold_tables.sql: ip VARCHAR(64),
# host and referrer_host VARCHAR(255)): longer ones are quarantined here, so an export
# never fails on them.
MAX_IP_LENGTH = 64
MAX_HOST_LENGTH = 255

SILVER_COLUMNS = (
    "event_id", "event_ts", "event_date", "ip", "host", "url", "path", "referrer", "referrer_host",
    "country", "region", "city", "user_agent", "ua_browser", "ua_os", "ua_device", "is_bot", "extra",
    "source_file", "topic", "partition", "offset", "ingested_at",
)  # fmt: skip


def _blank_to_null(col: Column) -> Column:
    return F.when(F.trim(col) != "", col)


def _json_type(doc: Column, name: str) -> Column:
    """The JSON type of top-level field `name` of the parsed document, as Spark names it
    (`STRING`, `BIGINT`, `OBJECT<...>`, `VOID` for null; null when absent)."""
    return F.schema_of_variant(F.try_variant_get(doc, f"$.{name}", "variant"))


def parse_web_events(df: DataFrame) -> DataFrame:
    """Add the event's fields (as text), `extra` (unknown fields as JSON), the JSON validity
    flags and the JSON type of the fields that must be strings."""
    line = normalized_line(F.col("value"))
    as_map = F.from_json(F.col("line"), T.MapType(T.StringType(), T.StringType()))
    known = F.array(*[F.lit(name) for name in KNOWN_FIELDS])
    extra = F.map_filter(F.col("_map"), lambda k, _v: ~F.array_contains(known, k))
    parsed = (
        df.withColumn("line", line)
        .withColumn("is_blank", is_blank_line(F.col("line")))
        # Strict JSON (the map parse alone accepts single quotes and the like).
        .withColumn("_json", F.try_parse_json(F.col("line")))
        .withColumn("is_json", F.col("_json").isNotNull())
        .withColumn("_map", F.when(F.col("is_json"), as_map))
        .withColumn("is_object", F.col("_map").isNotNull())
        .withColumn("extra", F.when(F.size(extra) > 0, F.to_json(extra)))
    )
    return (
        parsed.select(
            "*", *[F.col("_map").getItem(name).alias(f"_{name}") for name in KNOWN_FIELDS]
        )
        .withColumns({f"_{name}_type": _json_type(F.col("_json"), name) for name in STRING_FIELDS})
        .drop("_json", "_map")
    )


def with_event_time(df: DataFrame) -> DataFrame:
    """`event_ts` (UTC) from `event_time` (ISO-8601 with an offset or `Z`; naive = UTC)."""
    return df.withColumn(
        "event_ts", F.try_to_timestamp(_blank_to_null(F.col("_event_time")))
    ).transform(with_event_date)


def url_path(url: Column) -> Column:
    """The path of `url` (a full URL or a bare path), without query string or fragment;
    `/` for a URL with a host and no path, null for a null or blank `url`."""
    url = _blank_to_null(url)
    path = F.regexp_extract(url, r"^(?:[A-Za-z][A-Za-z0-9+.\-]*://[^/?#]*)?([^?#]*)", 1)
    return F.when(url.isNotNull(), F.when(path != "", path).otherwise(F.lit("/")))


def with_web_fields(df: DataFrame) -> DataFrame:
    """`event_id` (sha-256 of the record's place), `ip`, `host` (lower-cased), `url`, `path`,
    `referrer` (null for a direct visit: absent, blank or `-`), `referrer_host`, `user_agent`."""
    referrer = F.trim(F.col("_referrer"))
    direct = F.col("_referrer").isNull() | (referrer == "") | (referrer == "-")
    return df.withColumns(
        {
            "event_id": F.sha2(record_place(df), 256),
            "ip": _blank_to_null(F.trim(F.col("_ip"))),
            "host": _blank_to_null(F.lower(F.trim(F.col("_host")))),
            "url": F.col("_url"),
            "path": url_path(F.col("_url")),
            "referrer": F.when(~direct, F.col("_referrer")),
            "user_agent": F.col("_user_agent"),
        }
    ).withColumn("referrer_host", url_host(F.col("referrer")))


def _not_a_string(name: str) -> Column:
    kind = F.col(f"_{name}_type")
    return kind.isNotNull() & (kind != "VOID") & (kind != "STRING")


def _invalid(name: str) -> Column:
    return F.concat(F.lit(f"invalid {name}: not a string but "), F.lower(F.col(f"_{name}_type")))


def type_web_events(df: DataFrame, min_event_date: str, max_future_hours: int) -> DataFrame:
    """Typed columns plus `reason` (null when the event is valid)."""
    typed = df.transform(with_web_fields).transform(with_event_time)
    reason = (
        F.when(F.col("is_blank"), F.lit(None))
        .when(~F.col("is_json"), F.lit("invalid JSON"))
        .when(~F.col("is_object"), F.lit("JSON is not an object"))
        .when(_not_a_string("host"), _invalid("host"))
        .when(F.col("host").isNull(), F.lit("missing host"))
        .when(
            F.length("host") > MAX_HOST_LENGTH,
            F.lit(f"host longer than {MAX_HOST_LENGTH} characters"),
        )
        .when(_not_a_string("ip"), _invalid("ip"))
        .when(F.col("ip").isNull(), F.lit("missing ip"))
        .when(F.length("ip") > MAX_IP_LENGTH, F.lit(f"ip longer than {MAX_IP_LENGTH} characters"))
        .when(
            F.length("referrer_host") > MAX_HOST_LENGTH,
            F.lit(f"referrer host longer than {MAX_HOST_LENGTH} characters"),
        )
        .when(_not_a_string("event_time"), _invalid("event_time"))
        .when(_blank_to_null(F.col("_event_time")).isNull(), F.lit("missing event_time"))
        .when(
            F.col("event_ts").isNull(),
            F.concat(F.lit("unparseable event_time: "), F.col("_event_time")),
        )
        .otherwise(
            out_of_range_reason(
                F.col("event_ts"), F.col("ingested_at"), min_event_date, max_future_hours
            )
        )
    )
    return typed.withColumn("reason", reason)


def web_event_rows(df: DataFrame, min_event_date: str, max_future_hours: int) -> DataFrame:
    """Bronze rows -> parsed, typed rows with `reason` and `is_blank` (the whole silver parse)."""
    require_columns(df, BRONZE_COLUMNS, "bronze web-event rows")
    return (
        df.transform(parse_web_events)
        .transform(lambda d: type_web_events(d, min_event_date, max_future_hours))
        .transform(with_message_checks)
    )
