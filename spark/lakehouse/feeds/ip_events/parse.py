"""IP sightings (seed 000) -> typed silver rows, and the current geolocation of every IP.

A bronze record is one JSON object `{"ip", "received_at", "request_id"}`, as the IP
collector of `lakehouse serve` writes them (to Kafka or the landing folder). Anyone may
produce to the topic, so silver checks them again: `ip` must be an IPv4 or IPv6 address
(stored in `ipaddress`'s canonical form, so `2001:DB8::1` and `2001:db8::1` are one IP),
`received_at` an ISO-8601 time (UTC in silver). A sighting has no id of its own:
`event_id` is the sha-256 of the record's place, so a request that names an IP twice
is two hits and the same source ingested again adds nothing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.transforms.bronze import BRONZE_COLUMNS
from lakehouse.transforms.client_ip import NotAClientIp, client_ip
from lakehouse.transforms.records import (
    is_blank_line,
    normalized_line,
    out_of_range_reason,
    record_place,
    require_columns,
    with_event_date,
    with_message_checks,
)

KNOWN_FIELDS = ("ip", "received_at", "request_id")
# The widest request id the export's columns take; the collector's are 36-character UUIDs.
MAX_REQUEST_ID_LENGTH = 64

SILVER_COLUMNS = (
    "event_id", "event_ts", "event_date", "ip", "request_id", "country", "city", "latitude", "longitude",
    "source_file", "topic", "partition", "offset", "ingested_at",
)  # fmt: skip
GEO_COLUMNS = ("country", "city", "latitude", "longitude")
# What gold/ip_geolocation reads from silver.
GEOLOCATION_INPUTS = ("ip", "event_ts", "ingested_at", *GEO_COLUMNS)


def canonical_ip_text(value: str | None) -> tuple[str | None, str | None]:
    """(canonical IP, None), or (None, why `value` is no client IP).

    Like the collector's check (`api.ingest.canonical_ip`), stricter than `ipaddress`:
    no surrounding whitespace and no IPv6 zone id (`fe80::1%eth0` names an interface of
    one machine, not a visitor); IPv4-mapped IPv6 is its IPv4 address, and addresses no
    client has are refused (`transforms.client_ip`)."""
    if value is None:
        return None, None
    not_an_ip = f"not an IPv4 or IPv6 address: {value[:100]}"
    if value != value.strip() or "%" in value:
        return None, not_an_ip
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None, not_an_ip
    try:
        return client_ip(address), None
    except NotAClientIp as error:
        return None, error.reason


def canonical_ips(texts: Iterator[pd.Series]) -> Iterator[pd.DataFrame]:
    for batch in texts:
        pairs = [canonical_ip_text(v) if isinstance(v, str) else (None, None) for v in batch]
        yield pd.DataFrame(pairs, columns=["ip", "problem"], index=batch.index)


# Spark has no IP type or parser; the standard library's is exact for both families (a
# regular expression for IPv6 with its `::` and embedded IPv4 forms is not worth owning).
_CHECKED_IP = T.StructType([T.StructField("ip", T.StringType()), T.StructField("problem", T.StringType())])
_canonical_ip = F.pandas_udf(canonical_ips, _CHECKED_IP)  # type: ignore[call-overload]


def _json_type(doc: Column, name: str) -> Column:
    return F.schema_of_variant(F.try_variant_get(doc, f"$.{name}", "variant"))


def parse_ip_events(df: DataFrame) -> DataFrame:
    """The record's fields as text, the JSON validity flags and the JSON type of `ip`."""
    as_map = F.from_json(F.col("line"), T.MapType(T.StringType(), T.StringType()))
    parsed = (
        df.withColumn("line", normalized_line(F.col("value")))
        .withColumn("is_blank", is_blank_line(F.col("line")))
        .withColumn("_json", F.try_parse_json(F.col("line")))
        .withColumn("is_json", F.col("_json").isNotNull())
        .withColumn("_map", F.when(F.col("is_json"), as_map))
        .withColumn("is_object", F.col("_map").isNotNull())
    )
    return parsed.select(
        "*",
        *[F.col("_map").getItem(name).alias(f"_{name}") for name in KNOWN_FIELDS],
        _json_type(F.col("_json"), "ip").alias("_ip_type"),
    ).drop("_json", "_map")


