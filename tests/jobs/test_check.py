"""`lakehouse check` on a small warehouse built here: each action, the reconciliation, the results table."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
import yaml

from lakehouse.io import delta
from lakehouse.jobs import check
from lakehouse.jobs.batch import run_batch
from lakehouse.jobs.runtime import JobRun
from lakehouse.jobs.status import failing_rules

pytestmark = pytest.mark.slow  # whole jobs on Spark: seconds each (make test, not test-fast)

LINES = [
    '203.0.113.9 - - [01/Mar/2024:10:00:00 +0000] "GET /a HTTP/1.1" 200 5 "-" "curl/8" 1500',
    '203.0.113.9 - - [01/Mar/2024:10:00:01 +0000] "BREW /pot HTTP/1.1" 418 5 "-" "curl/8" 2000',
    '198.51.100.7 - - [02/Mar/2024:11:30:00 +0000] "GET /b HTTP/1.1" 404 7 "-" "curl/8" 99999999999',
    "",
    "not a log line",
]
FORMAT = '%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i" %D'
RULES = {"rules": [
    {"name": "keys", "table": "silver/access_logs", "kind": "not_null", "columns": ["event_id", "status"], "action": "fail"},
    {"name": "known_methods", "table": "silver/access_logs", "kind": "allowed", "column": "method", "values": ["GET"], "action": "warn"},
    # %D is microseconds: 99999999999 us is more than a day.
    {"name": "rt_plausible", "table": "silver/access_logs", "kind": "range", "column": "response_time_ms", "min": 0, "max": 3600000, "action": "quarantine"},
    {"name": "reconcile", "table": "bronze/access_logs", "kind": "reconciliation", "dataset": "access_logs", "action": "fail"},
    {"name": "gold_requests", "table": "gold/endpoint_daily", "kind": "gold_totals", "column": "requests", "source": "silver/access_logs", "action": "fail"},
    {"name": "fresh", "table": "silver/access_logs", "kind": "freshness", "column": "event_ts", "max_age_hours": 48, "action": "warn"},
    # Not the daily gate's: `--group sources` (has the feed landed anything lately?).
    {"name": "landing", "group": "sources", "table": "bronze/access_logs", "kind": "freshness", "column": "ingested_at",
     "max_age_hours": 0.5, "action": "fail"},
]}


def results(spark, cfg, run_id):
    rows = delta.read_table(spark, cfg.table_path("_meta", "quality_results")).where(f"run_id = '{run_id}'").collect()
    return {r.rule: (r.action, r.rows_checked, r.rows_failing, r.passed, list(r.samples)) for r in rows}


def test_check_records_each_rule_and_fails_only_on_fail_rules(spark, warehouse_config, tmp_path):
    (tmp_path / "a.log").write_text("\n".join(LINES) + "\n")
    rules_file = tmp_path / "quality.yaml"
    rules_file.write_text(yaml.safe_dump(RULES))
    cfg = replace(
        warehouse_config,
        quality=replace(warehouse_config.quality, rules_file=rules_file),
        access_logs=replace(warehouse_config.access_logs, log_format=FORMAT),
    )
    run_batch(spark, cfg, str(tmp_path / "a.log"), None, export=False)

    # The quarantine rule sent the 27-hour request to quarantine, with the rule's name.
    reasons = sorted(r.reason for r in delta.read_table(spark, cfg.table_path("quarantine", "access_logs")).collect())
    assert reasons == ["line does not match the log format", "rule rt_plausible"]
    assert delta.read_table(spark, cfg.table_path("silver", "access_logs")).count() == 2

    run = JobRun("check")
    now = datetime(2024, 3, 2, 12)
    assert check.run(spark, cfg, run, now=now) == 0
    assert results(spark, cfg, run.run_id) == {
        "keys": ("fail", 2, 0, True, []),
        "known_methods": ("warn", 2, 1, False, ["BREW"]),
        "rt_plausible": ("quarantine", 2, 0, True, []),
        "reconcile": ("fail", 5, 0, True, ["bronze=5", "silver=2", "quarantine=2", "blank=1", "duplicates=0"]),
        "gold_requests": ("fail", 1, 0, True, []),
        "fresh": ("warn", 1, 0, True, []),
    }
    assert run.counts == {"rules": 6, "failed": 0, "warnings": 1}

    # --date: row rules and gold totals see that date only; freshness against a later clock warns.
    run = JobRun("check")
    assert check.run(spark, cfg, run, report_date=date(2024, 3, 2), now=datetime(2024, 3, 9)) == 0
    got = results(spark, cfg, run.run_id)
    assert got["known_methods"][1:3] == (0, 0) and got["keys"][1] == 0
    assert got["fresh"] == ("warn", 1, 1, False, ["newest event_ts: 2024-03-01 10:00:01"])

    # A silver row lost behind the pipeline's back: reconciliation and gold totals fail -> exit 1.
    spark.sql(f"DELETE FROM delta.`{cfg.table_path('silver', 'access_logs')}` WHERE method = 'BREW'")
    run = JobRun("check")
    assert check.run(spark, cfg, run, now=now) == 1
    got = results(spark, cfg, run.run_id)
    assert got["reconcile"] == ("fail", 5, 1, False, ["bronze=5", "silver=1", "quarantine=2", "blank=1", "duplicates=0"])
    assert got["gold_requests"] == ("fail", 1, 1, False, ["2024-03-01: gold=2 silver=1"])
    assert run.counts == {"rules": 6, "failed": 2, "warnings": 0}
    # `lakehouse status` shows what the last check found failing.
    assert [(f["rule"], f["rows_failing"]) for f in failing_rules(spark, cfg)] == [("gold_requests", 1), ("reconcile", 1)]

    # The sources' group runs on its own: bronze landed just now, so fresh; an hour later, stale.
    run = JobRun("check")
    assert check.run(spark, cfg, run, group="sources") == 0
    assert list(results(spark, cfg, run.run_id)) == ["landing"]
    run = JobRun("check")
    assert check.run(spark, cfg, run, now=datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=1), group="sources") == 1
    assert results(spark, cfg, run.run_id)["landing"][:4] == ("fail", 1, 1, False)
