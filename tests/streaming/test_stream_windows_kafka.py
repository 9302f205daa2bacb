"""Kafka -> bronze (MinIO) -> `stream-windows` -> gold windows and sessions, on real servers:
a closed window appears with exact counts a few seconds after the event that closes it,
and the processed-events topic holds exactly the valid events."""

from __future__ import annotations

import json
import signal
import threading
import time
import uuid

import pytest
from pyspark.sql import functions as F

from lakehouse.config import load_config
from lakehouse.io import delta, kafka
from lakehouse.jobs import stream_windows
from lakehouse.jobs.runtime import JobRun
from lakehouse_dev.services import kafka as kafka_service
from tests.jobs.test_stream_windows import BLOG, GOOGLE, HN, SHOP, at, event, gold, oracle, sql_rows
from tests.streaming.conftest import stack_env, start_stream, use_stack, wait_for

pytestmark = pytest.mark.services

LATENESS = 60
EVENTS = [
    event(
        at(10, 0, s),
        f"10.1.0.{1 + s % 4}",
        (SHOP, BLOG)[s % 2],
        (GOOGLE, HN, None)[s // 3 % 3],
        f"/p/{s}",
    )
    for s in range(0, 60, 3)
]  # 20 events in the window 10:00-10:05
# A lateness longer than the 57 s the events span: however the micro-batches split them,
# none is behind the watermark. The closer is that much past the window's end: the
# watermark reaches 10:05:00 and closes the window.
CLOSER = event(at(10, 6, 0), "10.1.0.9", SHOP)
INVALID = [
    b'{"ip": "10.1.0.1", "host": ',
    b'{"ip": "10.1.0.1", "host": "shop.example", "event_time": "yesterday"}',
]


def produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    stats = kafka.send_paced(bootstrap, topic, ((None, v) for v in values), None)
    assert stats.acknowledged == len(values) and stats.errors == 0


def bronze_commit_seconds(spark, path: str, rows: int) -> float:
    """Epoch seconds of the first commit of the table at `path` that holds `rows` rows."""
    versions = delta.history(spark, path).select("version", F.unix_micros("timestamp").alias("us")).collect()
    for version, us in sorted(versions):
        if delta.count_at(spark, path, version) == rows:
            return us / 1e6
    raise AssertionError(f"no version of {path} holds {rows} rows")


def consume_all(
    bootstrap: str, topic: str, expected: int, timeout: float = 60
) -> list[tuple[bytes, dict]]:
    """Every message of `topic` from the beginning (waits until `expected` arrived, then 2 s more)."""
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    got: list[tuple[bytes, dict]] = []
    deadline = time.monotonic() + timeout
    quiet_until = None
    try:
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                got.append((message.key(), json.loads(message.value())))
            if len(got) >= expected:
                quiet_until = (
                    quiet_until or time.monotonic() + 2
                )  # anything extra would show up now
                if time.monotonic() >= quiet_until:
                    break
    finally:
        consumer.close()
    return got


def test_closed_window_reaches_gold_seconds_after_its_close(spark, stack, tmp_path):
    name = f"sw{uuid.uuid4().hex[:6]}"
    env = stack_env(stack, name) | {
        "LAKEHOUSE_WEB_EVENTS__LATENESS_SECONDS": str(LATENESS),
        "LAKEHOUSE_WEB_EVENTS__PROCESSED_EVENTS_TOPIC": f"{name}.processed_events",
    }
    config = load_config(profile="services", environ=env)
    topic, processed = config.kafka.topics["web_events"], config.web_events.processed_events_topic
    kafka_service.create_topics(stack.kafka, {topic: 2, processed: 2})
    use_stack(spark, config)
    bootstrap = config.kafka.bootstrap_servers
    bronze = config.table_path("bronze", "web_events")

    proc = start_stream(
        stack,
        name,
        "--dataset",
        "web_events",
        "--trigger",
        "1 second",
        log_path=tmp_path / "stream.log",
    )
    stop = threading.Event()
    run = JobRun("stream-windows")
    failure: list[BaseException] = []

    def windows() -> None:
        try:
            stream_windows.run_windows(spark, config, run, "1 second", max_seconds=170, stop=stop)
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            failure.append(exc)

    worker = threading.Thread(target=windows, daemon=True)
    worker.start()
    try:
        produce(bootstrap, topic, [json.dumps(e).encode() for e in EVENTS] + INVALID)

        def bronze_rows() -> int:
            return (
                delta.read_table(spark, bronze).count() if delta.table_exists(spark, bronze) else 0
            )

        wait_for(
            lambda: bronze_rows() == len(EVENTS) + len(INVALID), 120, what="the events in bronze"
        )
        wait_for(
            lambda: run.counts.get("events", 0) == len(EVENTS) or failure,
            60,
            what="stream-windows to see them",
        )
        assert not failure, failure
        # The watermark (10:00:57 - 60 s) has not reached the window's end: nothing in gold yet.
        assert gold(spark, config, "traffic_5min") == set()

        assert sql_rows(spark, config, "traffic_5min") == set()
        produce(bootstrap, topic, [json.dumps(CLOSER).encode()])
        # From the closer acknowledged by Kafka (the earliest the watermark can pass the
        # window's end), not from the producer's start: its own set-up (CI: 'Coordinator load
        # in progress' retries) is not the pipeline's delay.
        sent = time.monotonic()
        # In PostgreSQL by the micro-batch that closes it, with no export run; then in gold.
        wait_for(lambda: sql_rows(spark, config, "traffic_5min") or failure, 60, interval=0.2, what="the window in SQL")
        sql_latency, in_sql_at = time.monotonic() - sent, time.time()
        wait_for(
            lambda: gold(spark, config, "traffic_5min") or failure,
            60,
            interval=0.2,
            what="the closed window in gold",
        )
        latency = time.monotonic() - sent
        # The same micro-batch then writes the referrer windows and the sessions.
        wait_for(
            lambda: run.counts.get("sessions_closed") or failure,
            60,
            interval=0.2,
            what="the batch to finish",
        )
        assert not failure, failure
        # The watermark passes the window's end when stream-windows reads the closer from
        # bronze: measured from the bronze commit that holds it (its Delta timestamp, MinIO on
        # this host's clock): the windows stream's delay, apart from the bronze stream's
        # landing (5.7 s of a 15.2 s total on a loaded CI host).
        closer_landed = bronze_commit_seconds(spark, bronze, len(EVENTS) + len(INVALID) + 1)
        from_watermark = in_sql_at - closer_landed
        print(
            f"\nproduce -> closed window visible in gold: {latency:.1f}s, in PostgreSQL: {sql_latency:.1f}s, "
            f"of which from the closer in bronze: {from_watermark:.1f}s "
            f"(an event arriving in real time: + the {LATENESS}s lateness allowance)"
        )

        expected = oracle(EVENTS, config.web_events.session_gap_seconds)
        assert gold(spark, config, "traffic_5min") == expected["traffic_5min"]
        assert {r[4] for r in expected["traffic_5min"]} == {10}  # 10 hits per host
        assert gold(spark, config, "traffic_5min_referrer") == expected["traffic_5min_referrer"]
        # Sessions closed by 10:05:00 - 60 s: the whole 10:00 minute's, as counted by hand.
        assert gold(spark, config, "sessions") == expected["sessions"]
        assert latency < 45
        # The closer moves the watermark past the window's end: the window is in SQL by the
        # micro-batch that reads it, seconds later, not after a daily export. The 15 s goal is
        # a speed goal, measured by `make bench` (bench_stream's "window" line), not here:
        # these bounds only tell live from batch on a loaded machine.
        assert 0 < from_watermark <= 60, from_watermark
        assert sql_latency <= 90, sql_latency
        for table in ("traffic_5min", "traffic_5min_referrer", "sessions"):
            assert sql_rows(spark, config, table) == expected[table], table

        # The processed topic: exactly the valid events (the closer too), keyed by ip.
        got = consume_all(bootstrap, processed, len(EVENTS) + 1)
        valid = [*EVENTS, CLOSER]
        assert sorted(
            (k.decode(), v["ip"], v["host"], v["url"], v["event_time"]) for k, v in got
        ) == sorted(
            (e["ip"], e["ip"], e["host"], e["url"], e["event_time"].replace("Z", ".000000Z"))
            for e in valid
        )
        assert {v["referrer_host"] for _k, v in got} == {
            "www.google.com",
            "news.ycombinator.com",
            None,
        }
    finally:
        stop.set()
        worker.join(120)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except Exception:  # noqa: BLE001
            proc.kill()
    assert not worker.is_alive()
    assert run.counts["late_events"] == 0
