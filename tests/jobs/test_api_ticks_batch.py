"""Poll a local HTTP server into a landing folder, then `lakehouse batch --api-ticks` it:
silver, quarantine, gold and the SQLite export hold exactly the ticks served, each once."""

from __future__ import annotations

import sqlite3
from datetime import date, datetime

import pytest
from pyspark.sql import functions as F

from lakehouse.io import delta
from lakehouse.jobs import poll
from lakehouse.jobs.batch import run_batch
from tests.test_poll import API_ERROR, HTML, T0, Reply, ScriptedServer, body, ticker

pytestmark = pytest.mark.slow  # whole jobs on Spark: seconds each (make test, not test-fast)

# T0 is 2024-03-01 23:59:00 UTC; a minute later is the next UTC day.
SECOND = 1000
SCRIPT = [
    Reply(200, body(ticker("BTCUSDT", "100.50", T0))),
    Reply(
        200,
        body(
            [
                ticker("BTCUSDT", "101.50", T0 + 30 * SECOND),
                ticker("ETHUSDT", "50.25", T0 + 30 * SECOND),
            ]
        ),
    ),
    Reply(200, body([ticker("BTCUSDT", "101.50", T0 + 30 * SECOND)])),  # repeated: nothing lands
    Reply(404, HTML, {"Content-Type": "text/html"}),
    Reply(400, API_ERROR),
    Reply(
        200,
        body(
            [
                ticker("BTCUSDT", "abc", T0 + 60 * SECOND),
                ticker("ETHUSDT", "51.75", T0 + 120 * SECOND),
                {"lastPrice": "1", "closeTime": T0 + 120 * SECOND},
            ]
        ),
    ),
    Reply(200, body(ticker("BTCUSDT", "99.00", T0 + 180 * SECOND))),
    Reply(200, body(ticker("X" * 65, "5", T0 + 180 * SECOND))),
]
# Ticks landed again (a poller that died before saving its state, polling an endpoint that
# answers a list), plus a blank line. (A file with the very bytes of an earlier one would be
# a copy to the ingest, which identifies files by content, and add nothing to bronze.)
REPLAYED = (
    body(
        [
            ticker("BTCUSDT", "99.00", T0 + 180 * SECOND),
            ticker("ETHUSDT", "51.75", T0 + 120 * SECOND),
        ]
    )
    + b"\n\n"
)

SILVER = [
    ("BTCUSDT", 100.5, datetime(2024, 3, 1, 23, 59), date(2024, 3, 1)),
    ("BTCUSDT", 101.5, datetime(2024, 3, 1, 23, 59, 30), date(2024, 3, 1)),
    ("ETHUSDT", 50.25, datetime(2024, 3, 1, 23, 59, 30), date(2024, 3, 1)),
    ("BTCUSDT", 99.0, datetime(2024, 3, 2, 0, 2), date(2024, 3, 2)),
    ("ETHUSDT", 51.75, datetime(2024, 3, 2, 0, 1), date(2024, 3, 2)),
]
QUARANTINE = sorted(
    [
        'not JSON: an HTML page "404 Not Found"',
        "API error -1121: Invalid symbol.",
        "non-numeric price: lastPrice=abc (tick 1 of 3)",
        "missing symbol (symbol) (tick 3 of 3)",
        "symbol longer than 64 characters",
    ]
)
GOLD = [
    (date(2024, 3, 1), "BTCUSDT", 101.0, 100.5, 101.5, 2),
    (date(2024, 3, 1), "ETHUSDT", 50.25, 50.25, 50.25, 1),
    (date(2024, 3, 2), "BTCUSDT", 99.0, 99.0, 99.0, 1),
    (date(2024, 3, 2), "ETHUSDT", 51.75, 51.75, 51.75, 1),
]
GOLD_COLUMNS = ("report_date", "symbol", "avg_price", "min_price", "max_price", "n_records")


def poll_into(config, landing, script, polls):
    with ScriptedServer(script) as server:
        setup = poll.setup(
            config,
            url=server.url,
            interval=0,
            to="landing",
            landing=str(landing),
            backoff_seconds=0.1,
        )
        return poll.poll(setup, polls)


def table(spark, config, layer, columns, order=None):
    rows = delta.read_table(
        spark, config.table_path(layer, "api_ticks" if layer != "gold" else "api_daily_summary")
    )
    return [tuple(r) for r in rows.select(*columns).orderBy(*(order or columns)).collect()]


