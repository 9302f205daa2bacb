"""Product views over time: totals per day with their day-over-day change, per-product
changes, and totals per country or referrer.

Pure functions of the product gold tables (`product_views_daily`, `country_views_daily`,
`referrer_views_daily`); the product-analytics notebook plots what they return. A day is
compared with the calendar day before it, never with "the previous row": a day missing
from gold has no change rather than a change against an older day.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse.transforms.records import require_columns


def _day_before(df: DataFrame) -> DataFrame:
    return df.withColumn("report_date", F.date_add("report_date", 1))


def product_trend(product_views_daily: DataFrame) -> DataFrame:
    """Per report date: views, products viewed, and the change in views from the day before
    (absolute and as a fraction of that day's views; null when gold has no day before)."""
    require_columns(product_views_daily, ("report_date", "product_id", "view_count"), "gold/product_views_daily")
    daily = product_views_daily.groupBy("report_date").agg(
        F.sum("view_count").alias("views"), F.count_distinct("product_id").alias("products")
    )
    before = _day_before(daily.select("report_date", F.col("views").alias("views_before")))
    change = F.col("views") - F.col("views_before")
    return (
        daily.join(before, "report_date", "left")
        .select(
            "report_date", "views", "products",
            change.alias("views_change"),
            F.when(F.col("views_before") > 0, F.round(change / F.col("views_before"), 4)).alias("views_change_pct"),
        )
        .orderBy("report_date")
    )


def product_changes(product_views_daily: DataFrame) -> DataFrame:
    """Per report date whose day before is in gold too, and per product viewed on either day:
    views that day, views the day before (0 when none) and the change; biggest moves first."""
    require_columns(product_views_daily, ("report_date", "product_id", "view_count"), "gold/product_views_daily")
    views = product_views_daily.select("report_date", "product_id", F.col("view_count").alias("views"))
    dates = views.select("report_date").distinct()
    comparable = dates.join(_day_before(dates), "report_date", "left_semi")
    before = _day_before(views.withColumnRenamed("views", "views_before"))
    zero = F.lit(0).cast("long")
    return (
        views.join(before, ["report_date", "product_id"], "full_outer")
        .join(comparable, "report_date", "left_semi")
        .select(
            "report_date", "product_id",
            F.coalesce("views", zero).alias("views"),
            F.coalesce("views_before", zero).alias("views_before"),
        )
        .withColumn("change", F.col("views") - F.col("views_before"))
        .orderBy("report_date", F.desc(F.abs("change")), "product_id")
    )


def view_totals(daily: DataFrame, key: str) -> DataFrame:
    """Views and visitor-days per `key` (`country` of country_views_daily, `referrer_host` of
    referrer_views_daily) over all the dates given, most viewed first."""
    require_columns(daily, (key, "view_count", "unique_visitors"), f"gold views per {key}")
    return (
        daily.groupBy(key)
        .agg(F.sum("view_count").alias("views"), F.sum("unique_visitors").alias("visitor_days"))
        .orderBy(F.desc("views"), key)
    )
