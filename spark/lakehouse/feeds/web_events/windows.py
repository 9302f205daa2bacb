"""Web events (seed 002) in 5-minute windows and per-visitor sessions: pure functions of silver rows.

Windows are tumbling and UTC, `[window_start, window_end)`: an event exactly on a 5-minute
mark opens the next window. A session is the events of one (ip, host) each less than
`gap_seconds` after the previous one (Flink's session windows with that gap). Every row's
`report_date` is the UTC date of its window or session start, so a session crossing
midnight belongs to the day it started. All of it is Spark SQL (window functions, no
Python); nothing is collected but `session_extents`, which is a few rows per day.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import date, timedelta

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from lakehouse.transforms.records import DIRECT_REFERRER, require_columns

WINDOW_SECONDS = 300
DAY_SECONDS = 86_400
_MICROS = 1_000_000


def _window_start(ts: Column) -> Column:
    size = WINDOW_SECONDS * _MICROS
    # Integer microseconds: an event at 10:04:59.999999 is in [10:00, 10:05), one at 10:05 is not.
    return F.timestamp_micros(F.floor(F.unix_micros(ts) / size).cast("bigint") * size)


def _windows(events: DataFrame) -> DataFrame:
    require_columns(events, ("event_ts", "ip", "host"), "web events for 5-minute windows")
    start = _window_start(F.col("event_ts"))
    return events.withColumn("window_start", start).withColumns(
        {
            "window_end": F.col("window_start") + F.expr(f"INTERVAL {WINDOW_SECONDS} SECONDS"),
            "report_date": F.to_date(F.col("window_start")),
        }
    )


def traffic_5min(events: DataFrame) -> DataFrame:
    """Hits and distinct IPs per (5-minute UTC window, host)."""
    return (
        _windows(events)
        .groupBy("report_date", "window_start", "window_end", "host")
        .agg(F.count(F.lit(1)).alias("hits"), F.count_distinct("ip").alias("unique_ips"))
        .select("report_date", "window_start", "window_end", "host", "hits", "unique_ips")
    )


def traffic_5min_referrer(events: DataFrame) -> DataFrame:
    """Hits per (5-minute UTC window, host, referrer host); no referrer is `(direct)`."""
    require_columns(events, ("referrer_host",), "web events for 5-minute referrer windows")
    return (
        _windows(events)
        .withColumn("referrer_host", F.coalesce(F.col("referrer_host"), F.lit(DIRECT_REFERRER)))
        .groupBy("report_date", "window_start", "window_end", "host", "referrer_host")
        .agg(F.count(F.lit(1)).alias("hits"))
        .select("report_date", "window_start", "window_end", "host", "referrer_host", "hits")
    )


def sessions(events: DataFrame, gap_seconds: int) -> DataFrame:
    """Sessions per (ip, host): events less than `gap_seconds` apart share one; start/end are
    the first and last event times, `duration_s` the seconds between them."""
    if gap_seconds <= 0:
        raise ValueError(f"the session gap must be a positive number of seconds, not {gap_seconds}")
    require_columns(events, ("event_ts", "ip", "host"), "web events for sessions")
    visitor = Window.partitionBy("ip", "host").orderBy("event_ts")
    micros = F.unix_micros(F.col("event_ts"))
    previous = F.lag(micros).over(visitor)
    # Exactly `gap` apart is not "less than gap": a new session.
    opens = F.when(previous.isNull() | (micros - previous >= gap_seconds * _MICROS), 1).otherwise(0)
    # A running count of session openings numbers the sessions of each visitor. Rows,
    # not range: events at the same instant are in one session whatever their order.
    so_far = visitor.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    numbered = (
        events.select("ip", "host", "event_ts")
        .withColumn("_opens", opens)
        .withColumn("_session", F.sum("_opens").over(so_far))
    )
    start, end = F.col("session_start"), F.col("session_end")
    return (
        numbered.groupBy("ip", "host", "_session")
        .agg(
            F.min("event_ts").alias("session_start"),
            F.max("event_ts").alias("session_end"),
            F.count(F.lit(1)).alias("hits"),
        )
        .select(
            F.to_date(start).alias("report_date"),
            "ip",
            "host",
            "session_start",
            "session_end",
            "hits",
            ((F.unix_micros(end) - F.unix_micros(start)) / F.lit(float(_MICROS))).alias(
                "duration_s"
            ),
        )
    )


def _date_array(days: Iterable[date]) -> Column:
    return F.array(*[F.lit(d) for d in sorted(days)]).cast("array<date>")


def session_extents(
    events: DataFrame,
    gap_seconds: int,
    touched: Iterable[date],
    rewrite: Iterable[date],
    read: Iterable[date],
) -> DataFrame:
    """What the gold job needs to know to rewrite sessions for some dates: for the sessions
    of `events` (the silver rows of the `read` dates) that span a `touched` date or start in
    a `rewrite` date, their (start_date, end_date, spans_touched, cut_before, cut_after, sessions).

    `cut_before` / `cut_after`: an event of an unread date could lie less than the gap before
    the session's start / after its end, so the session may really start earlier / end
    later. Small: a row per distinct combination, whatever the data's size.
    """
    touched_days, rewrite_days, read_days = (
        _date_array(touched),
        _date_array(rewrite),
        _date_array(read),
    )
    gap = F.expr(f"INTERVAL {int(gap_seconds)} SECONDS")
    start, end = F.col("session_start"), F.col("session_end")
    start_date, end_date = F.to_date(start), F.to_date(end)

    def unread(first: Column, last: Column) -> Column:
        return F.size(F.array_except(F.sequence(first, last), read_days)) > 0

    spans_touched = F.size(F.array_intersect(F.sequence(start_date, end_date), touched_days)) > 0
    return (
        sessions(events, gap_seconds)
        .select(
            start_date.alias("start_date"),
            end_date.alias("end_date"),
            spans_touched.alias("spans_touched"),
            unread(F.to_date(start - gap), start_date).alias("cut_before"),
            unread(end_date, F.to_date(end + gap)).alias("cut_after"),
        )
        .where(F.col("spans_touched") | F.array_contains(rewrite_days, F.col("start_date")))
        .groupBy("start_date", "end_date", "spans_touched", "cut_before", "cut_after")
        .agg(F.count(F.lit(1)).alias("sessions"))
    )


def days_reached(gap_seconds: int) -> int:
    """How many whole days before or after an event the previous or next event of its
    session can be (1 for any gap up to a day)."""
    return max(1, math.ceil(gap_seconds / DAY_SECONDS))


def _days(first: date, last: date) -> set[date]:
    return {first + timedelta(days=n) for n in range((last - first).days + 1)}


def around(days: Iterable[date], reach: int) -> set[date]:
    """`days` and the `reach` days on either side of each."""
    return {d + timedelta(days=n) for d in days for n in range(-reach, reach + 1)}


def widen_dates(
    extents: Iterable[tuple], rewrite: set[date], read: set[date], gap_seconds: int
) -> tuple[set[date], set[date]]:
    """The dates to rewrite and to read after one look at `session_extents` rows
    (start_date, end_date, spans_touched, cut_before, cut_after, ...).

    Every date a session spanning a touched date covers is rewritten (a new event can
    extend a session begun the day before, or join one begun the day after to its own);
    every session that may be cut at the edge of the read dates gets the days beyond it read.
    Equal to the given sets when nothing needs to widen.
    """
    reach = days_reached(gap_seconds)
    rewrite, read = set(rewrite), set(read)
    for start_date, end_date, spans_touched, cut_before, cut_after, *_ in extents:
        if spans_touched:
            rewrite |= _days(start_date, end_date)
        if cut_before:
            read |= _days(start_date - timedelta(days=reach), start_date)
        if cut_after:
            read |= _days(end_date, end_date + timedelta(days=reach))
    return rewrite, read | rewrite
