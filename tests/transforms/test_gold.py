"""Gold aggregates on a few inline silver rows with hand-computed results."""

from datetime import date, datetime

from chispa import assert_approx_df_equality, assert_df_equality

from lakehouse.transforms.gold import (
    country_views_daily,
    endpoint_daily,
    product_views_daily,
    referrer_views_daily,
    top_ips_daily,
)

D = date(2024, 3, 1)


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
