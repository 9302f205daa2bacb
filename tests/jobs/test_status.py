"""`lakehouse status` on a small warehouse built here: exact counts, freshness, runs, reasons."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from lakehouse.jobs.batch import run_batch
from lakehouse.jobs.status import collect_status, render
from tests.conftest import free_ports

pytestmark = pytest.mark.slow  # whole jobs on Spark: seconds each (make test, not test-fast)

LINES = [
    '203.0.113.9 - - [01/Mar/2024:10:00:00 +0000] "GET /a HTTP/1.1" 200 5 "-" "curl/8"',
    '203.0.113.9 - - [02/Mar/2024:11:30:00 +0000] "GET /b HTTP/1.1" 404 7 "-" "curl/8"',
    "not a log line",
    '203.0.113.9 - - [01/Jan/1970:00:00:01 +0000] "GET / HTTP/1.1" 200 5 "-" "curl/8"',
]
VIEWS = [
    json.dumps({"_id": "v1", "product_id": "p1", "device_id": "d1", "timestamp": "2024-03-01T09:00:00Z"}),
    "{broken",
]


def test_status_reports_tables_runs_and_quarantine_reasons(spark, warehouse_config, tmp_path):
    (tmp_path / "a.log").write_text("\n".join(LINES) + "\n")
    (tmp_path / "v.jsonl").write_text("\n".join(VIEWS) + "\n")
    # A Kafka address nobody listens on: this test's warehouse has no stream.
    cfg = replace(warehouse_config, kafka=replace(warehouse_config.kafka, bootstrap_servers=f"127.0.0.1:{free_ports()[0]}"))
    run_batch(spark, cfg, str(tmp_path / "a.log"), str(tmp_path / "v.jsonl"), export=False)  # status reads no export
    status = collect_status(spark, cfg, days=7, now=datetime.now(UTC))

    tables = {t["table"]: t for t in status["tables"]}
    assert {name: t["rows"] for name, t in tables.items() if not name.startswith(("gold/_", "silver/dim"))} == {
        "bronze/access_logs": 4,
        "bronze/product_views": 2,
        "silver/access_logs": 2,
        "silver/product_views": 1,
        "gold/endpoint_daily": 2,
        "gold/top_ips_daily": 2,
        # the two valid requests are on two days, same IP and agent, no referrer: a row a day
        "gold/traffic_daily": 2,
        "gold/agent_daily": 2,
        "gold/request_country_daily": 2,
        "gold/request_referrer_daily": 2,
        "gold/product_views_daily": 1,
        "gold/country_views_daily": 1,
        "gold/referrer_views_daily": 1,
        "gold/store_views_daily": 1,
        "gold/referrer_url_views_daily": 1,
        "quarantine/access_logs": 2,
        "quarantine/product_views": 1,
    }
    assert tables["silver/access_logs"]["newest"] == "2024-03-02 11:30:00"
    assert tables["gold/endpoint_daily"]["newest"] == "2024-03-02"
    assert tables["silver/access_logs"]["operation"] == "WRITE" and tables["silver/access_logs"]["files"] >= 1
    runs = {r["job"]: r for r in status["last_runs"]}
    assert {runs[j]["status"] for j in runs} == {"ok"}
    assert runs["2/4 silver access_logs"]["counts"] == {
        "duplicates": 0, "ips_located": 1, "quarantined": 2, "read": 4, "skipped_blank": 0,
        "user_agents_classified": 1, "written": 2,
    }  # fmt: skip
    assert status["quarantine"] == [
        {"dataset": "access_logs", "reason": "line does not match the log format", "records": 1},
        {"dataset": "access_logs", "reason": "timestamp out of range", "records": 1},
        {"dataset": "product_views", "reason": "invalid JSON", "records": 1},
    ]
    assert status["unreadable_files"] == []
    assert status["stream_lag"].endswith("not reachable")  # no Kafka in this test
    text = render(status)
    assert "silver/access_logs" in text and "timestamp out of range" in text
