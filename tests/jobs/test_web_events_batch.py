"""`lakehouse batch --web-events` end to end, checked against the plain-Python oracle
(tests/reference_web.py): silver and quarantine counts, the three gold tables, the SQLite
export, a re-run that changes nothing, and late events that change sessions begun the
day before."""

from __future__ import annotations

import gzip
import json
import sqlite3
from datetime import date, datetime, timedelta

import maxminddb
import pytest
from pyspark.sql import functions as F

from lakehouse.io import delta, geoip
from lakehouse.jobs.batch import run_batch
from lakehouse_dev.samples import write_web_events
from tests.conftest import SAMPLES
from tests.reference_web import GOLD_COLUMNS as GOLD
from tests.reference_web import reference_web_events

pytestmark = pytest.mark.slow  # whole jobs on Spark: seconds each (make test, not test-fast)

D1, D2, D3 = date(2024, 3, 1), date(2024, 3, 2), date(2024, 3, 3)


def rows_of(records, columns):
    return sorted(tuple(r[c] for c in columns) for r in records)


def gold(spark, config, table):
    return rows_of(
        [r.asDict() for r in delta.read_table(spark, config.table_path("gold", table)).collect()],
        GOLD[table],
    )


def exported(config, table):
    """The SQLite export's rows, typed back like gold (SQLite keeps dates and times as text or numbers)."""
    db = sqlite3.connect(config.export.url.removeprefix("jdbc:sqlite:"))
    try:
        rows = db.execute(f"SELECT {', '.join(GOLD[table])} FROM {table}").fetchall()
    finally:
        db.close()

    def typed(name, value):
        if name == "report_date":
            return (
                date.fromisoformat(str(value)[:10])
                if isinstance(value, str)
                else _from_millis(value).date()
            )
        if name in ("window_start", "window_end", "session_start", "session_end"):
            return datetime.fromisoformat(value) if isinstance(value, str) else _from_millis(value)
        return value

    return sorted(tuple(typed(n, v) for n, v in zip(GOLD[table], r, strict=True)) for r in rows)


def _from_millis(value):
    return datetime(1970, 1, 1) + timedelta(milliseconds=value)


def lookup(reader, ip):
    rec = reader.get(ip) or {}
    country = rec.get("country") or rec.get("registered_country") or {}
    region = (rec.get("subdivisions") or [{}])[0]
    return (
        country.get("iso_code"),
        (region.get("names") or {}).get("en"),
        ((rec.get("city") or {}).get("names") or {}).get("en"),
    )


def versions(spark, config):
    tables = [("bronze", "web_events"), ("silver", "web_events"), ("quarantine", "web_events")]
    tables += [("gold", t) for t in GOLD]
    return {t: delta.table_version(spark, config.table_path(*t)) for t in tables}


def test_files_to_gold_match_the_oracle_and_a_rerun_changes_nothing(
    spark, warehouse_config, tmp_path
):
    config = warehouse_config
    inbox = tmp_path / "in"
    made = write_web_events(inbox / "events.jsonl", 400, seed=5, start="2024-03-01", days=2)
    # The same file compressed (log rotation): the same records, nothing new.
    (inbox / "events.jsonl.1.gz").write_bytes(gzip.compress((inbox / "events.jsonl").read_bytes()))
    oracle = reference_web_events(
        [inbox / "events.jsonl"], gap_seconds=config.web_events.session_gap_seconds
    )
    assert oracle["counts"]["quarantined"] == made["expected_quarantined"] == 14
    assert any(s["session_start"].date() != s["session_end"].date() for s in oracle["sessions"])

    stages = run_batch(spark, config, None, None, web_events=str(inbox))

    counts = stages["2/4 silver web_events"].counts
    assert {
        k: counts[k] for k in ("read", "skipped_blank", "quarantined", "written", "duplicates")
    } == {
        "read": 400,
        "skipped_blank": made["expected_skipped_blank"],
        "quarantined": made["expected_quarantined"],
        "written": made["expected_silver"],
        "duplicates": 0,
    }
    assert oracle["counts"]["silver"] == made["expected_silver"] == 400 - 2 - 14
    silver = delta.read_table(spark, config.table_path("silver", "web_events"))
    assert silver.count() == made["expected_silver"]
    quarantine = delta.read_table(spark, config.table_path("quarantine", "web_events"))
    reasons = sorted(r[0] for r in quarantine.select(F.substring_index("reason", ":", 1)).collect())
    assert reasons == sorted(
        [
            "invalid JSON",
            "JSON is not an object",
            "missing host",
            "missing ip",
            "unparseable event_time",
            "timestamp out of range",
            "host longer than 255 characters",
        ]
        * 2
    )
    # Country, region and city of each IP as the GeoLite2 database has them, read directly.
    places = silver.select("ip", "country", "region", "city").distinct().collect()
    with maxminddb.open_database(geoip.default_database()) as reader:
        assert sorted(tuple(r) for r in places) == sorted(
            (r.ip, *lookup(reader, r.ip)) for r in places
        )
    assert sum(r.region is not None for r in places) > len(places) // 2

    for table in GOLD:
        assert gold(spark, config, table) == rows_of(oracle[table], GOLD[table]), table
        assert exported(config, table) == gold(spark, config, table), table

    before = versions(spark, config)
    again = run_batch(spark, config, None, None, web_events=str(inbox))
    assert versions(spark, config) == before
    assert again["4/4 export"].counts == {}