def silver(spark, config):
    return table(
        spark,
        config,
        "silver",
        ("symbol", "price", "event_time", "event_date"),
        ("event_date", "symbol", "event_time"),
    )


def versions(spark, config):
    return {
        name: delta.table_version(spark, config.table_path(layer, name))
        for layer, name in (
            ("bronze", "api_ticks"),
            ("silver", "api_ticks"),
            ("quarantine", "api_ticks"),
            ("gold", "api_daily_summary"),
        )
    }


def exported(config):
    db = sqlite3.connect(config.export.url.removeprefix("jdbc:sqlite:"))
    try:
        rows = db.execute(
            f"SELECT {', '.join(GOLD_COLUMNS)} FROM api_daily_summary ORDER BY report_date, symbol"
        ).fetchall()
    finally:
        db.close()
    return [(date.fromisoformat(str(r[0])[:10]), *r[1:]) for r in rows]


@pytest.fixture
def first_run(spark, warehouse_config, tmp_path):
    landing = tmp_path / "landing"
    stats = poll_into(warehouse_config, landing, SCRIPT, len(SCRIPT))
    (landing / "replayed.jsonl").write_bytes(REPLAYED)
    stages = run_batch(spark, warehouse_config, None, None, api_ticks=str(landing))
    return {"config": warehouse_config, "landing": landing, "poll": stats, "stages": stages}


def test_silver_quarantine_and_gold_hold_each_tick_once(spark, first_run):
    config, stages = first_run["config"], first_run["stages"]
    assert (first_run["poll"].records, first_run["poll"].new_ticks) == (7, 7)
    # 7 poll files + the replayed file (2 lines) = 9 bronze records; 13 entries: 5 ticks
    # to silver, 5 quarantined, the 2 replayed ticks duplicates, the blank line skipped.
    assert stages["1/4 bronze"].counts["api_ticks_lines"] == 9
    counts = stages["2/4 silver api_ticks"].counts
    assert {
        k: counts[k]
        for k in ("records", "read", "written", "quarantined", "duplicates", "skipped_blank")
    } == {
        "records": 9,
        "read": 13,
        "written": 5,
        "quarantined": 5,
        "duplicates": 2,
        "skipped_blank": 1,
    }
    assert silver(spark, config) == sorted(SILVER, key=lambda r: (r[3], r[0], r[2]))
    assert sorted(r[0] for r in table(spark, config, "quarantine", ("reason",))) == QUARANTINE
    assert table(spark, config, "gold", GOLD_COLUMNS) == GOLD
    assert exported(config) == GOLD
    batches = delta.read_table(spark, config.table_path("_meta", "silver_batches")).where(
        F.col("dataset") == "api_ticks"
    )
    assert [
        tuple(r)
        for r in batches.select(
            "read", "skipped_blank", "quarantined", "written", "duplicates"
        ).collect()
    ] == [(13, 1, 5, 5, 2)]


def test_a_second_run_adds_only_new_ticks_and_a_third_changes_nothing(spark, first_run):
    config, landing = first_run["config"], first_run["landing"]
    # The poller lost its state: it lands a tick silver holds again, and a new one.
    (landing / "_poll_state.json").unlink()
    again = [
        Reply(
            200,
            body(
                [
                    ticker("BTCUSDT", "99.00", T0 + 180 * SECOND),
                    ticker("BTCUSDT", "98.00", T0 + 240 * SECOND),
                ]
            ),
        )
    ]
    assert poll_into(config, landing, again, 1).new_ticks == 2
    counts = run_batch(spark, config, None, None, api_ticks=str(landing))[
        "2/4 silver api_ticks"
    ].counts
    assert {k: counts[k] for k in ("read", "written", "quarantined", "duplicates")} == {
        "read": 2,
        "written": 1,
        "quarantined": 0,
        "duplicates": 1,
    }
    gold = [*GOLD[:2], (date(2024, 3, 2), "BTCUSDT", 98.5, 98.0, 99.0, 2), GOLD[3]]
    assert table(spark, config, "gold", GOLD_COLUMNS) == gold
    assert exported(config) == gold

    before = (
        versions(spark, config),
        silver(spark, config),
        table(spark, config, "gold", GOLD_COLUMNS),
    )
    stages = run_batch(spark, config, None, None, api_ticks=str(landing))
    assert stages["2/4 silver api_ticks"].counts == {}
    assert (
        versions(spark, config),
        silver(spark, config),
        table(spark, config, "gold", GOLD_COLUMNS),
    ) == before
    assert exported(config) == gold
