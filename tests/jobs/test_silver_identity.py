"""Silver, end to end from files: every hit once, ids across dates, no line that jams the run."""

from __future__ import annotations

import json
from pathlib import Path

import maxminddb
import pytest
from pyspark.sql import functions as F

from lakehouse.feeds.access_logs import silver as silver_access_logs
from lakehouse.feeds.product_views import silver as silver_product_views
from lakehouse.io import delta, geoip
from lakehouse.jobs import gold_daily, ingest_files
from lakehouse.jobs.runtime import JobRun

pytestmark = pytest.mark.slow  # whole jobs on Spark: seconds each (make test, not test-fast)


def _access(i: int, ip: str = "81.2.69.160", ua: str = "UA", path: str = "/feed", day: int = 1) -> str:
    return f'{ip} - - [0{day}/Mar/2024:10:00:{i % 60:02d} +0000] "GET {path} HTTP/1.1" 200 {i} "-" "{ua}"'


def _run(spark, config, dataset: str, path) -> dict[str, int]:
    run = JobRun("test")
    ingest_files.ingest(spark, config, dataset, str(path), run)
    silver = silver_access_logs if dataset == "access_logs" else silver_product_views
    silver.run(spark, config, run)
    return run.counts


def test_repeated_lines_are_hits_and_a_line_that_once_jammed_silver_flows(spark, warehouse_config, tmp_path):
    poll = _access(1)
    monster = _access(2, ua='\\"' * 3000)  # overflowed the regex stack: every later run died
    log = tmp_path / "access.log"
    log.write_text("\n".join([poll, poll, poll, poll, monster, _access(3)]) + "\n")
    counts = _run(spark, warehouse_config, "access_logs", log)
    assert (counts["read"], counts["written"], counts["duplicates"], counts["quarantined"]) == (6, 6, 0, 0)
    silver = delta.read_table(spark, warehouse_config.table_path("silver", "access_logs"))
    assert silver.where(F.col("bytes") == 1).count() == 4
    assert silver.where(F.length("user_agent") == 3000).count() == 1
    # A later run with clean lines only goes through too, and the old lines are not redone.
    more = tmp_path / "more.log"
    more.write_text(_access(4) + "\n")
    counts = _run(spark, warehouse_config, "access_logs", more)
    assert (counts["read"], counts["written"]) == (1, 1)


def test_a_grown_file_quarantines_its_bad_lines_once(spark, warehouse_config, tmp_path):
    log = tmp_path / "access.log"
    log.write_text(_access(1) + "\nnot a log line\n")
    assert _run(spark, warehouse_config, "access_logs", log)["quarantined"] == 1
    with log.open("a") as f:
        f.write(_access(2) + "\n")
    counts = _run(spark, warehouse_config, "access_logs", log)
    assert (counts["read"], counts["written"], counts.get("quarantined", 0)) == (1, 1, 0)
    assert delta.read_table(spark, warehouse_config.table_path("quarantine", "access_logs")).count() == 1


def _view(event_id: str, product: str, day: int, device: str = "d1") -> str:
    return json.dumps({"_id": event_id, "product_id": product, "device_id": device, "timestamp": f"2024-03-0{day}T10:00:00Z"})


def test_an_id_seen_again_on_another_date_is_a_duplicate(spark, warehouse_config, tmp_path):
    first = tmp_path / "a.jsonl"
    # Two copies of one id in one file: the first in source order wins.
    first.write_text("\n".join([_view("e1", "p1", 1), _view("e1", "p-late", 1), _view("e2", "p2", 1)]) + "\n")
    counts = _run(spark, warehouse_config, "product_views", first)
    assert (counts["written"], counts["duplicates"]) == (2, 1)
    second = tmp_path / "b.jsonl"
    second.write_text("\n".join([_view("e1", "p1", 2), _view("e3", "p3", 2)]) + "\n")
    counts = _run(spark, warehouse_config, "product_views", second)
    assert (counts["written"], counts["duplicates"]) == (1, 1)
    silver = delta.read_table(spark, warehouse_config.table_path("silver", "product_views"))
    assert sorted((r.event_id, r.product_id, str(r.event_date)) for r in silver.collect()) == [
        ("e1", "p1", "2024-03-01"),
        ("e2", "p2", "2024-03-01"),
        ("e3", "p3", "2024-03-02"),
    ]
    gold_daily.run(spark, warehouse_config, JobRun("gold"))
    views = delta.read_table(spark, warehouse_config.table_path("gold", "product_views_daily"))
    assert sorted((str(r.report_date), r.product_id, r.view_count) for r in views.collect()) == [
        ("2024-03-01", "p1", 1),
        ("2024-03-01", "p2", 1),
        ("2024-03-02", "p3", 1),
    ]


