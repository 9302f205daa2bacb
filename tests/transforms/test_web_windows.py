"""Web-event 5-minute windows and sessions on inline silver rows."""

from datetime import date, datetime, timedelta

import pytest
from chispa import assert_df_equality

from lakehouse.feeds.web_events import windows as web_windows
from lakehouse.feeds.web_events.windows import (
    around,
    session_extents,
    sessions,
    traffic_5min,
    traffic_5min_referrer,
    widen_dates,
)
from lakehouse.transforms import gold

D1, D2, D3 = date(2024, 3, 1), date(2024, 3, 2), date(2024, 3, 3)


def at(day: date, hms: str, micros: int = 0) -> datetime:
    h, m, s = (int(x) for x in hms.split(":"))
    return datetime(day.year, day.month, day.day, h, m, s, micros)


def events(spark, rows):
    """Silver-shaped rows from (event_ts, ip, host[, referrer_host])."""
    full = [(*r, None)[:4] for r in rows]
    return spark.createDataFrame(
        [(ts, ts.date(), ip, host, ref) for ts, ip, host, ref in full],
        "event_ts timestamp, event_date date, ip string, host string, referrer_host string",
    )


def test_windows_are_five_utc_minutes_start_included_end_excluded(spark):
    out = traffic_5min(
        events(
            spark,
            [
                (at(D1, "10:00:00"), "1.1.1.1", "a.com"),
                (at(D1, "10:04:59", 999_999), "2.2.2.2", "a.com"),
                (at(D1, "10:04:59"), "1.1.1.1", "a.com"),
                (at(D1, "10:05:00"), "1.1.1.1", "a.com"),
                (at(D1, "10:03:00"), "1.1.1.1", "b.com"),
                (at(D1, "23:59:59", 999_999), "3.3.3.3", "a.com"),
                (at(D2, "00:00:00"), "3.3.3.3", "a.com"),
            ],
        )
    )
    expected = spark.createDataFrame(
        [
            (D1, at(D1, "10:00:00"), at(D1, "10:05:00"), "a.com", 3, 2),
            (D1, at(D1, "10:00:00"), at(D1, "10:05:00"), "b.com", 1, 1),
            (D1, at(D1, "10:05:00"), at(D1, "10:10:00"), "a.com", 1, 1),
            (D1, at(D1, "23:55:00"), at(D2, "00:00:00"), "a.com", 1, 1),
            (D2, at(D2, "00:00:00"), at(D2, "00:05:00"), "a.com", 1, 1),
        ],
        "report_date date, window_start timestamp, window_end timestamp, host string, hits bigint, unique_ips bigint",
    )
    assert_df_equality(out, expected, ignore_nullable=True, ignore_row_order=True)


def test_referrer_windows_count_no_referrer_as_direct(spark):
    out = traffic_5min_referrer(
        events(
            spark,
            [
                (at(D1, "10:01:00"), "1.1.1.1", "a.com", None),
                (at(D1, "10:02:00"), "2.2.2.2", "a.com", None),
                (at(D1, "10:03:00"), "1.1.1.1", "a.com", "www.google.com"),
                (at(D1, "10:06:00"), "1.1.1.1", "a.com", "www.google.com"),
            ],
        )
    )
    expected = spark.createDataFrame(
        [
            (D1, at(D1, "10:00:00"), at(D1, "10:05:00"), "a.com", "(direct)", 2),
            (D1, at(D1, "10:00:00"), at(D1, "10:05:00"), "a.com", "www.google.com", 1),
            (D1, at(D1, "10:05:00"), at(D1, "10:10:00"), "a.com", "www.google.com", 1),
        ],
        "report_date date, window_start timestamp, window_end timestamp, host string, referrer_host string, hits bigint",
    )
    assert_df_equality(out, expected, ignore_nullable=True, ignore_row_order=True)
    assert gold.DIRECT_REFERRER == "(direct)"


SESSION_SCHEMA = "report_date date, ip string, host string, session_start timestamp, session_end timestamp, hits bigint, duration_s double"


def test_events_less_than_the_gap_apart_share_a_session_exactly_the_gap_does_not(spark):
    out = sessions(
        events(
            spark,
            [
                (at(D1, "10:00:00"), "1.1.1.1", "a.com"),
                (at(D1, "10:00:59", 999_999), "1.1.1.1", "a.com"),  # 59.999999 s later: same
                (at(D1, "10:00:59", 999_999), "1.1.1.1", "a.com"),  # the same instant twice: 2 hits
                (at(D1, "10:01:59", 999_999), "1.1.1.1", "a.com"),  # exactly 60 s later: new
                (at(D1, "10:00:30"), "1.1.1.1", "b.com"),  # another host: its own
                (at(D1, "10:00:30"), "2.2.2.2", "a.com"),  # another ip: its own
            ],
        ),
        60,
    )
    expected = spark.createDataFrame(
        [
            (D1, "1.1.1.1", "a.com", at(D1, "10:00:00"), at(D1, "10:00:59", 999_999), 3, 59.999999),
            (
                D1,
                "1.1.1.1",
                "a.com",
                at(D1, "10:01:59", 999_999),
                at(D1, "10:01:59", 999_999),
                1,
                0.0,
            ),
            (D1, "1.1.1.1", "b.com", at(D1, "10:00:30"), at(D1, "10:00:30"), 1, 0.0),
            (D1, "2.2.2.2", "a.com", at(D1, "10:00:30"), at(D1, "10:00:30"), 1, 0.0),
        ],
        SESSION_SCHEMA,
    )
    assert_df_equality(out, expected, ignore_nullable=True, ignore_row_order=True)


