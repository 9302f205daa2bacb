"""The report's summaries of gold, on a few inline gold rows with hand-computed results."""

from datetime import date

import pytest

from lakehouse.transforms.report import (
    agent_share,
    bots_vs_humans,
    in_range,
    quarantine_by_reason,
    top_countries,
    top_endpoints,
    top_products,
    traffic_by_day,
)

D1, D2, D3 = date(2024, 3, 1), date(2024, 3, 2), date(2024, 3, 3)


def rows(df):
    return [tuple(r) for r in df.collect()]


def test_in_range_is_inclusive_and_open_ended(spark):
    df = spark.createDataFrame([(D1,), (D2,), (D3,)], "report_date date")
    assert rows(in_range(df, D2, None)) == [(D2,), (D3,)]
    assert rows(in_range(df, None, D2)) == [(D1,), (D2,)]
    assert rows(in_range(df, D2, D2)) == [(D2,)]
    assert rows(in_range(df, None, None)) == [(D1,), (D2,), (D3,)]


def test_traffic_by_day_splits_bots_and_rates_errors(spark):
    gold = spark.createDataFrame(
        [(D2, 10, 4, 5, 3, 6, 1, 2, 1, 500), (D1, 4, 2, 2, 0, 4, 0, 0, 0, 40)],
        "report_date date, requests bigint, unique_ips bigint, unique_visitors bigint, bot_requests bigint, "
        "status_2xx bigint, status_3xx bigint, status_4xx bigint, status_5xx bigint, bytes bigint",
    )
    out = traffic_by_day(gold)
    assert out.columns == [
        "report_date", "requests", "unique_visitors", "unique_ips", "bot_requests", "human_requests",
        "status_2xx", "status_3xx", "status_4xx", "status_5xx", "error_rate", "bytes",
    ]
    assert rows(out) == [(D1, 4, 2, 2, 0, 4, 4, 0, 0, 0, 0.0, 40), (D2, 10, 5, 4, 3, 7, 6, 1, 2, 1, 0.3, 500)]


def test_top_endpoints_sums_counts_and_keeps_the_worst_daily_latency(spark):
    gold = spark.createDataFrame(
        [
            (D1, "/a", 10, 1, 1, 100, 5.0, 9.0, 10.0),
            (D2, "/a", 10, 0, 2, 100, 7.0, 8.0, 20.0),
            (D1, "/b", 30, 3, 0, 10, None, None, None),
        ],
        "report_date date, endpoint string, requests bigint, status_4xx bigint, status_5xx bigint, bytes bigint, "
        "p50_ms double, p95_ms double, p99_ms double",
    )
    assert rows(top_endpoints(gold)) == [
        ("/b", 30, 3, 0, 0.1, 10, None, None, None),
        ("/a", 20, 1, 3, 0.2, 200, 7.0, 9.0, 20.0),
    ]


def test_countries_sum_requests_and_ip_days(spark):
    gold = spark.createDataFrame(
        [(D1, "US", 5, 2), (D2, "US", 1, 1), (D1, "DE", 6, 1)],
        "report_date date, country string, requests bigint, unique_ips bigint",
    )
    assert rows(top_countries(gold)) == [("DE", 6, 1), ("US", 6, 3)]


def agents(spark):
    return spark.createDataFrame(
        [
            (D1, "Firefox", "Linux", "desktop", False, 6, 2),
            (D2, "Firefox", "Windows", "desktop", False, 2, 1),
            (D1, "Googlebot", "Other", "bot", True, 2, 1),
        ],
        "report_date date, browser string, os string, device string, is_bot boolean, requests bigint, unique_ips bigint",
    )


def test_agent_share_and_bots_vs_humans(spark):
    assert rows(agent_share(agents(spark), "browser")) == [("Firefox", 8, 0.8), ("Googlebot", 2, 0.2)]
    assert rows(agent_share(agents(spark), "os")) == [("Linux", 6, 0.6), ("Other", 2, 0.2), ("Windows", 2, 0.2)]
    assert rows(bots_vs_humans(agents(spark))) == [("humans", 8, 0.8), ("bots", 2, 0.2)]
    with pytest.raises(ValueError, match="browser, os, device"):
        agent_share(agents(spark), "country")


def test_top_products_counts_visitor_days(spark):
    gold = spark.createDataFrame(
        [(D1, "p1", 3, 2), (D2, "p1", 1, 1), (D1, "p2", 5, 1)],
        "report_date date, product_id string, view_count bigint, unique_visitors bigint",
    )
    assert rows(top_products(gold)) == [("p2", 5, 1), ("p1", 4, 3)]


def test_quarantine_by_reason_groups_on_the_text_before_the_colon(spark):
    q = spark.createDataFrame(
        [("invalid status: 999",), ("invalid status: 0",), ("unparseable line",)], "reason string"
    )
    assert rows(quarantine_by_reason(q, "access_logs")) == [
        ("access_logs", "invalid status", 2),
        ("access_logs", "unparseable line", 1),
    ]
