"""Summaries of the gold tables over all their report dates, for people to read.

Pure functions of gold DataFrames: the `lakehouse report` job prints them, the notebooks
plot them. Every result is small (a row per product, endpoint or day).
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F


def top_products(product_views_daily: DataFrame) -> DataFrame:
    """Views and visitor-days per product over all dates, most viewed first.

    Unique visitors are distinct devices per day: summed over days they count visitor-days.
    """
    return (
        product_views_daily.groupBy("product_id")
        .agg(F.sum("view_count").alias("views"), F.sum("unique_visitors").alias("visitor_days"))
        .orderBy(F.desc("views"), "product_id")
    )


def top_endpoints(endpoint_daily: DataFrame) -> DataFrame:
    """Requests, 5xx errors and bytes per endpoint over all dates, busiest first."""
    return (
        endpoint_daily.groupBy("endpoint")
        .agg(F.sum("requests").alias("requests"), F.sum("status_5xx").alias("errors_5xx"), F.sum("bytes").alias("bytes"))
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
