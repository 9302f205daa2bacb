"""Lineage summaries on a few inline rows with hand-computed results."""

from datetime import date, datetime

import pytest
from chispa import assert_df_equality

from lakehouse.transforms.lineage import (
    compare_versions,
    history_summary,
    layer_counts,
    quarantine_by_day,
    run_counts,
    silver_batch_counts,
)

D1, D2, D3 = date(2024, 3, 1), date(2024, 3, 2), date(2024, 3, 3)


def test_quarantine_by_day_groups_reasons_before_the_colon_per_day(spark):
    quarantine = spark.createDataFrame(
        [
            ("a", "truncated line", datetime(2024, 3, 1, 1)),
            ("b", "unparseable timestamp: [32/Foo/2024]", datetime(2024, 3, 1, 2)),
            ("c", "unparseable timestamp: [99/Bar/2024]", datetime(2024, 3, 1, 23)),
            ("d", "truncated line", datetime(2024, 3, 2, 0)),
        ],
        "value string, reason string, quarantined_at timestamp",
    )
    expected = spark.createDataFrame(
        [
            (D1, "access_logs", "unparseable timestamp", 2),
            (D1, "access_logs", "truncated line", 1),
            (D2, "access_logs", "truncated line", 1),
        ],
        "quarantine_date date, dataset string, reason string, rows long",
    )
    assert_df_equality(quarantine_by_day(quarantine, "access_logs"), expected, ignore_nullable=True)


def test_quarantine_by_day_names_the_missing_column(spark):
    no_time = spark.createDataFrame([("a", "truncated line")], "value string, reason string")
    with pytest.raises(ValueError, match=r"quarantine/access_logs must have the columns \['quarantined_at'\]"):
        quarantine_by_day(no_time, "access_logs")


def test_layer_counts_counts_each_table_in_the_order_given(spark):
    three = spark.createDataFrame([(1,), (2,), (3,)], "x int")
    none = spark.createDataFrame([], "x int")
    out = layer_counts({"silver/access_logs": three, "gold/endpoint_daily": none, "bronze/access_logs": three})
    expected = spark.createDataFrame(
        [("silver", "access_logs", 3), ("gold", "endpoint_daily", 0), ("bronze", "access_logs", 3)],
        "layer string, table string, rows long",
    )
    assert_df_equality(out, expected, ignore_nullable=True)


def test_layer_counts_wants_layer_slash_table_names(spark):
    with pytest.raises(ValueError, match="'access_logs' is not '<layer>/<table>'"):
        layer_counts({"access_logs": spark.createDataFrame([(1,)], "x int")})


def test_run_counts_gives_a_row_per_count_of_each_run_oldest_first(spark):
    runs = spark.createDataFrame(
        [
            ("r2", "gold", datetime(2024, 3, 2), 4.0, {"rows": 7}, "ok"),
            ("r1", "silver", datetime(2024, 3, 1), 2.5, {"read": 10, "written": 9}, "ok"),
            ("r3", "report", datetime(2024, 3, 3), 1.0, {}, "ok"),
        ],
        "run_id string, job string, started_at timestamp, seconds double, counts map<string,bigint>, status string",
    )
    expected = spark.createDataFrame(
        [
            ("r1", "silver", datetime(2024, 3, 1), 2.5, "ok", "read", 10),
            ("r1", "silver", datetime(2024, 3, 1), 2.5, "ok", "written", 9),
            ("r2", "gold", datetime(2024, 3, 2), 4.0, "ok", "rows", 7),
        ],
        "run_id string, job string, started_at timestamp, seconds double, status string, count string, value bigint",
    )
    assert_df_equality(run_counts(runs), expected, ignore_nullable=True)


def test_run_counts_of_runs_recorded_before_status_existed(spark):
    runs = spark.createDataFrame(
        [("r1", "gold", datetime(2024, 3, 1), 1.0, {"rows": 1})],
        "run_id string, job string, started_at timestamp, seconds double, counts map<string,bigint>",
    )
    assert [tuple(r) for r in run_counts(runs).collect()] == [("r1", "gold", datetime(2024, 3, 1), 1.0, None, "rows", 1)]


def test_silver_batch_counts_oldest_first(spark):
    batches = spark.createDataFrame(
        [
            ("product_views", "app", 0, 5, 0, 1, 1, 3, datetime(2024, 3, 1, 2)),
            ("access_logs", "app", 0, 10, 1, 2, 0, 7, datetime(2024, 3, 1, 1)),
        ],
        "dataset string, app_id string, batch_id long, read long, skipped_blank long, quarantined long, "
        "duplicates long, written long, recorded_at timestamp",
    )
    expected = spark.createDataFrame(
        [
            ("access_logs", datetime(2024, 3, 1, 1), 10, 1, 2, 0, 7),
            ("product_views", datetime(2024, 3, 1, 2), 5, 0, 1, 1, 3),
        ],
        "dataset string, recorded_at timestamp, read long, skipped_blank long, quarantined long, duplicates long, written long",
    )
    assert_df_equality(silver_batch_counts(batches), expected, ignore_nullable=True)


def test_history_summary_reads_mode_predicate_and_metrics_newest_first(spark):
    history = spark.createDataFrame(
        [
            (0, datetime(2024, 3, 1), "WRITE", {"mode": "Append"}, {"numFiles": "2", "numOutputRows": "10"}),
            (
                1,
                datetime(2024, 3, 2),
                "WRITE",
                {"mode": "Overwrite", "predicate": "[\"(report_date = 2024-03-02)\"]"},
                {"numFiles": "1", "numOutputRows": "4", "numRemovedFiles": "1"},
            ),
            (2, datetime(2024, 3, 3), "OPTIMIZE", {}, {"numAddedFiles": "1", "numRemovedFiles": "3"}),
        ],
        "version long, timestamp timestamp, operation string, operationParameters map<string,string>, "
        "operationMetrics map<string,string>",
    )
    expected = spark.createDataFrame(
        [
            (2, datetime(2024, 3, 3), "OPTIMIZE", None, None, None, 1, 3),
            (1, datetime(2024, 3, 2), "WRITE", "Overwrite", "[\"(report_date = 2024-03-02)\"]", 4, 1, 1),
            (0, datetime(2024, 3, 1), "WRITE", "Append", None, 10, 2, None),
        ],
        "version long, timestamp timestamp, operation string, mode string, predicate string, rows_written long, "
        "files_added long, files_removed long",
    )
    assert_df_equality(history_summary(history), expected, ignore_nullable=True)


def test_compare_versions_sums_per_key_and_counts_missing_keys_as_zero(spark):
    before = spark.createDataFrame(
        [(D1, "p1", 3), (D1, "p2", 2), (D2, "p1", 4)], "report_date date, product_id string, view_count long"
    )
    after = spark.createDataFrame(
        [(D1, "p1", 3), (D1, "p2", 5), (D3, "p9", 1)], "report_date date, product_id string, view_count long"
    )
    expected = spark.createDataFrame(
        [(D1, 5, 8, 3), (D2, 4, 0, -4), (D3, 0, 1, 1)], "report_date date, before long, after long, change long"
    )
    assert_df_equality(compare_versions(before, after, "report_date", "view_count"), expected, ignore_nullable=True)
