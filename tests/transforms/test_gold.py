"""Gold aggregates on a few inline silver rows with hand-computed results."""

from datetime import date, datetime

from chispa import assert_approx_df_equality, assert_df_equality
from pyspark.sql import functions as F

from lakehouse.transforms.gold import (
    agent_daily,
    country_views_daily,
    endpoint_daily,
    product_views_daily,
    referrer_url_views_daily,
    referrer_views_daily,
    request_country_daily,
    request_referrer_daily,
    store_views_daily,
    top_ips_daily,
    traffic_daily,
)

D = date(2024, 3, 1)
D2 = date(2024, 3, 2)


def views(spark):
    return spark.createDataFrame(
        [
            (D, datetime(2024, 3, 1, 1), "p1", "d1", "US", "www.google.com"),
            (D, datetime(2024, 3, 1, 5), "p1", "d1", "US", None),
            (D, datetime(2024, 3, 1, 3), "p1", "d2", None, "www.google.com"),
            (D, datetime(2024, 3, 1, 4), "p2", None, "DE", None),
        ],
        "event_date date, event_ts timestamp, product_id string, device_id string, country string, referrer_host string",
    )


def test_product_views_daily(spark):
    out = product_views_daily(views(spark))
    expected = spark.createDataFrame(
        [(D, "p1", 3, 2, datetime(2024, 3, 1, 5)), (D, "p2", 1, 0, datetime(2024, 3, 1, 4))], out.schema
    )
    assert_df_equality(out, expected, ignore_row_order=True, ignore_nullable=True)


def test_country_and_referrer_fill_unknowns(spark):
    countries = {tuple(r) for r in country_views_daily(views(spark)).collect()}
    assert countries == {(D, "US", 2, 1), (D, "(unknown)", 1, 1), (D, "DE", 1, 0)}
    referrers = {tuple(r) for r in referrer_views_daily(views(spark)).collect()}
    assert referrers == {(D, "www.google.com", 2, 2), (D, "(direct)", 2, 1)}


LONG_URL = "https://shop.example/?q=" + "x" * 2024  # 2048 bytes: the longest silver keeps


def seed_views(spark):
    """Silver views with the seed's own keys: the store and the full referrer URL."""
    return spark.createDataFrame(
        [
            (D, "d1", "US", "https://www.google.com/"),
            (D, "d1", "US", "https://www.google.com/"),  # d1 again: two views, one visitor
            (D, "d2", "us", LONG_URL),
            (D, None, None, ""),
            (D, "d3", " ", None),
            (D2, "d1", "US", "https://www.google.com/search?q=ring"),
        ],
        "event_date date, device_id string, store_id string, referrer_url string",
    )


def test_store_views_daily_counts_store_ids_as_sent_and_blank_as_unknown(spark):
    out = store_views_daily(seed_views(spark))
    expected = spark.createDataFrame(
        [(D, "US", 2, 1), (D, "us", 1, 1), (D, "(unknown)", 2, 1), (D2, "US", 1, 1)], out.schema
    )
    assert_df_equality(out, expected, ignore_row_order=True, ignore_nullable=True)


def test_referrer_url_views_daily_keeps_the_whole_url_and_blank_is_direct(spark):
    out = referrer_url_views_daily(seed_views(spark))
    expected = spark.createDataFrame(
        [
            (D, "https://www.google.com/", 2, 1),
            (D, LONG_URL, 1, 1),  # whole: gold never cuts (silver bounds it)
            (D, "(direct)", 2, 1),
            (D2, "https://www.google.com/search?q=ring", 1, 1),
        ],
        out.schema,
    )
    assert_df_equality(out, expected, ignore_row_order=True, ignore_nullable=True)


def requests(spark):
    return spark.createDataFrame(
        [
            (D, "/a", "1.1.1.1", 200, 100, 10.0),
            (D, "/a", "1.1.1.1", 304, None, 20.0),
            (D, "/a", "2.2.2.2", 404, 5, 30.0),
            (D, "/a", "3.3.3.3", 503, 7, 40.0),
            (D, "/b", "2.2.2.2", 200, 1, None),
            (D, "/c", None, 500, 2, 5.0),
        ],
        "event_date date, endpoint string, ip string, status int, bytes bigint, response_time_ms double",
    )


