"""User-agent and GeoIP enrichment, computed once per *distinct* value and joined back.

A 100k-line log holds a few hundred distinct agents and a few thousand distinct IPs:
classifying those in Python (user-agents, maxminddb) and broadcasting the small result
is two orders of magnitude cheaper than a per-row UDF. The silver jobs get a batch's
distinct values from one aggregation over its staged rows (`transforms.common.batch_facts`)
and pass them here.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
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


def user_agent_rows(agents: Iterable[str | None]) -> pd.DataFrame:
    """The user-agent dimension's rows (UA_SCHEMA) for the distinct non-null `agents`."""
    distinct = sorted({a for a in agents if a is not None})
    return pd.DataFrame([(a, *classify_user_agent(a)) for a in distinct], columns=UA_SCHEMA.fieldNames())


def geo_rows(ips: Iterable[str | None], database: str | None) -> pd.DataFrame:
    """The GeoIP dimension's rows (GEO_SCHEMA) for the distinct non-null `ips`, from a MaxMind City db."""
    import maxminddb

    rows = []
    with maxminddb.open_database(database or default_geoip_database()) as reader:
        for ip in sorted({i for i in ips if i is not None}):
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
    return pd.DataFrame(rows, columns=GEO_SCHEMA.fieldNames())


def _dimension(spark: SparkSession, rows: pd.DataFrame, schema: T.StructType) -> DataFrame:
    # From pandas (Arrow), not from a list of tuples: tens of thousands of IPs are common.
    if rows.empty:
        return spark.createDataFrame([], schema)
    return spark.createDataFrame(rows, schema)


def user_agent_dimension(spark: SparkSession, agents: Iterable[str | None]) -> DataFrame:
    """One row per distinct agent with its classification, classified here in the driver.

    The caller passes the distinct agents of its batch (a few hundred in a typical log,
    from `batch_facts`), so no Python worker pass over the rows is needed.
    """
    return _dimension(spark, user_agent_rows(agents), UA_SCHEMA)


def ip_geo_dimension(spark: SparkSession, ips: Iterable[str | None], database: str | None) -> DataFrame:
    """One row per distinct IP with country, city and coordinates (looked up in the driver)."""
    return _dimension(spark, geo_rows(ips, database), GEO_SCHEMA)


def with_user_agent(df: DataFrame, dimension: DataFrame, column: str = "user_agent") -> DataFrame:
    """Join the user-agent dimension onto `df` (broadcast: it is small)."""
    dim = dimension.withColumnRenamed("user_agent", "_ua_key")
    return df.join(F.broadcast(dim), df[column] == dim["_ua_key"], "left").drop("_ua_key")


def with_geo(df: DataFrame, dimension: DataFrame, column: str, keep: tuple[str, ...]) -> DataFrame:
    """Join the GeoIP dimension's `keep` columns onto `df` by `df[column]`."""
    dim = dimension.select(F.col("ip").alias("_geo_key"), *keep)
    return df.join(F.broadcast(dim), df[column] == dim["_geo_key"], "left").drop("_geo_key")


def with_dimensions(
    rows: DataFrame, values: dict[str, set[str]], ip_column: str, geo_columns: tuple[str, ...], database: str | None
) -> DataFrame:
    """`rows` + user-agent classification and the GeoIP `geo_columns` of `rows[ip_column]`.

    `values` holds the batch's distinct `user_agent` and `ip_column` values: the dimensions
    are built for those alone and broadcast-joined.
    """
    spark = rows.sparkSession
    agents = user_agent_dimension(spark, values["user_agent"])
    places = ip_geo_dimension(spark, values[ip_column], database)
    return with_geo(with_user_agent(rows, agents), places, ip_column, geo_columns)
