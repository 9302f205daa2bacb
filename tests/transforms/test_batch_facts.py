"""batch_facts: one small aggregate telling a silver batch its counts, dates and lookup values."""

import datetime as dt

from lakehouse.transforms.records import batch_facts

D1, D2 = dt.date(2024, 3, 1), dt.date(2024, 3, 2)


def test_counts_kinds_dates_and_distinct_lookup_values(spark):
    rows = spark.createDataFrame(
        [
            # is_blank, reason, needs_reparse, event_date, user_agent, ip
            (False, None, False, D1, "ua-a", "1.1.1.1"),
            (False, None, False, D1, "ua-a", "2.2.2.2"),
            (False, None, False, D2, "ua-b", "1.1.1.1"),
            (False, None, False, D2, None, "3.3.3.3"),
            (True, None, False, None, None, None),
            (False, "invalid status", False, D1, "ua-q", "9.9.9.9"),
            (False, "line does not match the log format", True, None, None, None),
        ],
        "is_blank boolean, reason string, needs_reparse boolean, event_date date, user_agent string, ip string",
    )
    facts = {(r.fact, r.column, r.value): r["count"] for r in batch_facts(rows, ("user_agent", "ip")).collect()}
    assert facts == {
        ("valid", None, "2024-03-01"): 2,
        ("valid", None, "2024-03-02"): 2,
        ("skipped_blank", None, None): 1,
        ("quarantined", None, None): 1,
        ("flagged", None, None): 1,
        # Values of valid rows only (not the quarantined row's), nulls left out.
        ("distinct", "user_agent", "ua-a"): 2,
        ("distinct", "user_agent", "ua-b"): 1,
        ("distinct", "ip", "1.1.1.1"): 2,
        ("distinct", "ip", "2.2.2.2"): 1,
        ("distinct", "ip", "3.3.3.3"): 1,
    }


def test_without_a_reparse_flag_nothing_is_flagged(spark):
    rows = spark.createDataFrame(
        [(False, None, D1, "ua"), (False, "bad json", None, None)],
        "is_blank boolean, reason string, event_date date, user_agent string",
    )
    facts = {(r.fact, r.column, r.value): r["count"] for r in batch_facts(rows, ("user_agent",)).collect()}
    assert facts == {("valid", None, "2024-03-01"): 1, ("quarantined", None, None): 1, ("distinct", "user_agent", "ua"): 1}
