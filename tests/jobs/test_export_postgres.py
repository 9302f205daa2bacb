"""Gold (and opt-in raw silver rows) -> a real PostgreSQL server (the run's, tests/stack.py; a database per test): exactly once per date."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import date, datetime

import pytest
from pyspark.sql import functions as F

from lakehouse.io import delta
from lakehouse.jobs import export_gold, gold_daily
from lakehouse.jobs.runtime import JobRun

pytestmark = pytest.mark.services

D1, D2 = date(2024, 3, 1), date(2024, 3, 2)
ENDPOINT_COLUMNS = (
    "report_date date, endpoint string, requests bigint, unique_ips bigint, status_2xx bigint, "
    "status_3xx bigint, status_4xx bigint, status_5xx bigint, error_rate double, bytes bigint, "
    "p50_ms double, p95_ms double, p99_ms double"
)


@pytest.fixture
def server(stack):
    return stack.database(f"export_{uuid.uuid4().hex[:8]}")


@pytest.fixture
def cfg(config, server, tmp_path):
    base = config.with_warehouse(str(tmp_path / "warehouse"))
    export = replace(base.export, url=server.jdbc_url, user=server.user, password=server.password)
    return replace(base, export=export)


def write_gold(spark, cfg, requests_by_day: dict[date, int]):
    """endpoint_daily rows for the given days, logged as refreshed (as the gold job does)."""
    rows = [(d, "/home", n, 1, n, 0, 0, 0, 0.0, 10 * n, None, None, None) for d, n in requests_by_day.items()]
    df = spark.createDataFrame(rows, ENDPOINT_COLUMNS)
    condition = "report_date IN (" + ", ".join(f"DATE'{d}'" for d in requests_by_day) + ")"
    delta.replace_where(df, cfg.table_path("gold", "endpoint_daily"), condition)
    log = spark.createDataFrame([(d, "access_logs", uuid.uuid4().hex, None) for d in requests_by_day], gold_daily.REPORT_DATES_SCHEMA)
    delta.append(log.withColumn("refreshed_at", F.current_timestamp()), cfg.table_path("gold", "_report_dates"))


def exported(server) -> list[str]:
    return server.psql("SELECT report_date, endpoint, requests FROM endpoint_daily ORDER BY 1, 2").split()


def test_export_is_idempotent(spark, cfg, server):
    write_gold(spark, cfg, {D1: 5, D2: 7})
    run = JobRun("export")
    export_gold.run(spark, cfg, run)
    assert run.counts == {"dates_exported": 2, "rows_exported": 2}
    assert exported(server) == ["2024-03-01|/home|5", "2024-03-02|/home|7"]

    again = JobRun("export")
    export_gold.run(spark, cfg, again)
    assert again.counts == {}
    export_gold.run(spark, cfg, JobRun("export"), everything=True)
    assert exported(server) == ["2024-03-01|/home|5", "2024-03-02|/home|7"]
    assert server.psql("SELECT count(*) FROM lakehouse_export_state").strip() == "2"


def test_failure_mid_export_keeps_each_day_whole(spark, cfg, server):
    write_gold(spark, cfg, {D1: 5, D2: 7})
    export_gold.run(spark, cfg, JobRun("export"))
    write_gold(spark, cfg, {D1: 50, D2: 70})
    # The database refuses the second day's new rows: a real failure half way through.
    server.psql(
        "CREATE FUNCTION refuse_d2() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF NEW.report_date = DATE '2024-03-02' THEN RAISE EXCEPTION 'disk full (simulated)'; END IF; "
        "RETURN NEW; END $$;"
        "CREATE TRIGGER refuse_d2 BEFORE INSERT ON endpoint_daily FOR EACH ROW EXECUTE FUNCTION refuse_d2();"
    )
    with pytest.raises(Exception, match="disk full"):
        export_gold.run(spark, cfg, JobRun("export"))
    # Day 1 has its new rows; day 2 still has its previous rows, not none and not both.
    assert exported(server) == ["2024-03-01|/home|50", "2024-03-02|/home|7"]

    server.psql("DROP TRIGGER refuse_d2 ON endpoint_daily; DROP FUNCTION refuse_d2();")
    resumed = JobRun("export")
    export_gold.run(spark, cfg, resumed)
    assert resumed.counts == {"dates_exported": 1, "rows_exported": 1}
    assert exported(server) == ["2024-03-01|/home|50", "2024-03-02|/home|70"]


GEO_COLUMNS = (
    "ip string, country string, city string, latitude double, longitude double, first_seen timestamp, "
    "last_seen timestamp, hits bigint, refreshed_at timestamp"
)


def test_ip_geolocation_is_upserted_by_ip_and_only_changed_rows_move(spark, cfg, server):
    path = cfg.table_path("gold", "ip_geolocation")
    t1, t2 = datetime(2024, 3, 1, 10), datetime(2024, 3, 1, 11)
    first = [
        ("81.2.69.160", "GB", "London", 51.5, -0.1, t1, t1, 1, datetime(2024, 3, 2, 1)),
        ("10.0.0.1", None, None, None, None, t1, t1, 2, datetime(2024, 3, 2, 1)),
    ]
    spark.createDataFrame(first, GEO_COLUMNS).write.format("delta").save(path)
    run = JobRun("export")
    export_gold.run(spark, cfg, run)
    assert run.counts == {"rows_exported": 2}
    query = "SELECT ip, hits, first_seen, last_seen, refreshed_at FROM ip_geolocation ORDER BY ip"
    assert server.psql(query).strip().split("\n") == [
        "10.0.0.1|2|2024-03-01 10:00:00|2024-03-01 10:00:00|2024-03-02 01:00:00",
        "81.2.69.160|1|2024-03-01 10:00:00|2024-03-01 10:00:00|2024-03-02 01:00:00",
    ]
    again = JobRun("export")
    export_gold.run(spark, cfg, again)
    assert again.counts == {"rows_exported": 0}  # nothing refreshed since

    # A later gold run saw 81.2.69.160 again: only its row moves, and it is replaced.
    spark.createDataFrame(
        [("81.2.69.160", "GB", "London", 51.5, -0.1, t1, t2, 2, datetime(2024, 3, 2, 2)), first[1]], GEO_COLUMNS
    ).write.format("delta").mode("overwrite").save(path)
    later = JobRun("export")
    export_gold.run(spark, cfg, later)
    assert later.counts == {"rows_exported": 1}
    assert server.psql(query).strip().split("\n") == [
        "10.0.0.1|2|2024-03-01 10:00:00|2024-03-01 10:00:00|2024-03-02 01:00:00",
        "81.2.69.160|2|2024-03-01 10:00:00|2024-03-01 11:00:00|2024-03-02 02:00:00",
    ]


def test_hostile_lengths_are_quarantined_in_silver_and_the_export_to_postgresql_passes(spark, cfg, server, tmp_path):
    from lakehouse.jobs.batch import run_batch

    cfg = replace(cfg, export=replace(cfg.export, raw_rows=("access_logs",)))  # the raw rows too (docs/raw-rows.md)

    long_path = "/" + "a" * 8192
    long_host_referrer = "http://" + "h" * 8192 + ".example/"
    long_url_referrer = "https://shop.example/?q=" + "x" * 8192  # an ordinary host: fine in an access log
    agent = "Mozilla/5.0 " + "Z" * 8192
    line = '203.0.113.9 - - [01/Mar/2024:10:00:0{n} +0000] "GET {path} HTTP/1.1" 200 5 "{referrer}" "{agent}"'
    (tmp_path / "a.log").write_text("\n".join([
        line.format(n=0, path="/ok", referrer="-", agent="curl/8"),
        line.format(n=1, path=long_path, referrer="-", agent="curl/8"),
        line.format(n=2, path="/ok", referrer=long_host_referrer, agent="curl/8"),
        line.format(n=3, path="/ok", referrer=long_url_referrer, agent=agent),
    ]) + "\n")
    view = '{{"_id": "v{n}", "product_id": "{product}", "device_id": "d", "referrer_url": "{referrer}", "timestamp": "2024-03-01T10:00:00Z"}}'
    # The longest key silver keeps: 2048 bytes of UTF-8, mostly 3-byte characters that do not
    # compress (PostgreSQL indexes at most ~2700 bytes of a key), and a 255-character store_id.
    widest_url = "https://shop.example/?q=" + "".join(chr(0x4E00 + i * 7919 % 20000) for i in range(674)) + "xy"
    assert len(widest_url.encode()) == 2048
    (tmp_path / "v.jsonl").write_text("\n".join([
        view.format(n=0, product="p2", referrer=long_url_referrer),  # a key now: over 2048 bytes
        view.format(n=1, product="p" * 8192, referrer=""),
        view.format(n=2, product="p2", referrer=long_host_referrer),
        view.format(n=3, product="p1", referrer=widest_url)[:-1] + f', "store_id": "{"s" * 255}"}}',
    ]) + "\n", encoding="utf-8")

    stages = run_batch(spark, cfg, str(tmp_path / "a.log"), str(tmp_path / "v.jsonl"))
    assert stages["4/4 export"].counts["dates_exported"] == 1
    quarantined = {
        d: sorted(r.reason for r in delta.read_table(spark, cfg.table_path("quarantine", d)).collect())
        for d in ("access_logs", "product_views")
    }
    assert quarantined == {
        "access_logs": ["path longer than 2048 characters", "referrer host longer than 255 characters"],
        "product_views": [
            "product_id longer than 255 characters", "referrer host longer than 255 characters",
            "referrer_url longer than 2048 bytes"],
    }  # fmt: skip
    assert server.psql("SELECT endpoint, requests FROM endpoint_daily").split() == ["/ok|2"]
    assert server.psql("SELECT referrer_host, requests FROM request_referrer_daily ORDER BY 1").split() == [
        "(direct)|1", "shop.example|1"]
    assert server.psql("SELECT sum(requests) FROM agent_daily").strip() == "2"  # an 8 KB agent exports too
    assert server.psql("SELECT product_id, view_count FROM product_views_daily").split() == ["p1|1"]
    assert server.psql("SELECT length(store_id), view_count FROM store_views_daily").split() == ["255|1"]
    assert server.psql("SELECT octet_length(referrer_url), view_count FROM referrer_url_views_daily").split() == ["2048|1"]
    # Silver's rows one for one, an 8 KB agent and referrer URL as they came.
    assert server.psql("SELECT endpoint, length(referrer), length(user_agent) FROM web_logs ORDER BY ts").split() == [
        "/ok||6", "/ok|8216|8204"]
