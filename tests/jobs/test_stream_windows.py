"""`lakehouse stream-windows` on a local warehouse (no Kafka): bronze web events fed in rounds,
the stream drained with availableNow after each, gold checked against a plain-Python count
and against the batch recompute."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from pyspark.sql import functions as F

from lakehouse.io import delta
from lakehouse.jobs import ingest_files, stream_windows
from lakehouse.jobs.batch import run_batch
from lakehouse.jobs.runtime import JobRun
from lakehouse.jobs.stream_metrics import StreamMetrics
from tests.reference_web import GOLD_COLUMNS

pytestmark = pytest.mark.slow  # whole jobs on Spark: seconds each (make test, not test-fast)

DAY = datetime(2024, 3, 1, tzinfo=UTC)
FINAL = DAY + timedelta(hours=13)  # far past everything: closes every window and session before it
SHOP, BLOG = "shop.example", "blog.example"
GOOGLE, HN = "https://www.google.com/search?q=shoes", "https://news.ycombinator.com/item?id=1"
WINDOW_TABLES = ("traffic_5min", "traffic_5min_referrer", "sessions")


def at(hh: int, mm: int, ss: int = 0) -> datetime:
    return DAY.replace(hour=hh, minute=mm, second=ss)


def event(ts: datetime, ip: str, host: str, referrer: str | None = None, url: str = "/") -> dict:
    return {
        "ip": ip,
        "host": host,
        "url": url,
        "referrer": referrer,
        "user_agent": "Mozilla/5.0",
        "event_time": ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def write_round(folder, name: str, events: list[dict], junk: bool = False) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(e) for e in events]
    if junk:  # an invalid record and a blank line: silver's business, never counted here
        lines += ['{"ip": "10.9.9.9", "host": ', ""]
    path = folder / f"{name}.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def ingest_and_stream(spark, config, path: str) -> JobRun:
    ingest_files.ingest(spark, config, "web_events", path, JobRun("test ingest"))
    run = JobRun("test stream-windows")
    stream_windows.run_windows(spark, config, run, "availableNow")
    return run


# --- the oracle: the contract counted by hand ---------------------------------------------


def _stamp(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%d %H:%M:%S")


def _parsed(events: list[dict]) -> list[tuple[datetime, str, str, str]]:
    out = []
    for e in events:
        ts = datetime.strptime(e["event_time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        ref = urlsplit(e["referrer"]).hostname if e["referrer"] else None
        out.append((ts, e["ip"], e["host"], ref or "(direct)"))
    return out


def _window(ts: datetime) -> tuple[datetime, datetime]:
    start = ts.replace(minute=ts.minute - ts.minute % 5, second=0)
    return start, start + timedelta(minutes=5)


def oracle(events: list[dict], gap: int) -> dict[str, set[tuple]]:
    hits, ips, ref_hits = Counter(), defaultdict(set), Counter()
    visits = defaultdict(list)
    for ts, ip, host, ref in _parsed(events):
        start, end = _window(ts)
        key = (start.date().isoformat(), _stamp(start), _stamp(end), host)
        hits[key] += 1
        ips[key].add(ip)
        ref_hits[(*key, ref)] += 1
        visits[(ip, host)].append(ts)
    sessions = set()
    for (ip, host), times in visits.items():
        times.sort()
        groups = [[times[0]]]
        for ts in times[1:]:
            if (ts - groups[-1][-1]).total_seconds() < gap:
                groups[-1].append(ts)
            else:
                groups.append([ts])
        for g in groups:
            sessions.add(
                (
                    g[0].date().isoformat(),
                    ip,
                    host,
                    _stamp(g[0]),
                    _stamp(g[-1]),
                    len(g),
                    float((g[-1] - g[0]).total_seconds()),
                )
            )
    return {
        "traffic_5min": {(*k, n, len(ips[k])) for k, n in hits.items()},
        "traffic_5min_referrer": {(*k, n) for k, n in ref_hits.items()},
        "sessions": sessions,
    }


def late_oracle(late: list[dict]) -> set[tuple]:
    counts = Counter()
    for ts, _ip, host, _ref in _parsed(late):
        start, end = _window(ts)
        counts[(start.date().isoformat(), _stamp(start), _stamp(end), host)] += 1
    return {(*k, n) for k, n in counts.items()}


# --- gold as plain tuples -----------------------------------------------------------------

COLUMNS = {
    **GOLD_COLUMNS,
    "late_events": ("report_date", "window_start", "window_end", "host", "late_events"),
}


def gold(spark, config, table: str) -> set[tuple]:
    path = config.table_path("gold", table)
    if not delta.table_exists(spark, path):
        return set()
    df = delta.read_table(spark, path)
    cols = []
    for name in COLUMNS[table]:
        kind = df.schema[name].dataType.typeName()
        col = F.col(name)
        if kind in ("date", "timestamp"):
            col = col.cast("string")
        elif name == "duration_s":
            col = col.cast("double")
        elif name == "referrer_host":
            col = F.coalesce(col, F.lit("(direct)"))
        cols.append(col.alias(name))
    return {tuple(r) for r in df.select(*cols).collect()}


def sql_rows(spark, config, table: str) -> set[tuple]:
    """The table as the export database holds it (SQLite here, PostgreSQL on the stack), as `gold` gives it."""
    from lakehouse.io import jdbc
    from lakehouse.jobs.export_gold import target_from

    names = COLUMNS[table]
    with jdbc.connect(spark, target_from(config)) as conn:
        rows = jdbc.query(conn, f"SELECT {', '.join(names)} FROM {table}")

    def value(name: str, text: str | None):
        if text is None:
            return "(direct)" if name == "referrer_host" else None
        if name == "report_date":
            return text[:10]
        if name.startswith(("window_", "session_")):
            return text[:19]
        if name == "duration_s":
            return float(text)
        return int(text) if name in ("hits", "unique_ips", "late_events") else text

    return {tuple(value(n, v) for n, v in zip(names, row, strict=True)) for row in rows}


def without_final(rows: set[tuple], table: str) -> set[tuple]:
    """Rows not made by the closing event (batch gold has its still-open window and session)."""
    final = _stamp(FINAL)
    if table == "sessions":
        return {r for r in rows if r[3] != final}
    return {r for r in rows if r[1] != final}


# --- data ------------------------------------------------------------------------------------

ROUND_1 = [
    event(at(10, 0, 5), "10.0.0.1", SHOP, GOOGLE),
    event(at(10, 0, 30), "10.0.0.1", SHOP, GOOGLE, "/cart"),
    event(at(10, 1, 0), "10.0.0.2", SHOP),
    event(at(10, 1, 10), "10.0.0.2", BLOG, HN),
    event(at(10, 2, 45), "10.0.0.1", SHOP),  # 2m15s after the last: a second session of 10.0.0.1
    event(at(10, 4, 59), "10.0.0.3", BLOG),
    event(at(10, 5, 0), "10.0.0.3", BLOG, HN),
    event(at(10, 6, 0), "10.0.0.1", SHOP, GOOGLE),
]
ROUND_2 = [
    event(at(10, 6, 30), "10.0.0.1", SHOP),
    event(at(10, 7, 0), "10.0.0.4", SHOP, HN),
    event(at(10, 7, 0), "10.0.0.4", SHOP, HN),  # the same line twice is two hits
    event(at(10, 9, 59), "10.0.0.2", BLOG),
    event(at(10, 11, 0), "10.0.0.2", BLOG, GOOGLE),
    event(at(10, 14, 0), "10.0.0.3", SHOP),
]
CLOSER = [event(FINAL, "10.0.0.99", "closer.example")]


def test_stream_equals_the_oracle_and_the_batch_recompute_without_late_events(
    spark, warehouse_config, tmp_path
):
    config = warehouse_config
    gap = config.web_events.session_gap_seconds
    assert (gap, config.web_events.lateness_seconds) == (
        60,
        120,
    )  # what the expectations below assume
    inputs = tmp_path / "inputs"

    run = ingest_and_stream(spark, config, write_round(inputs, "r1", ROUND_1, junk=True))
    assert run.counts["events"] == 8 and run.counts["late_events"] == 0
    # Watermark 10:04: no window has closed; the sessions ending by 10:03 have (end + 60 s):
    # 10.0.0.1's first two on the shop and 10.0.0.2's on the shop and on the blog.
    assert gold(spark, config, "traffic_5min") == set()
    expected_r1 = {r for r in oracle(ROUND_1, gap)["sessions"] if r[4] <= "2024-03-01 10:03:00"}
    assert {r[3] for r in expected_r1} == {
        "2024-03-01 10:00:05",
        "2024-03-01 10:01:00",
        "2024-03-01 10:01:10",
        "2024-03-01 10:02:45",
    }
    assert gold(spark, config, "sessions") == expected_r1

    run = ingest_and_stream(spark, config, write_round(inputs, "r2", ROUND_2))
    assert run.counts["events"] == 6 and run.counts["late_events"] == 0
    # Watermark 10:12: the windows ending 10:05 and 10:10 have closed, exactly as counted.
    expected = oracle(ROUND_1 + ROUND_2, gap)
    closed = {r for r in expected["traffic_5min"] if r[2] <= "2024-03-01 10:10:00"}
    assert closed == {
        ("2024-03-01", "2024-03-01 10:00:00", "2024-03-01 10:05:00", SHOP, 4, 2),
        ("2024-03-01", "2024-03-01 10:00:00", "2024-03-01 10:05:00", BLOG, 2, 2),
        ("2024-03-01", "2024-03-01 10:05:00", "2024-03-01 10:10:00", SHOP, 4, 2),
        ("2024-03-01", "2024-03-01 10:05:00", "2024-03-01 10:10:00", BLOG, 2, 2),
    }
    assert gold(spark, config, "traffic_5min") == closed

    ingest_and_stream(spark, config, write_round(inputs, "r3", CLOSER))
    streamed = {t: gold(spark, config, t) for t in WINDOW_TABLES}
    for table in WINDOW_TABLES:
        assert streamed[table] == expected[table], table
        # Upserted into the export database as they closed, no export run in between.
        assert sql_rows(spark, config, table) == expected[table], table
    assert len(streamed["sessions"]) == 10
    assert gold(spark, config, "late_events") == set()

    # The batch path on a fresh warehouse, from the same files: the same rows (plus the
    # closing event's window and session, still open for the stream).
    batch_config = config.with_warehouse(str(tmp_path / "batch_warehouse"))
    run_batch(spark, batch_config, None, None, web_events=str(inputs))
    for table in WINDOW_TABLES:
        batch_rows = gold(spark, batch_config, table)
        assert without_final(batch_rows, table) == streamed[table], table
        assert len(batch_rows) == len(streamed[table]) + 1
        # And the daily export of the recompute holds what the stream upserted.
        assert without_final(sql_rows(spark, batch_config, table), table) == sql_rows(spark, config, table), table

    # Running the stream again changes nothing.
    ingest_and_stream(spark, config, write_round(inputs, "r3", CLOSER))
    assert {t: gold(spark, config, t) for t in WINDOW_TABLES} == streamed
    assert {t: sql_rows(spark, config, t) for t in WINDOW_TABLES} == streamed


LATE_1 = [
    event(at(10, 0, 10), "10.0.0.1", SHOP, GOOGLE),
    event(at(10, 2, 0), "10.0.0.2", SHOP),
    event(at(10, 6, 0), "10.0.0.2", BLOG, HN),
    event(at(10, 11, 0), "10.0.0.3", SHOP),  # watermark 10:09 after this round
]
LATE_EVENTS = [
    event(at(10, 3, 0), "10.0.0.4", SHOP, HN),  # its window closed at 10:05
    event(at(10, 4, 0), "10.0.0.5", SHOP),
    event(at(10, 8, 0), "10.0.0.2", BLOG),  # window still open, but behind the watermark: late too
]
ON_TIME_2 = [event(at(10, 12, 0), "10.0.0.3", SHOP, GOOGLE)]


def test_late_events_are_counted_per_window_and_the_batch_recompute_includes_them(
    spark, warehouse_config, tmp_path, monkeypatch
):
    config = warehouse_config
    gap = config.web_events.session_gap_seconds
    inputs = tmp_path / "inputs"
    ingest_and_stream(spark, config, write_round(inputs, "r1", LATE_1))

    # The batch with the late events dies after writing gold, before its state row: the
    # restarted stream replays it, and nothing is counted twice.
    real_record = stream_windows.record_state

    def crash(*_args, **_kwargs):
        raise RuntimeError("killed before the state row")

    monkeypatch.setattr(stream_windows, "record_state", crash)
    with pytest.raises(Exception, match="killed before the state row"):
        ingest_and_stream(spark, config, write_round(inputs, "r2", LATE_EVENTS + ON_TIME_2))
    monkeypatch.setattr(stream_windows, "record_state", real_record)
    run = JobRun("test stream-windows")
    metrics = StreamMetrics()  # what its Prometheus endpoint serves
    stream_windows.run_windows(spark, config, run, "availableNow", metrics=metrics)
    assert (run.counts["events"], run.counts["late_events"]) == (4, 3)
    rows_in = metrics.registry.get_sample_value("lakehouse_stream_rows_total", {"dataset": "web_events"})
    assert rows_in == len(LATE_EVENTS + ON_TIME_2)  # the replayed batch's bronze rows, once

    ingest_and_stream(spark, config, write_round(inputs, "r3", CLOSER))
    assert (
        gold(spark, config, "late_events")
        == {
            ("2024-03-01", "2024-03-01 10:00:00", "2024-03-01 10:05:00", SHOP, 2),
            ("2024-03-01", "2024-03-01 10:05:00", "2024-03-01 10:10:00", BLOG, 1),
        }
        == late_oracle(LATE_EVENTS)
    )
    # The stream's windows count the on-time events only ...
    on_time = oracle(LATE_1 + ON_TIME_2, gap)
    for table in WINDOW_TABLES:
        assert gold(spark, config, table) == on_time[table], table
    assert ("2024-03-01", "2024-03-01 10:00:00", "2024-03-01 10:05:00", SHOP, 2, 2) in on_time[
        "traffic_5min"
    ]

    # ... and the daily batch recompute of the date includes the late ones, exactly.
    run_batch(spark, config, None, None, export=False)
    everything = oracle(LATE_1 + LATE_EVENTS + ON_TIME_2 + CLOSER, gap)
    for table in WINDOW_TABLES:
        assert gold(spark, config, table) == everything[table], table
    assert ("2024-03-01", "2024-03-01 10:00:00", "2024-03-01 10:05:00", SHOP, 4, 4) in everything[
        "traffic_5min"
    ]
    recomputed = {t: gold(spark, config, t) for t in (*WINDOW_TABLES, "late_events")}

    # Running the stream again changes nothing (neither gold nor the late counts).
    stream_windows.run_windows(spark, config, JobRun("again"), "availableNow")
    assert {t: gold(spark, config, t) for t in (*WINDOW_TABLES, "late_events")} == recomputed
