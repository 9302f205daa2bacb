"""The quality rules' pure parts: parsing conf, which rows fail, the quarantine flag, gold totals."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from chispa import assert_df_equality

from lakehouse.config import ConfigError
from lakehouse.transforms import quality


def rule(**kw):
    return quality.rules_from({"rules": [{"name": "r", "table": "silver/access_logs", "action": "warn", **kw}]})[0]


def test_rules_from_reads_each_kind_and_refuses_wrong_ones():
    assert rule(kind="range", column="status", min=100, max=599).columns == ("status",)
    assert rule(kind="allowed", column="method", values=["GET", 1]).values == ("GET", "1")
    assert rule(kind="not_null", columns=["a"]).group == "daily"
    assert rule(kind="freshness", column="ingested_at", max_age_hours=1, group="sources").group == "sources"
    for bad, message in [
        ({"kind": "not_null", "columns": ["a"], "group": "every day"}, "`group` must be a name"),
        ({"kind": "range", "column": "status"}, "needs `column` and `min` or `max`"),
        ({"kind": "nope", "columns": ["a"]}, "kind 'nope'"),
        ({"kind": "not_null", "columns": ["a"], "action": "shout"}, "action 'shout'"),
        ({"kind": "reconciliation", "dataset": "access_logs", "action": "quarantine"}, "row-level rules on silver"),
    ]:
        with pytest.raises(ConfigError, match=message):
            rule(**bad)
    with pytest.raises(ConfigError, match="unique `name`"):
        quality.rules_from({"rules": [{"name": "a", "kind": "not_null", "columns": ["x"], "action": "warn", "table": "silver/t"}] * 2})


def test_failing_rows_per_kind(spark):
    df = spark.createDataFrame(
        [(1, "GET", 200, None), (2, "BREW", 99, 5.0), (3, None, None, 7.0), (4, "POST", 600, None)],
        "id int, method string, status int, rt double",
    )
    def ids(r):
        return sorted(x.id for x in df.where(quality.failing(r)).collect())
    assert ids(rule(kind="not_null", columns=["method", "status"])) == [3]
    assert ids(rule(kind="range", column="status", min=100, max=599)) == [2, 4]
    assert ids(rule(kind="range", column="status", max=200)) == [4]
    assert ids(rule(kind="allowed", column="method", values=["GET", "POST"])) == [2]
    facts = quality.row_rule_facts(df, rule(kind="range", column="status", min=100, max=599)).first()
    assert (facts.rows_checked, facts.rows_failing) == (4, 2)
    assert sorted(r.sample for r in quality.failing_samples(df, rule(kind="not_null", columns=["method", "status"])).collect()) == ["null|null"]


def test_flag_rows_quarantines_only_valid_rows_failing_a_quarantine_rule(spark):
    parsed = spark.createDataFrame(
        [(1, False, None, 5.0), (2, False, None, -1.0), (3, False, "bad line", -1.0), (4, True, None, -1.0), (5, False, None, None)],
        "id int, is_blank boolean, reason string, rt double",
    )
    rules = quality.rules_from({"rules": [
        {"name": "rt_ok", "table": "silver/access_logs", "kind": "range", "column": "rt", "min": 0, "action": "quarantine"},
        {"name": "warn_only", "table": "silver/access_logs", "kind": "range", "column": "rt", "max": 1, "action": "warn"},
        {"name": "other_table", "table": "silver/product_views", "kind": "range", "column": "rt", "min": 0, "action": "quarantine"},
    ]})
    expected = spark.createDataFrame(
        [(1, False, None, 5.0), (2, False, "rule rt_ok", -1.0), (3, False, "bad line", -1.0), (4, True, None, -1.0), (5, False, None, None)],
        "id int, is_blank boolean, reason string, rt double",
    )
    assert_df_equality(quality.flag_rows(parsed, rules, "silver/access_logs"), expected, ignore_nullable=True)


def test_gold_totals_mismatch_names_the_dates_that_differ(spark):
    gold = spark.createDataFrame(
        [(date(2024, 3, 1), 2), (date(2024, 3, 1), 1), (date(2024, 3, 2), 5), (date(2024, 3, 4), 1)], "report_date date, requests long"
    )
    silver = spark.createDataFrame(
        [(date(2024, 3, 1),)] * 3 + [(date(2024, 3, 2),)] * 4 + [(date(2024, 3, 3),)], "event_date date"
    )
    wrong = sorted(tuple(r) for r in quality.gold_totals_mismatch(gold, silver, "requests").collect())
    assert wrong == [(date(2024, 3, 2), 5, 4), (date(2024, 3, 3), 0, 1), (date(2024, 3, 4), 1, 0)]


def test_reconcile_and_staleness():
    assert quality.reconcile(10, 6, 2, 1, 1)[:2] == (10, 0)
    assert quality.reconcile(10, 5, 2, 1, 1)[:2] == (10, 1)
    now = datetime(2024, 3, 3, 12)
    assert quality.stale_by(datetime(2024, 3, 3, 0), now, 24) is None
    assert quality.stale_by(datetime(2024, 3, 1, 12), now, 24) == 24
    assert quality.stale_by(None, now, 24) == float("inf")