def type_ip_events(df: DataFrame, min_event_date: str, max_future_hours: int) -> DataFrame:
    """Typed columns (`event_id`, `ip`, `event_ts`, `request_id`) plus `reason` (null when valid)."""
    received = F.when(F.trim(F.col("_received_at")) != "", F.col("_received_at"))
    typed = (
        df.withColumns(
            {
                "event_id": F.sha2(record_place(df), 256),
                "_checked_ip": _canonical_ip(F.col("_ip")),
                "event_ts": F.try_to_timestamp(received),
                "request_id": F.col("_request_id"),
            }
        )
        .transform(with_event_date)
        .withColumn("ip", F.col("_checked_ip.ip"))
    )
    ip_type = F.col("_ip_type")
    reason = (
        F.when(F.col("is_blank"), F.lit(None))
        .when(~F.col("is_json"), F.lit("invalid JSON"))
        .when(~F.col("is_object"), F.lit("JSON is not an object"))
        .when(ip_type.isNotNull() & (ip_type != "VOID") & (ip_type != "STRING"),
              F.concat(F.lit("invalid ip: not a string but "), F.lower(ip_type)))  # fmt: skip
        .when(F.col("_ip").isNull() | (F.trim(F.col("_ip")) == ""), F.lit("missing ip"))
        .when(F.col("ip").isNull(), F.concat(F.lit("invalid ip: "), F.col("_checked_ip.problem")))
        .when(received.isNull(), F.lit("missing received_at"))
        .when(F.col("event_ts").isNull(), F.concat(F.lit("unparseable received_at: "), F.col("_received_at").substr(1, 100)))
        .when(
            F.length("request_id") > MAX_REQUEST_ID_LENGTH,
            F.lit(f"request_id longer than {MAX_REQUEST_ID_LENGTH} characters"),
        )
        .otherwise(out_of_range_reason(F.col("event_ts"), F.col("ingested_at"), min_event_date, max_future_hours))
    )
    return typed.withColumn("reason", reason).drop("_checked_ip")


def ip_event_rows(df: DataFrame, min_event_date: str, max_future_hours: int) -> DataFrame:
    """Bronze rows -> parsed, typed rows with `reason` and `is_blank` (the whole silver parse)."""
    require_columns(df, BRONZE_COLUMNS, "bronze IP-event rows")
    return (
        df.transform(parse_ip_events)
        .transform(lambda d: type_ip_events(d, min_event_date, max_future_hours))
        .transform(with_message_checks)
    )


def ip_geolocation(sightings: DataFrame, refreshed_at: Column) -> DataFrame:
    """One row per IP of `sightings` (silver rows: give all of an IP's rows, or its figures
    are partial): where it is (from its latest sighting: the GeoIP database may have been
    updated since the first), first and last time seen, and hits; `refreshed_at` as given.
    """
    require_columns(sightings, GEOLOCATION_INPUTS, "silver/ip_events rows for gold/ip_geolocation")
    # Latest by event time, then by ingestion (a tie on both: any; they were located alike).
    latest = F.struct(F.col("event_ts"), F.col("ingested_at"), *[F.col(c) for c in GEO_COLUMNS])
    return (
        sightings.groupBy("ip")
        .agg(
            F.max(latest).alias("_latest"),
            F.min("event_ts").alias("first_seen"),
            F.max("event_ts").alias("last_seen"),
            F.count(F.lit(1)).alias("hits"),
        )
        .select("ip", *[F.col(f"_latest.{c}").alias(c) for c in GEO_COLUMNS], "first_seen", "last_seen", "hits",
                refreshed_at.cast("timestamp").alias("refreshed_at"))  # fmt: skip
    )
