"""The IP collector end to end: real HTTP requests to `lakehouse serve`'s app land IPs in a
folder, `lakehouse batch --ip-events` takes them to silver, gold/ip_geolocation and the
SQLite export; every accepted IP counted once, a new sighting updates its IP's row."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from pathlib import Path

import httpx
import maxminddb
import pytest

from lakehouse.api.app import create_app
from lakehouse.io import delta, geoip
from lakehouse.io.ip_sink import LandingSink
from lakehouse.jobs.batch import run_batch
from tests.api.conftest import running

pytestmark = pytest.mark.slow  # whole jobs on Spark: seconds each (make test, not test-fast)

# Written beside the collector's files by another producer: 3 bad records, a blank line,
# and one good sighting (a private address: located nowhere).
PRODUCED = "\n".join(
    [
        "{not json",
        json.dumps({"ip": "300.1.1.1", "received_at": "2024-03-01T10:00:00Z", "request_id": "p"}),
        json.dumps({"ip": "10.0.0.1", "request_id": "p"}),
        "",
        json.dumps({"ip": "10.0.0.1", "received_at": "2024-03-01T10:00:00Z", "request_id": "p"}),
    ]
)
QUARANTINE = [
    "invalid JSON",
    "invalid ip: not an IPv4 or IPv6 address: 300.1.1.1",
    "missing received_at",
]
COLUMNS = ("ip", "country", "city", "latitude", "longitude", "first_seen", "last_seen", "hits")


def collect(config, landing: Path, requests: list[tuple[str, dict]]) -> list[dict]:
    """POST each (route, body) to a running collector writing to `landing`; the answers."""
    app = create_app(config, sink=LandingSink(landing, roll_seconds=0))
    with running(app) as url, httpx.Client(base_url=url, timeout=30) as http:
        answers = [http.post(route, json=body) for route, body in requests]
    assert {a.status_code for a in answers} == {202}
    return [a.json() for a in answers]


def landed(landing: Path) -> list[dict]:
    """The records the collector wrote (its own files only)."""
    return [json.loads(line) for p in sorted(landing.rglob("ip-*.jsonl")) for line in p.read_text().splitlines()]


def expected_gold(records: list[dict], database: Path) -> list[tuple]:
    """The oracle: gold/ip_geolocation from the landed records and the GeoIP database itself."""
    by_ip: dict[str, list[datetime]] = {}
    for r in records:
        by_ip.setdefault(r["ip"], []).append(datetime.fromisoformat(r["received_at"]).replace(tzinfo=None))
    rows = []
    with maxminddb.open_database(str(database)) as reader:
        for ip, seen in sorted(by_ip.items()):
            rec = reader.get(ip) or {}
            location = rec.get("location") or {}
            rows.append((
                ip, (rec.get("country") or {}).get("iso_code"), ((rec.get("city") or {}).get("names") or {}).get("en"),
                location.get("latitude"), location.get("longitude"), min(seen), max(seen), len(seen),
            ))  # fmt: skip
    return rows


def gold(spark, config) -> list[tuple]:
    table = delta.read_table(spark, config.table_path("gold", "ip_geolocation"))
    return [tuple(r) for r in table.select(*COLUMNS).orderBy("ip").collect()]


def exported(config) -> list[tuple]:
    db = sqlite3.connect(config.export.url.removeprefix("jdbc:sqlite:"))
    try:
        rows = db.execute(f"SELECT {', '.join(COLUMNS)} FROM ip_geolocation ORDER BY ip").fetchall()
    finally:
        db.close()
    return [(*r[:5], datetime.fromisoformat(r[5]), datetime.fromisoformat(r[6]), r[7]) for r in rows]


def versions(spark, config) -> dict[str, int]:
    return {
        layer: delta.table_version(spark, config.table_path(layer, name))
        for layer, name in (("bronze", "ip_events"), ("silver", "ip_events"), ("gold", "ip_geolocation"))
    }


@pytest.fixture
def first_run(spark, warehouse_config, tmp_path):
    landing = tmp_path / "landing"
    answers = collect(
        warehouse_config,
        landing,
        [
            ("/ingest-ips", {"ips": ["81.2.69.160", "2001:DB8::1", "81.2.69.160", "not-an-ip"]}),
            ("/ingest-ip", {"ip": "89.160.20.112"}),
            ("/ingest-ip", {"ip": "81.2.69.160"}),
        ],
    )
    (landing / "producer.jsonl").write_text(PRODUCED + "\n")
    stages = run_batch(spark, warehouse_config, None, None, ip_events=str(landing))
    return {"config": warehouse_config, "landing": landing, "answers": answers, "stages": stages}


def test_every_accepted_ip_reaches_silver_once_and_gold_has_a_row_per_ip(spark, first_run):
    config, stages = first_run["config"], first_run["stages"]
    assert [(a["accepted"], len(a["rejected"])) for a in first_run["answers"]] == [(3, 1), (1, 0), (1, 0)]
    collected = landed(first_run["landing"])
    assert sorted(r["ip"] for r in collected) == ["2001:db8::1", "81.2.69.160", "81.2.69.160", "81.2.69.160", "89.160.20.112"]
    counts = stages["2/4 silver ip_events"].counts
    assert {k: counts[k] for k in ("read", "skipped_blank", "quarantined", "written", "duplicates")} == {
        "read": 10, "skipped_blank": 1, "quarantined": 3, "written": 6, "duplicates": 0,
    }  # fmt: skip
    silver = delta.read_table(spark, config.table_path("silver", "ip_events"))
    assert sorted(r.ip for r in silver.collect()) == sorted([r["ip"] for r in collected] + ["10.0.0.1"])
    quarantine = delta.read_table(spark, config.table_path("quarantine", "ip_events"))
    assert sorted(r.reason for r in quarantine.collect()) == QUARANTINE

    produced = {"ip": "10.0.0.1", "received_at": "2024-03-01T10:00:00+00:00"}
    expected = expected_gold([*collected, produced], geoip.database_path(config.geoip_database))
    # The oracle locates the public address (a lookup that returns nothing would go unseen).
    assert expected[2][0] == "81.2.69.160" and None not in expected[2] and expected[2][-1] == 3
    assert gold(spark, config) == expected
    assert stages["3/4 gold"].counts["ip_geolocation_added"] == 4
    assert exported(config) == expected


def test_a_new_sighting_updates_its_ip_and_a_rerun_changes_nothing(spark, first_run):
    config, landing = first_run["config"], first_run["landing"]
    before = {row[0]: row for row in gold(spark, config)}
    collect(config, landing, [("/ingest-ip", {"ip": "81.2.69.160"})])
    stages = run_batch(spark, config, None, None, ip_events=str(landing))
    assert stages["2/4 silver ip_events"].counts["written"] == 1
    assert (stages["3/4 gold"].counts["ip_geolocation_added"], stages["3/4 gold"].counts["ip_geolocation_updated"]) == (0, 1)
    newest = max(datetime.fromisoformat(r["received_at"]).replace(tzinfo=None) for r in landed(landing))
    after = {row[0]: row for row in gold(spark, config)}
    assert sorted(after) == sorted(before)  # the IP was not added twice
    assert after["81.2.69.160"] == (*before["81.2.69.160"][:6], newest, 4)
    assert {ip: row for ip, row in after.items() if ip != "81.2.69.160"} == {
        ip: row for ip, row in before.items() if ip != "81.2.69.160"
    }
    assert exported(config) == sorted(after.values())

    unchanged = versions(spark, config)
    run_batch(spark, config, None, None, ip_events=str(landing))
    assert versions(spark, config) == unchanged
    assert exported(config) == sorted(after.values())


def test_in_the_local_profile_the_collector_lands_files_where_the_hourly_dags_bronze_job_reads(spark, warehouse_config, tmp_path):
    """One setting (`ip_events.sink`, auto: landing here) decides both sides."""
    from dataclasses import replace

    from lakehouse.feeds.ip_events import silver as silver_ip_events
    from lakehouse.io.ip_sink import sink_from
    from lakehouse.jobs import bronze_feed
    from lakehouse.jobs.runtime import JobRun

    config = replace(warehouse_config, ip_events=replace(warehouse_config.ip_events, landing=tmp_path / "landing", roll_seconds=0.01))
    assert config.ip_events.sink == "landing" and bronze_feed.source_of(config, "ip_events") == ("landing", str(tmp_path / "landing"))
    with running(create_app(config, sink=sink_from(config))) as url, httpx.Client(base_url=url, timeout=30) as http:
        assert http.post("/ingest-ips", json={"ips": ["81.2.69.160", "::ffff:89.160.20.112"]}).status_code == 202
    bronze = JobRun("bronze")
    assert bronze_feed.land(spark, config, "ip_events", bronze) == 2
    silver_ip_events.run(spark, config, JobRun("silver"))
    rows = delta.read_table(spark, config.table_path("silver", "ip_events")).select("ip").collect()
    assert sorted(r.ip for r in rows) == ["81.2.69.160", "89.160.20.112"]