def event(
    ts: str, ip: str = "81.2.69.160", host: str = "www.example.com", referrer: str | None = None
) -> str:
    ev = {"ip": ip, "host": host, "url": "/", "user_agent": "Mozilla/5.0", "event_time": ts}
    if referrer is not None:
        ev["referrer"] = referrer
    return json.dumps(ev)


def test_late_events_rewrite_the_sessions_they_extend_across_midnight(
    spark, warehouse_config, tmp_path
):
    config = warehouse_config
    first, late = tmp_path / "first", tmp_path / "late"
    first.mkdir()
    late.mkdir()
    lines = [
        # One session, and another 80 s later (until a late event joins them).
        event("2024-03-01T23:59:30Z"),
        event("2024-03-02T00:00:50Z"),
        event("2024-03-02T01:00:00+01:00", ip="2.2.2.2"),  # 00:00 UTC on D2
        event("2024-03-01T12:00:00Z", ip="3.3.3.3", referrer="-"),
    ]
    # A crawler every 50 s from D1 23:00 to D3 00:30: one session over three dates.
    crawl = datetime(2024, 3, 1, 23, 0)
    while crawl <= datetime(2024, 3, 3, 0, 30):
        lines.append(
            event(crawl.isoformat() + "Z", ip="66.249.66.1", referrer="https://www.google.com/")
        )
        crawl += timedelta(seconds=50)
    (first / "a.jsonl").write_text("\n".join(lines) + "\n")
    run_batch(spark, config, None, None, web_events=str(first))
    sessions_before = gold(spark, config, "sessions")
    assert [s[:2] for s in sessions_before if s[1] == "81.2.69.160"] == [
        (D1, "81.2.69.160"),
        (D2, "81.2.69.160"),
    ]

    # Late events, all on D2 or D3: one joins the two sessions of 81.2.69.160 (so D1's
    # grows and D2's goes), one extends the crawler's session begun on D1.
    extra = [event("2024-03-02T00:00:05Z"), event("2024-03-03T00:30:40Z", ip="66.249.66.1")]
    (late / "b.jsonl").write_text("\n".join(extra) + "\n")
    stages = run_batch(spark, config, None, None, web_events=str(late))
    assert stages["3/4 gold"].counts["web_events_dates_refreshed"] == 3

    oracle = reference_web_events([first / "a.jsonl", late / "b.jsonl"], gap_seconds=60)
    for table in GOLD:
        assert gold(spark, config, table) == rows_of(oracle[table], GOLD[table]), table
        assert exported(config, table) == gold(spark, config, table), table
    joined = [s for s in gold(spark, config, "sessions") if s[1] == "81.2.69.160"]
    assert joined == [
        (
            D1,
            "81.2.69.160",
            "www.example.com",
            datetime(2024, 3, 1, 23, 59, 30),
            datetime(2024, 3, 2, 0, 0, 50),
            3,
            80.0,
        )
    ]
    crawler = [s for s in gold(spark, config, "sessions") if s[1] == "66.249.66.1"]
    assert [(s[0], s[3], s[4], s[5]) for s in crawler] == [
        (D1, datetime(2024, 3, 1, 23, 0), datetime(2024, 3, 3, 0, 30, 40), 1838)
    ]


def test_the_committed_sample_counts_per_the_oracle():
    counts = reference_web_events([SAMPLES / "web_events.jsonl"])["counts"]
    assert counts == {
        "read": 300,
        "skipped_blank": 2,
        "quarantined": 14,
        "duplicates": 0,
        "silver": 284,
    }


def test_the_committed_sample_is_what_its_generator_writes(tmp_path):
    write_web_events(tmp_path / "web_events.jsonl", 300, seed=2)
    assert (tmp_path / "web_events.jsonl").read_bytes() == (
        SAMPLES / "web_events.jsonl"
    ).read_bytes()