def test_endpoint_daily_counts_classes_and_percentiles(spark):
    out = endpoint_daily(requests(spark))
    expected = spark.createDataFrame(
        [
            (D, "/a", 4, 3, 1, 1, 1, 1, 0.5, 112, 25.0, 38.5, 39.7),
            (D, "/b", 1, 1, 1, 0, 0, 0, 0.0, 1, None, None, None),
            # No IP on the line (a format without %h): counted, but no distinct IP.
            (D, "/c", 1, 0, 0, 0, 0, 1, 1.0, 2, 5.0, 5.0, 5.0),
        ],
        out.schema,
    )
    assert_approx_df_equality(out, expected, 1e-9, ignore_row_order=True, ignore_nullable=True)


def test_top_ips_keeps_n_per_day_ties_by_ip(spark):
    out = top_ips_daily(requests(spark), 2)
    assert sorted(tuple(r) for r in out.collect()) == [(D, "1.1.1.1", 2), (D, "2.2.2.2", 2)]


def web_requests(spark):
    """Access-log rows with the agent, country and referrer columns the breakdowns read."""
    return spark.createDataFrame(
        [
            # day 1: 1.1.1.1 with two browsers (two visitors), a bot, an IP with no agent
            (D, "1.1.1.1", "UA-firefox", "Firefox", "Linux", "desktop", False, "US", "https://www.Google.com/search?q=x", 200, 100),
            (D, "1.1.1.1", "UA-firefox", "Firefox", "Linux", "desktop", False, "US", None, 200, None),
            (D, "1.1.1.1", "UA-safari", "Mobile Safari", "iOS", "mobile", False, "US", "news.example.org/a", 404, 10),
            (D, "9.9.9.9", "Googlebot/2.1", "Googlebot", "Other", "bot", True, None, None, 301, 5),
            (D, "8.8.8.8", None, None, None, None, None, "DE", "", 503, 1),
            # day 2: one request
            (D2, "1.1.1.1", "UA-firefox", "Firefox", "Linux", "desktop", False, "US", "https://www.google.com/", 302, 7),
        ],
        "event_date date, ip string, user_agent string, ua_browser string, ua_os string, ua_device string, "
        "is_bot boolean, country string, referrer string, status int, bytes bigint",
    )


def test_traffic_daily_counts_visitors_as_ip_and_agent(spark):
    rows = {tuple(r) for r in traffic_daily(web_requests(spark)).collect()}
    # report_date, requests, unique_ips, unique_visitors, bot_requests, 2xx, 3xx, 4xx, 5xx, bytes
    assert rows == {(D, 5, 3, 4, 1, 2, 1, 1, 1, 116), (D2, 1, 1, 1, 0, 0, 1, 0, 0, 7)}


def test_agent_daily_fills_unknown_agents_as_humans(spark):
    rows = {tuple(r) for r in agent_daily(web_requests(spark)).where(F.col("report_date") == D).collect()}
    assert rows == {
        (D, "Firefox", "Linux", "desktop", False, 2, 1),
        (D, "Mobile Safari", "iOS", "mobile", False, 1, 1),
        (D, "Googlebot", "Other", "bot", True, 1, 1),
        (D, "(unknown)", "(unknown)", "(unknown)", False, 1, 1),
    }


def test_request_country_and_referrer_daily(spark):
    countries = {tuple(r) for r in request_country_daily(web_requests(spark)).collect()}
    assert countries == {(D, "US", 3, 1), (D, "(unknown)", 1, 1), (D, "DE", 1, 1), (D2, "US", 1, 1)}
    referrers = {tuple(r) for r in request_referrer_daily(web_requests(spark)).collect()}
    # hosts lower-cased, a scheme-less URL read as http://, no or an empty referrer is direct
    assert referrers == {
        (D, "www.google.com", 1, 1),
        (D, "news.example.org", 1, 1),
        (D, "(direct)", 3, 3),
        (D2, "www.google.com", 1, 1),
    }
