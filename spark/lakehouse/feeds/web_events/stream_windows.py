"""The column logic of `lakehouse stream-windows` (jobs/stream_windows.py): the watermark
rules in epoch microseconds, late events per window, the processed-events messages.

Pure DataFrame -> DataFrame / Column functions, as the windows themselves
(feeds/web_events/windows.py); the job owns the stream, its state and its writes.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from lakehouse.feeds.web_events import windows as web_windows


def micros(ts: Column) -> Column:
    """A timestamp as epoch microseconds (the watermark's unit: no time-zone conversions)."""
    return F.unix_micros(ts)


def window_start_us(ts: Column) -> Column:
    """Start (epoch microseconds) of the UTC 5-minute window `[start, end)` of an event time,
    aligned as `transforms.web_windows` aligns them."""
    size = web_windows.WINDOW_SECONDS * 1_000_000
    return F.floor(micros(ts) / size).cast("bigint") * size


def window_end_us(ts: Column) -> Column:
    return window_start_us(ts) + F.lit(web_windows.WINDOW_SECONDS * 1_000_000)


def between_watermarks(us: Column, low: int | None, high: int | None) -> Column:
    """`low < us <= high` (no lower bound before the first watermark; nothing without `high`)."""
    if high is None:
        return F.lit(False)
    inside = us <= F.lit(high)
    return inside if low is None else inside & (us > F.lit(low))


def late_counts(late: DataFrame, updated_by: str) -> DataFrame:
    """Late events per (report_date, 5-minute window, host), tagged with the batch adding them."""
    start = F.timestamp_micros(window_start_us(F.col("event_ts")))
    return (
        late.groupBy(
            F.to_date(start).alias("report_date"),
            start.alias("window_start"),
            F.timestamp_micros(window_end_us(F.col("event_ts"))).alias("window_end"),
            "host",
        )
        .agg(F.count(F.lit(1)).alias("late_events"))
        .withColumn("updated_by", F.lit(updated_by))
        .withColumn("updated_at", F.current_timestamp())
    )


def processed_messages(events: DataFrame) -> DataFrame:
    """Kafka (key, value) of the processed-events topic: JSON per event, keyed by ip."""
    body = F.struct(
        "event_id",
        "ip",
        "host",
        "url",
        "referrer_host",
        F.date_format("event_ts", "yyyy-MM-dd'T'HH:mm:ss.SSSSSS'Z'").alias("event_time"),
        "country",
    )
    # Explicit nulls (a direct visit, an IP not located): every message has every field.
    return events.select(
        F.col("ip").alias("key"), F.to_json(body, {"ignoreNullFields": "false"}).alias("value")
    )
