"""Summaries of the gold tables over a range of report dates, for people to read.

Pure functions of gold DataFrames: the `lakehouse report` job prints them or writes them
into its HTML page, the notebooks plot them. Every result is small (a row per day, endpoint,
product, country, agent family...): gold is aggregated already, silver is never read here.

Distinct counts do not add up across days: a visitor seen on two days is one visitor on
each. Summed over a range they are "visitor-days", and the columns say so.
"""

from __future__ import annotations

from datetime import date

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from lakehouse.transforms.records import require_columns


def in_range(df: DataFrame, start: date | None, end: date | None, column: str = "report_date") -> DataFrame:
    """The rows of `df` with start <= `column` <= end (None: open on that side)."""
    if start is not None:
        df = df.where(F.col(column) >= F.lit(start))
    if end is not None:
        df = df.where(F.col(column) <= F.lit(end))
    return df


def _share(part: Column, whole: Column) -> Column:
    return F.when(whole > 0, F.round(part / whole, 4))


def _error_rate() -> Column:
    return _share(F.col("status_4xx") + F.col("status_5xx"), F.col("requests"))


def traffic_by_day(traffic_daily: DataFrame) -> DataFrame:
    """Requests, visitors, bots, status classes, error rate and bytes per report date."""
    require_columns(traffic_daily, ("report_date", "requests", "bot_requests", "status_4xx", "status_5xx"), "gold/traffic_daily")
    return traffic_daily.select(
        "report_date", "requests", "unique_visitors", "unique_ips", "bot_requests",
        (F.col("requests") - F.col("bot_requests")).alias("human_requests"),
        "status_2xx", "status_3xx", "status_4xx", "status_5xx",
        _error_rate().alias("error_rate"), "bytes",
    ).orderBy("report_date")


def top_endpoints(endpoint_daily: DataFrame) -> DataFrame:
    """Requests, 4xx/5xx, error rate, bytes and latency per endpoint over the dates given,
    busiest first.

    Percentiles do not combine across days, so p50/p95/p99 are the worst daily value in the
    range: exact for one day, an upper bound of the daily figures otherwise.
    """
    require_columns(endpoint_daily, ("endpoint", "requests", "status_4xx", "status_5xx", "p95_ms"), "gold/endpoint_daily")
    return (
        endpoint_daily.groupBy("endpoint")
        .agg(
            F.sum("requests").alias("requests"),
            F.sum("status_4xx").alias("status_4xx"),
            F.sum("status_5xx").alias("status_5xx"),
            F.sum("bytes").alias("bytes"),
            F.max("p50_ms").alias("p50_ms"),
            F.max("p95_ms").alias("p95_ms"),
            F.max("p99_ms").alias("p99_ms"),
        )
        .select("endpoint", "requests", "status_4xx", "status_5xx", _error_rate().alias("error_rate"),
                "bytes", "p50_ms", "p95_ms", "p99_ms")
        .orderBy(F.desc("requests"), "endpoint")
    )


def error_rate_by_day(endpoint_daily: DataFrame) -> DataFrame:
    """Requests, the share of 4xx+5xx answers and the worst endpoint p95 per report date."""
    return (
        endpoint_daily.groupBy("report_date")
        .agg(
            F.sum("requests").alias("requests"),
            F.round((F.sum("status_4xx") + F.sum("status_5xx")) / F.sum("requests"), 4).alias("error_rate"),
            F.max("p95_ms").alias("max_p95_ms"),
        )
        .orderBy("report_date")
    )


def _requests_per(daily: DataFrame, key: str, table: str) -> DataFrame:
    require_columns(daily, (key, "requests", "unique_ips"), f"gold/{table}")
    return (
        daily.groupBy(key)
        .agg(F.sum("requests").alias("requests"), F.sum("unique_ips").alias("visitor_days"))
        .orderBy(F.desc("requests"), key)
    )


def top_referrers(request_referrer_daily: DataFrame) -> DataFrame:
    """Requests and IP-days per referrer host, most requests first (`(direct)`: none)."""
    return _requests_per(request_referrer_daily, "referrer_host", "request_referrer_daily")


def top_countries(request_country_daily: DataFrame) -> DataFrame:
    """Requests and IP-days per client country, most requests first."""
    return _requests_per(request_country_daily, "country", "request_country_daily")


def _with_share(df: DataFrame, key: str) -> DataFrame:
    # One window over all rows: `df` is an aggregate of a few dozen rows at most.
    total = F.sum("requests").over(Window.partitionBy())
    return df.withColumn("share", _share(F.col("requests"), total)).orderBy(F.desc("requests"), key)


AGENT_COLUMNS = ("browser", "os", "device")


def agent_share(agent_daily: DataFrame, column: str) -> DataFrame:
    """Requests and their share per browser, OS or device class, most first."""
    if column not in AGENT_COLUMNS:
        raise ValueError(f"agent_share: column must be one of {', '.join(AGENT_COLUMNS)}, not {column!r}")
    require_columns(agent_daily, (column, "requests"), "gold/agent_daily")
    return _with_share(agent_daily.groupBy(column).agg(F.sum("requests").alias("requests")), column)


def bots_vs_humans(agent_daily: DataFrame) -> DataFrame:
    """Requests and their share from bots and from humans (anything not known as a bot)."""
    require_columns(agent_daily, ("is_bot", "requests"), "gold/agent_daily")
    kind = F.when(F.col("is_bot"), F.lit("bots")).otherwise(F.lit("humans")).alias("kind")
    return _with_share(agent_daily.groupBy(kind).agg(F.sum("requests").alias("requests")), "kind")


def top_products(product_views_daily: DataFrame) -> DataFrame:
    """Views and visitor-days per product over the dates given, most viewed first.

    Unique visitors are distinct devices per day: summed over days they count visitor-days.
    """
    return (
        product_views_daily.groupBy("product_id")
        .agg(F.sum("view_count").alias("views"), F.sum("unique_visitors").alias("visitor_days"))
        .orderBy(F.desc("views"), "product_id")
    )


def quarantine_by_reason(quarantine: DataFrame, dataset: str) -> DataFrame:
    """Quarantined rows of one dataset per reason (its text before the first colon; the rest
    names the value), most first. Filter on `quarantine_date(...)` before calling for a range."""
    require_columns(quarantine, ("reason",), f"quarantine/{dataset}")
    return (
        quarantine.groupBy(F.lit(dataset).alias("dataset"), F.substring_index("reason", ":", 1).alias("reason"))
        .agg(F.count(F.lit(1)).alias("rows"))
        .orderBy(F.desc("rows"), "reason")
    )


def with_quarantine_date(quarantine: DataFrame) -> DataFrame:
    """`quarantine_date`: the UTC day a row was quarantined (what a date range filters on)."""
    return quarantine.withColumn("quarantine_date", F.to_date("quarantined_at"))
