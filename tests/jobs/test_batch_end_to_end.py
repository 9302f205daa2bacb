"""`lakehouse batch` on the committed samples, checked against the plain-Python oracle.

One warehouse is built once for the module (Spark work is the slow part); the tests
then read it. The oracle (tests/reference_gold.py) shares no code with the pipeline.
"""

from __future__ import annotations

import shutil
import sqlite3
from datetime import date

import pytest
from pyspark.sql import functions as F

from lakehouse.io import delta
from lakehouse.jobs.batch import run_batch
from lakehouse_dev.samples import write_access_log
from tests.conftest import SAMPLES
from tests.reference_gold import reference_access_logs, reference_product_views

pytestmark = pytest.mark.slow  # whole jobs on Spark: seconds each (make test, not test-fast)

ACCESS = SAMPLES / "access.log"
VIEWS = SAMPLES / "product_views.jsonl"

GOLD_KEYS = {
    "endpoint_daily": ("report_date", "endpoint"),
    "top_ips_daily": ("report_date", "ip"),
    "traffic_daily": ("report_date",),
    "agent_daily": ("report_date", "browser", "os", "device", "is_bot"),
    "request_country_daily": ("report_date", "country"),
    "request_referrer_daily": ("report_date", "referrer_host"),
    "product_views_daily": ("report_date", "product_id"),
    "country_views_daily": ("report_date", "country"),
    "referrer_views_daily": ("report_date", "referrer_host"),
    "store_views_daily": ("report_date", "store_id"),
    "referrer_url_views_daily": ("report_date", "referrer_url"),
}


def _norm(value):
    if isinstance(value, float):
        return round(value, 9)
    if hasattr(value, "tzinfo") and getattr(value, "tzinfo", None) is not None:
        return value.replace(tzinfo=None)
    return value


def rows_of(records, columns):
    return sorted(tuple(_norm(r[c]) for c in columns) for r in records)


@pytest.fixture(scope="module")
def built(spark, config, tmp_path_factory):
    base = tmp_path_factory.mktemp("e2e")
    inputs = base / "in"
    (inputs / "access").mkdir(parents=True)
    shutil.copy(ACCESS, inputs / "access" / "access.log")
    cfg = config.with_warehouse(str(base / "warehouse"))
    stages = run_batch(spark, cfg, str(inputs / "access"), str(VIEWS))
    return {"config": cfg, "stages": stages, "inputs": inputs}


@pytest.fixture(scope="module")
def oracle_access():
    return reference_access_logs([ACCESS], "combined")


@pytest.fixture(scope="module")
def oracle_views():
    return reference_product_views([VIEWS])


def gold(spark, cfg, table):
    return [r.asDict() for r in delta.read_table(spark, cfg.table_path("gold", table)).collect()]


def test_every_line_is_accounted_for(built, oracle_access, oracle_views):
    access = built["stages"]["2/4 silver access_logs"].counts
    views = built["stages"]["2/4 silver product_views"].counts
    expected_access = oracle_access["counts"]
    expected_views = oracle_views["counts"]
    for got, want in ((access, expected_access), (views, expected_views)):
        assert got["read"] == want["read"]
        assert got["skipped_blank"] == want["skipped_blank"]
        assert got["quarantined"] == want["quarantined"]
        assert got["duplicates"] == want["duplicates"]
        assert got["written"] == want["silver"]


def test_silver_and_quarantine_tables_hold_those_rows(spark, built, oracle_access, oracle_views):
    cfg = built["config"]
    assert delta.read_table(spark, cfg.table_path("silver", "access_logs")).count() == oracle_access["counts"]["silver"]
    assert delta.read_table(spark, cfg.table_path("silver", "product_views")).count() == oracle_views["counts"]["silver"]
    quarantine = delta.read_table(spark, cfg.table_path("quarantine", "access_logs"))
    assert quarantine.count() == oracle_access["counts"]["quarantined"]
    assert quarantine.where(F.col("reason").isNull() | F.col("value").isNull()).count() == 0
    reasons = {r[0] for r in quarantine.select(F.substring_index("reason", ":", 1)).collect()}
    assert reasons == {
        "truncated line",
        "not valid UTF-8 (the exact bytes are kept in raw_value)",
        "unparseable timestamp",
        "timestamp out of range",
    }