def test_a_session_across_midnight_belongs_to_the_day_it_starts(spark):
    out = sessions(
        events(
            spark,
            [
                (at(D1, "23:59:30"), "1.1.1.1", "a.com"),
                (at(D2, "00:00:20"), "1.1.1.1", "a.com"),
                (at(D2, "00:01:10"), "1.1.1.1", "a.com"),
                (at(D2, "00:05:00"), "1.1.1.1", "a.com"),
            ],
        ),
        60,
    )
    expected = spark.createDataFrame(
        [
            (D1, "1.1.1.1", "a.com", at(D1, "23:59:30"), at(D2, "00:01:10"), 3, 100.0),
            (D2, "1.1.1.1", "a.com", at(D2, "00:05:00"), at(D2, "00:05:00"), 1, 0.0),
        ],
        SESSION_SCHEMA,
    )
    assert_df_equality(out, expected, ignore_nullable=True, ignore_row_order=True)


def test_a_longer_gap_joins_what_a_shorter_one_splits(spark):
    rows = [(at(D1, "10:00:00"), "1.1.1.1", "a.com"), (at(D1, "10:02:00"), "1.1.1.1", "a.com")]
    assert sessions(events(spark, rows), 60).count() == 2
    assert sessions(events(spark, rows), 121).count() == 1


def test_a_gap_of_zero_is_refused(spark):
    with pytest.raises(ValueError, match="positive"):
        sessions(events(spark, [(at(D1, "10:00:00"), "1.1.1.1", "a.com")]), 0)


def test_session_extents_flag_sessions_that_may_continue_beyond_the_days_read(spark):
    rows = events(
        spark,
        [
            (at(D2, "00:00:30"), "1.1.1.1", "a.com"),  # within the gap of D1, unread: cut before
            (at(D2, "12:00:00"), "2.2.2.2", "a.com"),  # in the middle of the day: whole
            (at(D2, "23:59:10"), "3.3.3.3", "a.com"),  # within the gap of D3, unread: cut after
        ],
    )
    out = session_extents(rows, 60, touched={D2}, rewrite={D2}, read={D2})
    expected = spark.createDataFrame(
        [
            (D2, D2, True, True, False, 1),
            (D2, D2, True, False, False, 1),
            (D2, D2, True, False, True, 1),
        ],
        "start_date date, end_date date, spans_touched boolean, cut_before boolean, cut_after boolean, sessions bigint",
    )
    assert_df_equality(out, expected, ignore_nullable=True, ignore_row_order=True)
    # With the neighbour days read, nothing may be cut.
    assert (
        session_extents(rows, 60, {D2}, {D2}, {D1, D2, D3}).where("cut_before OR cut_after").count()
        == 0
    )


def test_session_extents_keep_only_sessions_spanning_touched_days_or_starting_in_rewritten_ones(
    spark,
):
    rows = events(
        spark,
        [
            (at(D1, "23:59:50"), "1.1.1.1", "a.com"),
            (at(D2, "00:00:10"), "1.1.1.1", "a.com"),  # spans D1..D2: touches D2
            (at(D1, "12:00:00"), "2.2.2.2", "a.com"),  # D1 only: kept only when D1 is rewritten
            (at(D3, "12:00:00"), "3.3.3.3", "a.com"),  # D3 only: never
        ],
    )
    touched = {D2}
    first = session_extents(rows, 60, touched, {D2}, {D1, D2, D3}).collect()
    assert [tuple(r) for r in first] == [(D1, D2, True, False, False, 1)]
    second = (
        session_extents(rows, 60, touched, {D1, D2}, {D1, D2, D3}).orderBy("end_date").collect()
    )
    assert [tuple(r) for r in second] == [
        (D1, D1, False, False, False, 1),
        (D1, D2, True, False, False, 1),
    ]


def test_widen_dates_rewrites_every_day_a_touching_session_spans_and_reads_past_cut_ones():
    rewrite, read = widen_dates(
        [
            (D1, D3, True, False, False, 1),
            (D1, D1, False, True, False, 4),
            (D3, D3, False, False, True, 2),
        ],
        {D2},
        {D2},
        60,
    )
    assert rewrite == {D1, D2, D3}
    assert read == {D1 - timedelta(days=1), D1, D2, D3, D3 + timedelta(days=1)}
    assert widen_dates([(D2, D2, True, False, False, 9)], {D2}, {D1, D2, D3}, 60) == (
        {D2},
        {D1, D2, D3},
    )


def test_a_gap_longer_than_a_day_reaches_further():
    assert web_windows.days_reached(60) == 1
    assert web_windows.days_reached(86_400) == 1
    assert web_windows.days_reached(86_401) == 2
    assert around({D2}, 1) == {D1, D2, D3}
