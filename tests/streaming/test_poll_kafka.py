"""`lakehouse poll --to kafka` on real servers: a local HTTP endpoint -> the api_ticks topic ->
bronze on MinIO (the stream's catch-up) -> silver -> gold -> PostgreSQL, each tick once; and
the poller under `lakehouse supervise`, SIGKILLed mid-stream, with each served tick once in silver."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from datetime import UTC, date, datetime

import pytest

from lakehouse.config import project_root
from lakehouse.feeds.api_ticks import silver as silver_api_ticks
from lakehouse.io import delta, kafka
from lakehouse.jobs import export_gold, gold_daily, poll
from lakehouse.jobs.runtime import JobRun
from lakehouse.jobs.stream_kafka import StreamOptions, run_streams
from tests.streaming.conftest import (
    bronze_offsets,
    stack_config,
    stack_env,
    use_stack,
    wait_for,
    wait_group_gone,
)
from tests.test_poll import API_ERROR, Reply, ScriptedServer, body, ticker

pytestmark = pytest.mark.services

# A day no other test exports: PostgreSQL is shared by the run's tests.
DAY = date(2024, 4, 10)
T = int(datetime(2024, 4, 10, 12, 0, tzinfo=UTC).timestamp() * 1000)
MINUTE = 60_000
SCRIPT = [
    Reply(200, body([ticker("BTCUSDT", "100", T), ticker("ETHUSDT", "50", T)])),
    Reply(
        200, body([ticker("BTCUSDT", "100", T), ticker("ETHUSDT", "50", T)])
    ),  # nothing new: not sent
    Reply(400, API_ERROR),
    Reply(
        200, body([ticker("BTCUSDT", "101", T + MINUTE), ticker("ETHUSDT", "50", T)])
    ),  # only BTC is sent
    Reply(429, b"slow down", {"Retry-After": "1"}),
    Reply(200, body(ticker("BTCUSDT", "102", T + 2 * MINUTE))),
]


def poll_to_kafka(config, landing, script, polls):
    with ScriptedServer(script) as server:
        setup = poll.setup(
            config, url=server.url, interval=0, landing=str(landing), backoff_seconds=0.1
        )
        assert setup.sink == "kafka"  # the services profile's default
        return poll.poll(setup, polls)


@pytest.fixture(scope="module")
def polled(spark, stack, tmp_path_factory):
    config = stack_config(stack, "pollk", datasets=("api_ticks",))
    use_stack(spark, config)
    landing = tmp_path_factory.mktemp("poll-kafka")
    first = poll_to_kafka(config, landing, SCRIPT, 5)
    # A restarted poller reads its state file: the last tick again is not sent.
    restarted = poll_to_kafka(
        config, landing, [Reply(200, body(ticker("BTCUSDT", "102", T + 2 * MINUTE)))], 1
    )
    runs = {name: JobRun(name) for name in ("stream", "silver", "gold", "export")}
    run_streams(spark, config, StreamOptions(("api_ticks",), "availableNow", 1000), runs["stream"])
    silver_api_ticks.run(spark, config, runs["silver"])
    gold_daily.run(spark, config, runs["gold"])
    export_gold.run(spark, config, runs["export"])
    return {"config": config, "first": first, "restarted": restarted, "runs": runs}


def test_each_response_is_one_message_and_one_bronze_row(spark, polled):
    config = polled["config"]
    first, restarted = polled["first"], polled["restarted"]
    assert (
        first.polls,
        first.ok,
        first.failed,
        first.records,
        first.new_ticks,
        first.repeated_ticks,
    ) == (5, 4, 1, 4, 4, 3)
    assert (restarted.records, restarted.repeated_ticks) == (0, 1)
    end = kafka.latest_offsets(config.kafka.bootstrap_servers, config.kafka.topics["api_ticks"])
    assert sum(end.values()) == 4
    assert bronze_offsets(spark, config, "api_ticks") == sorted(
        (p, o) for p, n in end.items() for o in range(n)
    )


def test_silver_and_gold_hold_each_tick_once(spark, polled):
    config = polled["config"]
    counts = polled["runs"]["silver"].counts
    assert {
        k: counts[k]
        for k in ("records", "read", "written", "quarantined", "duplicates", "skipped_blank")
    } == {
        "records": 4,
        "read": 5,
        "written": 4,
        "quarantined": 1,
        "duplicates": 0,
        "skipped_blank": 0,
    }
    silver = delta.read_table(spark, config.table_path("silver", "api_ticks"))
    topic = config.kafka.topics["api_ticks"]
    assert sorted(
        tuple(r) for r in silver.select("symbol", "price", "event_date", "source").collect()
    ) == [
        ("BTCUSDT", 100.0, DAY, f"kafka:{topic}"),
        ("BTCUSDT", 101.0, DAY, f"kafka:{topic}"),
        ("BTCUSDT", 102.0, DAY, f"kafka:{topic}"),
        ("ETHUSDT", 50.0, DAY, f"kafka:{topic}"),
    ]
    quarantine = delta.read_table(spark, config.table_path("quarantine", "api_ticks"))
    assert [tuple(r) for r in quarantine.select("reason", "value", "topic").collect()] == [
        ("API error -1121: Invalid symbol.", API_ERROR.decode(), topic)
    ]
    gold = delta.read_table(spark, config.table_path("gold", "api_daily_summary")).orderBy("symbol")
    expected = [(DAY, "BTCUSDT", 101.0, 100.0, 102.0, 3), (DAY, "ETHUSDT", 50.0, 50.0, 50.0, 1)]
    assert [tuple(r) for r in gold.collect()] == expected


def test_postgres_holds_the_summary_once(stack, polled):
    rows = stack.database("pollk").psql(
        f"SELECT report_date, symbol, avg_price, min_price, max_price, n_records FROM api_daily_summary "
        f"WHERE report_date = DATE '{DAY}' ORDER BY symbol"
    )
    assert rows.splitlines() == [f"{DAY}|BTCUSDT|101|100|102|3", f"{DAY}|ETHUSDT|50|50|50|1"]


def test_a_second_catch_up_finds_nothing_new(spark, polled):
    config = polled["config"]
    before = {
        layer: delta.table_version(spark, config.table_path(layer, "api_ticks"))
        for layer in ("bronze", "silver")
    }
    runs = {name: JobRun(name) for name in ("stream", "silver")}
    run_streams(spark, config, StreamOptions(("api_ticks",), "availableNow", 1000), runs["stream"])
    silver_api_ticks.run(spark, config, runs["silver"])
    assert runs["stream"].counts.get("api_ticks_rows", 0) == 0
    assert runs["silver"].counts == {}
    assert {
        layer: delta.table_version(spark, config.table_path(layer, "api_ticks"))
        for layer in ("bronze", "silver")
    } == before


class SlidingTicker:
    """The answers of a "recent trades" endpoint (for `ScriptedServer`): each holds the last
    `window` ticks, one new tick per request, so a poller that misses a few answers still
    finds their ticks in the next. `frozen` stops new ticks; `n` is the newest tick."""

    def __init__(self, window: int = 50):
        self.window, self.n, self.frozen = window, 0, False

    def __call__(self) -> Reply:
        if not self.frozen:
            self.n += 1
        first = max(1, self.n - self.window + 1)
        return Reply(200, body([ticker("BTCUSDT", str(i), T + i * 1000) for i in range(first, self.n + 1)]))


def test_a_killed_poller_comes_back_by_itself_and_silver_holds_each_tick_once(spark, stack, tmp_path):
    """`lakehouse supervise` runs the poller into Kafka; SIGKILLed twice mid-stream (a kill
    between a sent record and its state file sends those ticks again), it is restarted by
    itself, and silver holds every tick the endpoint served exactly once."""
    config = stack_config(stack, "pollkill", datasets=("api_ticks",))
    use_stack(spark, config)
    log_path, landing = tmp_path / "supervise.log", tmp_path / "landing"
    ticks = SlidingTicker()
    with ScriptedServer(ticks) as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")} | stack_env(stack, "pollkill") | {
            "LAKEHOUSE_HOME": str(project_root()),
            "LAKEHOUSE_SUPERVISE__SERVICES__POLL": f"poll --url {server.url} --interval 0.2 --landing {landing}",
            "LAKEHOUSE_SUPERVISE__RESTART_DELAY_SECONDS": "0.5",
        }
        with log_path.open("w") as out:
            supervisor = subprocess.Popen([sys.executable, "-m", "lakehouse", "supervise", "--service", "poll"],
                                          env=env, stdout=out, stderr=subprocess.STDOUT)
        topic = config.kafka.topics["api_ticks"]

        def records() -> int:
            return sum(kafka.latest_offsets(config.kafka.bootstrap_servers, topic).values())

        def pids() -> list[int]:
            return [int(p) for p in re.findall(r"poll: started \(pid (\d+)\)", log_path.read_text())]

        try:
            for kill in (1, 2):
                wait_for(lambda k=kill: len(pids()) == k and records() >= 5 * k, 60, 0.3, f"poller {kill} sending")
                os.killpg(pids()[-1], signal.SIGKILL)
                wait_group_gone(pids()[-1])
            wait_for(lambda: len(pids()) == 3 and records() >= 15, 60, 0.3, "the restarted poller sending")
            ticks.frozen = True  # no new ticks: the poller sends the last ones and then nothing
            state = landing / f"_poll_state.kafka.{topic}.json"
            wait_for(lambda: state.is_file() and poll.load_state(state) == {"BTCUSDT": T + ticks.n * 1000},
                     60, 0.1, "the last tick sent")
        finally:
            supervisor.send_signal(signal.SIGTERM)
            code = supervisor.wait(60)
    output = log_path.read_text()
    assert code == 0, output
    assert output.count("poll: exited with code -9") == 2 and "poll: stopped (code 0)" in output, output

    runs = {name: JobRun(name) for name in ("stream", "silver")}
    run_streams(spark, config, StreamOptions(("api_ticks",), "availableNow", 10_000), runs["stream"])
    silver_api_ticks.run(spark, config, runs["silver"])
    silver = delta.read_table(spark, config.table_path("silver", "api_ticks"))
    prices = sorted(int(r.price) for r in silver.select("price").collect())
    print(f"poller kill: {ticks.n} ticks served, {records()} records, silver counts {runs['silver'].counts}")
    assert prices == list(range(1, ticks.n + 1))
    assert runs["silver"].counts["quarantined"] == 0
