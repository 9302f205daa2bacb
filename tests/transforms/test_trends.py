"""Product trends on a few inline gold rows with hand-computed results."""

from datetime import date

import pytest
from chispa import assert_df_equality

from lakehouse.transforms.trends import product_changes, product_trend, view_totals

D1, D2, D3, D5 = date(2024, 3, 1), date(2024, 3, 2), date(2024, 3, 3), date(2024, 3, 5)


def product_views_daily(spark):
    # 2024-03-04 has no rows: 03-05 has no day before to compare with.
    return spark.createDataFrame(
        [
            (D1, "p1", 4, 2),
            (D1, "p2", 1, 1),
            (D2, "p1", 2, 2),
            (D2, "p3", 6, 3),
            (D3, "p1", 2, 1),
            (D5, "p1", 9, 4),
        ],
        "report_date date, product_id string, view_count long, unique_visitors long",
    )


def test_product_trend_compares_each_day_with_the_calendar_day_before(spark):
    expected = spark.createDataFrame(
        [
            (D1, 5, 2, None, None),
            (D2, 8, 2, 3, 0.6),
            (D3, 2, 1, -6, -0.75),
            (D5, 9, 1, None, None),
        ],
        "report_date date, views long, products long, views_change long, views_change_pct double",
    )
    assert_df_equality(product_trend(product_views_daily(spark)), expected, ignore_nullable=True)


def test_product_changes_per_product_with_zero_for_a_day_without_views(spark):
    expected = spark.createDataFrame(
        [
            (D2, "p3", 6, 0, 6),
            (D2, "p1", 2, 4, -2),
            (D2, "p2", 0, 1, -1),
            (D3, "p3", 0, 6, -6),
            (D3, "p1", 2, 2, 0),
        ],
        "report_date date, product_id string, views long, views_before long, change long",
    )
    assert_df_equality(product_changes(product_views_daily(spark)), expected, ignore_nullable=True)


def test_view_totals_sum_views_and_visitor_days_per_key(spark):
    countries = spark.createDataFrame(
        [(D1, "US", 3, 2), (D2, "US", 1, 1), (D1, "DE", 5, 1), (D2, "(unknown)", 1, 1)],
        "report_date date, country string, view_count long, unique_visitors long",
    )
    expected = spark.createDataFrame(
        [("DE", 5, 1), ("US", 4, 3), ("(unknown)", 1, 1)], "country string, views long, visitor_days long"
    )
    assert_df_equality(view_totals(countries, "country"), expected, ignore_nullable=True)


def test_view_totals_names_what_is_missing(spark):
    no_visitors = spark.createDataFrame([(D1, "US", 3)], "report_date date, country string, view_count long")
    with pytest.raises(ValueError, match=r"\['unique_visitors'\]"):
        view_totals(no_visitors, "country")