def test_each_ip_and_agent_is_classified_once_with_city_and_coordinates(spark, warehouse_config, tmp_path):
    ips = ["81.2.69.160", "89.160.20.112", "175.16.199.0", "10.0.0.1"]
    log = tmp_path / "a.log"
    log.write_text("\n".join(_access(i, ip=ip, ua=f"UA{i % 2}") for i, ip in enumerate(ips)) + "\n")
    counts = _run(spark, warehouse_config, "access_logs", log)
    assert (counts["ips_located"], counts["user_agents_classified"]) == (4, 2)
    more = tmp_path / "b.log"
    more.write_text("\n".join(_access(i, ip=ip, ua="UA1") for i, ip in enumerate(ips[:2] + ["2.125.160.216"])) + "\n")
    counts = _run(spark, warehouse_config, "access_logs", more)
    assert (counts["ips_located"], counts["user_agents_classified"]) == (1, 0)
    silver = delta.read_table(spark, warehouse_config.table_path("silver", "access_logs"))
    got = {(r.ip, r.country, r.city, r.latitude, r.longitude) for r in silver.collect()}
    with maxminddb.open_database(geoip.default_database()) as reader:
        expected = set()
        for ip in [*ips, "2.125.160.216"]:
            rec = reader.get(ip) or {}
            loc = rec.get("location") or {}
            city = ((rec.get("city") or {}).get("names") or {}).get("en")
            expected.add((ip, (rec.get("country") or {}).get("iso_code"), city, loc.get("latitude"), loc.get("longitude")))
    assert got == expected
    assert sum(1 for row in expected if row[2] is not None) == 4  # the database knows these cities
    dim = delta.read_table(spark, warehouse_config.table_path("silver", "dim_ip_geo"))
    assert dim.count() == 5
    assert {r.classifier for r in dim.collect()} == {geoip.build_of(geoip.default_database())}


def test_a_batch_replayed_after_a_crash_writes_nothing_again(spark, warehouse_config, tmp_path):
    """The process died after silver's commits and before the stream's checkpoint recorded
    the batch: the next run replays that batch, finds it in the tables' commits and adds nothing."""
    log = tmp_path / "access.log"
    log.write_text("\n".join([_access(1), "not a log line", _access(2), _access(3)]) + "\n")
    counts = _run(spark, warehouse_config, "access_logs", log)
    assert (counts["read"], counts["written"], counts["quarantined"]) == (4, 3, 1)

    def rows() -> tuple[int, int, int]:
        return tuple(
            delta.read_table(spark, warehouse_config.table_path(layer, name)).count()
            for layer, name in (("silver", "access_logs"), ("quarantine", "access_logs"), ("_meta", "silver_batches"))
        )

    assert rows() == (3, 1, 1)
    commits = Path(warehouse_config.checkpoint("silver_access_logs")) / "commits"
    removed = sorted(commits.glob("[0-9]*"), key=lambda p: int(p.name))[-1]
    removed.unlink()  # the batch ran, its checkpoint commit did not
    (commits / f".{removed.name}.crc").unlink(missing_ok=True)
    delta._written_batches.clear()  # a new process: nothing remembered, the commits are asked
    replay = JobRun("replay")
    silver_access_logs.run(spark, warehouse_config, replay)
    assert replay.counts.get("read") == 4  # the batch did run again
    assert rows() == (3, 1, 1)