@pytest.mark.parametrize(
    "table", ["endpoint_daily", "top_ips_daily", "traffic_daily", "agent_daily", "request_country_daily", "request_referrer_daily"]
)
def test_access_log_gold_matches_oracle(spark, built, oracle_access, table):
    columns = list(oracle_access[table][0].keys())
    assert rows_of(gold(spark, built["config"], table), columns) == rows_of(oracle_access[table], columns)


@pytest.mark.parametrize(
    "table",
    ["product_views_daily", "country_views_daily", "referrer_views_daily", "store_views_daily", "referrer_url_views_daily"],
)
def test_product_view_gold_matches_oracle(spark, built, oracle_views, table):
    columns = list(oracle_views[table][0].keys())
    assert rows_of(gold(spark, built["config"], table), columns) == rows_of(oracle_views[table], columns)


def test_sqlite_export_holds_gold_exactly_once(built, oracle_access, oracle_views):
    db = sqlite3.connect(built["config"].export.url.removeprefix("jdbc:sqlite:"))
    try:
        for table, expected in (
            ("endpoint_daily", oracle_access["endpoint_daily"]),
            ("top_ips_daily", oracle_access["top_ips_daily"]),
            ("traffic_daily", oracle_access["traffic_daily"]),
            ("agent_daily", oracle_access["agent_daily"]),
            ("product_views_daily", oracle_views["product_views_daily"]),
        ):
            key = ", ".join(GOLD_KEYS[table])
            assert db.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == len(expected)
            assert db.execute(f"SELECT count(*) FROM (SELECT DISTINCT {key} FROM {table})").fetchone()[0] == len(expected)
        total = db.execute("SELECT sum(requests) FROM endpoint_daily").fetchone()[0]
        assert total == oracle_access["counts"]["silver"]
    finally:
        db.close()


def test_rerun_changes_nothing(spark, built):
    cfg = built["config"]
    tables = [("silver", "access_logs"), ("silver", "product_views"), ("quarantine", "access_logs")]
    tables += [("gold", t) for t in GOLD_KEYS]
    before = {t: delta.table_version(spark, cfg.table_path(*t)) for t in tables}
    stages = run_batch(spark, cfg, str(built["inputs"] / "access"), str(VIEWS))
    after = {t: delta.table_version(spark, cfg.table_path(*t)) for t in tables}
    assert after == before
    assert stages["1/4 bronze"].counts["access_logs_files_skipped"] == 1
    assert stages["4/4 export"].counts == {}


@pytest.fixture
def own_warehouse(built, tmp_path):
    """A copy of the module's warehouse that this test alone may change."""
    shutil.copytree(built["config"].warehouse, tmp_path / "warehouse")
    return built["config"].with_warehouse(str(tmp_path / "warehouse"))


def test_new_file_only_refreshes_its_own_dates(spark, own_warehouse, tmp_path):
    cfg = own_warehouse
    march = sorted(
        (r.asDict() for r in delta.read_table(spark, cfg.table_path("gold", "endpoint_daily")).collect()),
        key=lambda r: (r["report_date"], r["endpoint"]),
    )
    april = tmp_path / "april" / "april.log"
    write_access_log(april, 200, seed=99, start="2024-04-10", days=1, bad_lines=False)
    stages = run_batch(spark, cfg, str(april.parent), None)
    assert stages["1/4 bronze"].counts["access_logs_files_read"] == 1
    refreshed = stages["3/4 gold"].counts["access_logs_dates_refreshed"]
    endpoint = delta.read_table(spark, cfg.table_path("gold", "endpoint_daily"))
    new_dates = {r[0] for r in endpoint.where(F.col("report_date") >= date(2024, 4, 1)).select("report_date").distinct().collect()}
    assert refreshed == len(new_dates) >= 1
    still = sorted(
        (r.asDict() for r in endpoint.where(F.col("report_date") < date(2024, 4, 1)).collect()),
        key=lambda r: (r["report_date"], r["endpoint"]),
    )
    assert still == march
    expected_april = reference_access_logs([april], "combined")["counts"]["silver"]
    assert endpoint.where(F.col("report_date") >= date(2024, 4, 1)).agg(F.sum("requests")).first()[0] == expected_april
