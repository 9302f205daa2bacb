"""User-agent and GeoIP enrichment, computed once per *distinct* value, on the executors.

A 100k-line log holds a few hundred distinct agents; a busy site's log may hold a
distinct IP on most lines. Either way the values are classified where the data is
(`mapInPandas` on the executors: `user-agents` for agents, `maxminddb` for IPs) and
joined back to the rows; nothing whose size grows with the data goes through the
driver. The classified values are kept in dimension tables (`io.dimensions`), so each
value is classified once, not once per batch.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Iterator
from importlib import metadata

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import types as T

from lakehouse.transforms.records import MAX_LABEL_LENGTH

UA_SCHEMA = T.StructType(
    [
        T.StructField("user_agent", T.StringType()),
        T.StructField("ua_browser", T.StringType()),
        T.StructField("ua_os", T.StringType()),
        T.StructField("ua_device", T.StringType()),
        T.StructField("is_bot", T.BooleanType()),
    ]
)

GEO_SCHEMA = T.StructType(
    [
        T.StructField("ip", T.StringType()),
        T.StructField("country", T.StringType()),
        T.StructField("country_name", T.StringType()),
        T.StructField("region", T.StringType()),
        T.StructField("city", T.StringType()),
        T.StructField("latitude", T.DoubleType()),
        T.StructField("longitude", T.DoubleType()),
    ]
)

# What each dimension table holds beyond its schema: which classifier produced the row.
CLASSIFIER_FIELD = T.StructField("classifier", T.StringType())


def user_agent_classifier() -> str:
    """The library versions that classify agents: a change means agents are classified again."""
    return f"user-agents {metadata.version('user-agents')}, ua-parser {metadata.version('ua-parser')}"


def _label(family: str | None) -> str | None:
    """A family name cut to MAX_LABEL_LENGTH (a hostile agent can make its family anything)."""
    return family[:MAX_LABEL_LENGTH] if family is not None else None


def classify_user_agent(agent: str) -> tuple[str | None, str | None, str, bool]:
    """(browser, os, device class, is_bot) of one user-agent string, via `user-agents`;
    the family names cut to MAX_LABEL_LENGTH characters."""
    from user_agents import parse

    ua = parse(agent)
    if ua.is_bot:
        device = "bot"
    elif ua.is_tablet:
        device = "tablet"
    elif ua.is_mobile:
        device = "mobile"
    elif ua.is_pc:
        device = "desktop"
    else:
        device = "other"
    return _label(ua.browser.family), _label(ua.os.family), device, bool(ua.is_bot)


def user_agent_rows(agents: Iterable[str | None]) -> pd.DataFrame:
    """The user-agent dimension's rows (UA_SCHEMA) for the distinct non-null `agents`."""
    distinct = sorted({a for a in agents if a is not None})
    return pd.DataFrame([(a, *classify_user_agent(a)) for a in distinct], columns=UA_SCHEMA.fieldNames())


def _geo_values(rec: dict | None) -> tuple:
    """GEO_SCHEMA's values after the IP, from a MaxMind City record (nulls when unknown)."""
    rec = rec or {}
    country = rec.get("country") or rec.get("registered_country") or {}
    location = rec.get("location") or {}
    regions = rec.get("subdivisions") or [{}]
    return (
        country.get("iso_code"),
        (country.get("names") or {}).get("en"),
        (regions[0].get("names") or {}).get("en"),
        ((rec.get("city") or {}).get("names") or {}).get("en"),
        location.get("latitude"),
        location.get("longitude"),
    )


def geo_rows(ips: Iterable[str | None], reader) -> pd.DataFrame:
    """The GeoIP dimension's rows (GEO_SCHEMA) for the distinct non-null `ips`.

    In address order, so that an IP inside the network of the previous lookup takes its
    answer without decoding the database record again (decoding is most of a lookup).
    """
    keyed = []
    for ip in {i for i in ips if i is not None}:
        try:
            packed = socket.inet_pton(socket.AF_INET6 if ":" in ip else socket.AF_INET, ip)
        except OSError:  # not an IP address (e.g. a host name from %h)
            packed = b""
        keyed.append((packed, ip))
    keyed.sort()
    rows = []
    network: tuple[int, int, int] | None = None  # (address length, first, last) of the last lookup
    answer: tuple = ()
    for packed, ip in keyed:
        if not packed:
            rows.append((ip, *_geo_values(None)))
            continue
        number = int.from_bytes(packed, "big")
        if network is None or network[0] != len(packed) or not network[1] <= number <= network[2]:
            record, prefix = reader.get_with_prefix_len(ip)
            answer = _geo_values(record)
            host_bits = len(packed) * 8 - prefix
            first = number >> host_bits << host_bits
            network = (len(packed), first, first | ((1 << host_bits) - 1))
        rows.append((ip, *answer))
    columns = list(zip(*rows, strict=True)) or [()] * len(GEO_SCHEMA)
    return pd.DataFrame(dict(zip(GEO_SCHEMA.fieldNames(), columns, strict=True)))


def _with_classifier(schema: T.StructType) -> T.StructType:
    return T.StructType([*schema.fields, CLASSIFIER_FIELD])


def classify_user_agents(agents: DataFrame, classifier: str) -> DataFrame:
    """Distinct agents (column `user_agent`) -> UA_SCHEMA rows + `classifier`, on the executors."""

    def classify(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            yield user_agent_rows(batch["user_agent"]).assign(classifier=classifier)

    return agents.select("user_agent").mapInPandas(classify, _with_classifier(UA_SCHEMA))


def locate_ips(ips: DataFrame, open_reader, classifier: str) -> DataFrame:
    """Distinct IPs (column `ip`) -> GEO_SCHEMA rows + `classifier`, on the executors.

    `open_reader()` runs on the executor and returns an open MaxMind reader (for the
    database file Spark shipped there: `io.geoip`); it must be picklable.
    """

    def locate(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        reader = open_reader()
        for batch in batches:
            yield geo_rows(batch["ip"], reader).assign(classifier=classifier)

    return ips.select("ip").mapInPandas(locate, _with_classifier(GEO_SCHEMA))


def with_user_agent(df: DataFrame, dimension: DataFrame, column: str = "user_agent") -> DataFrame:
    """Join the user-agent dimension's classification onto `df` by `df[column]`."""
    dim = dimension.select(UA_SCHEMA.fieldNames()).withColumnRenamed("user_agent", "_ua_key")
    return df.join(dim, df[column] == dim["_ua_key"], "left").drop("_ua_key")


def with_geo(df: DataFrame, dimension: DataFrame, column: str, keep: tuple[str, ...]) -> DataFrame:
    """Join the GeoIP dimension's `keep` columns onto `df` by `df[column]`."""
    dim = dimension.select(dimension["ip"].alias("_geo_key"), *keep)
    return df.join(dim, df[column] == dim["_geo_key"], "left").drop("_geo_key")
