"""User-agent and GeoIP enrichment, computed once per *distinct* value and joined back.

A 100k-line log holds a few hundred distinct agents and a few thousand distinct IPs:
classifying those in Python (user-agents, maxminddb) and broadcasting the small result
is two orders of magnitude cheaper than a per-row UDF.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

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
        T.StructField("city", T.StringType()),
        T.StructField("latitude", T.DoubleType()),
        T.StructField("longitude", T.DoubleType()),
    ]
)


def default_geoip_database() -> str:
    """Path of the GeoLite2-City.mmdb that the maxminddb-geolite2 package ships (2018)."""
    # The package installs its data as the `_maxminddb_geolite2` folder (no __init__).
    import geolite2

    return str(Path(geolite2.__file__).parent / "_maxminddb_geolite2" / "GeoLite2-City.mmdb")


def classify_user_agent(agent: str) -> tuple[str | None, str | None, str, bool]:
    """(browser, os, device class, is_bot) of one user-agent string, via `user-agents`."""
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
    return ua.browser.family, ua.os.family, device, bool(ua.is_bot)


def _classify_batches(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    for batch in batches:
        rows = [(agent, *classify_user_agent(agent)) for agent in batch["user_agent"]]
        yield pd.DataFrame(rows, columns=UA_SCHEMA.fieldNames())


def user_agent_dimension(df: DataFrame, column: str = "user_agent") -> DataFrame:
    """One row per distinct non-null agent in `df[column]` with its classification."""
    agents = df.select(F.col(column).alias("user_agent")).where(F.col("user_agent").isNotNull()).distinct()
    return agents.mapInPandas(_classify_batches, UA_SCHEMA)


def geo_lookup_batches(database: str | None):
    """A mapInPandas function looking up batches of IPs in a MaxMind City database."""

    def lookup(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        import maxminddb

        reader = maxminddb.open_database(database or default_geoip_database())
        try:
            for batch in batches:
                rows = []
                for ip in batch["ip"]:
                    try:
                        rec = reader.get(ip)
                    except ValueError:  # not an IP address (e.g. a host name from %h)
                        rec = None
                    rec = rec or {}
                    country = rec.get("country") or rec.get("registered_country") or {}
                    location = rec.get("location") or {}
                    rows.append(
                        (
                            ip,
                            country.get("iso_code"),
                            (country.get("names") or {}).get("en"),
                            ((rec.get("city") or {}).get("names") or {}).get("en"),
                            location.get("latitude"),
                            location.get("longitude"),
                        )
                    )
                yield pd.DataFrame(rows, columns=GEO_SCHEMA.fieldNames())
        finally:
            reader.close()

    return lookup


def ip_geo_dimension(df: DataFrame, column: str, database: str | None) -> DataFrame:
    """One row per distinct non-null IP in `df[column]` with country, city and coordinates."""
    ips = df.select(F.col(column).alias("ip")).where(F.col("ip").isNotNull()).distinct()
    return ips.mapInPandas(geo_lookup_batches(database), GEO_SCHEMA)


def with_user_agent(df: DataFrame, dimension: DataFrame, column: str = "user_agent") -> DataFrame:
    """Join the user-agent dimension onto `df` (broadcast: it is small)."""
    dim = dimension.withColumnRenamed("user_agent", "_ua_key")
    return df.join(F.broadcast(dim), df[column] == dim["_ua_key"], "left").drop("_ua_key")


def with_geo(df: DataFrame, dimension: DataFrame, column: str, keep: tuple[str, ...]) -> DataFrame:
    """Join the GeoIP dimension's `keep` columns onto `df` by `df[column]`."""
    dim = dimension.select(F.col("ip").alias("_geo_key"), *keep)
    return df.join(F.broadcast(dim), df[column] == dim["_geo_key"], "left").drop("_geo_key")
