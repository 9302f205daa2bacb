"""Exactly once under faults: SIGKILL of the stream, a broker restart, MinIO going away.

Each test runs `lakehouse stream --trigger "1 second"` as its own process while records
are produced, breaks something in the middle, and then asserts that bronze holds every
produced record exactly once: the same count and the same set of (partition, offset).
"""

from __future__ import annotations

import signal
import threading

import pytest

from lakehouse.io import kafka
from tests.streaming.conftest import (
    bronze_offsets,
    kill_group,
    stack_config,
    start_stream,
    use_stack,
    wait_for,
)

pytestmark = pytest.mark.services

DATASET = "access_logs"


def lines(start: int, n: int) -> list[tuple[bytes, bytes]]:
    out = []
    for i in range(start, start + n):
        value = (
            f'10.0.{i % 200}.{i % 250} - - [01/Mar/2024:10:{(i // 60) % 60:02d}:{i % 60:02d} +0000] '
            f'"GET /item/{i} HTTP/1.1" 200 {i} "-" "fault-test"'
        ).encode()
        out.append((value.split(b" ", 1)[0], value))  # keyed by client address, as `produce` does
    return out


def produce(spark, config, records, rate=None) -> int:
    stats = kafka.send_paced(config.kafka.bootstrap_servers, config.kafka.topics[DATASET], records, rate)
    assert stats.errors == 0 and stats.acknowledged == stats.sent
    return stats.sent


def expected_offsets(spark, config) -> list[tuple[int, int]]:
    end = kafka.latest_offsets(config.kafka.bootstrap_servers, config.kafka.topics[DATASET])
    return sorted((p, o) for p, n in end.items() for o in range(n))


def caught_up(spark, config, total: int):
    return lambda: len(bronze_offsets(spark, config, DATASET)) >= total


def stop_stream(proc, timeout: float = 120) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout)


@pytest.fixture
def log_path(tmp_path):
    return tmp_path / "stream.log"


def _tail(path) -> str:
    return path.read_text(errors="replace")[-4000:] if path.exists() else ""


def test_sigkill_then_restart_loses_and_doubles_nothing(spark, stack, log_path):
    config = stack_config(stack, "sigkill")
    use_stack(spark, config)
    produced = produce(spark, config, lines(0, 3000))
    proc = start_stream(stack, "sigkill", "--dataset", DATASET, "--trigger", "1 second", "--max-offsets-per-trigger", "500", log_path=log_path)
    try:
        # Kill it in the middle: some batches committed, more to come.
        wait_for(lambda: len(bronze_offsets(spark, config, DATASET)) >= 500, 180, what="the first batches")
        produced += produce(spark, config, lines(3000, 1000), rate=2000)
    finally:
        kill_group(proc)
    assert len(bronze_offsets(spark, config, DATASET)) < produced, "killed too late to test anything"
    produced += produce(spark, config, lines(4000, 500))
    proc = start_stream(stack, "sigkill", "--dataset", DATASET, "--trigger", "availableNow", log_path=log_path)
    assert proc.wait(300) == 0, _tail(log_path)
    assert bronze_offsets(spark, config, DATASET) == expected_offsets(spark, config)
    assert len(expected_offsets(spark, config)) == produced == 4500


def test_one_stream_rides_out_a_broker_restart_then_a_minio_outage(spark, stack, log_path):
    """One stream process through both outages (a JVM start and a catch-up fewer than a
    stream for each): nothing lost or doubled across either."""
    config = stack_config(stack, "outages")
    use_stack(spark, config)
    proc = start_stream(stack, "outages", "--dataset", DATASET, "--trigger", "1 second", log_path=log_path)
    try:
        produced = produce(spark, config, lines(0, 1000))
        wait_for(caught_up(spark, config, produced), 180, what="bronze to catch up before the broker restart")
        stack.restart_kafka(down_seconds=5)
        produced += produce(spark, config, lines(1000, 1000))
        wait_for(caught_up(spark, config, produced), 240, what="bronze to catch up after the broker restart")
        assert proc.poll() is None, "the stream died instead of riding out the restart:\n" + _tail(log_path)
        # Records keep arriving while the store is down.
        feeder = threading.Thread(target=lambda: produce(spark, config, lines(2000, 1000), rate=200))
        feeder.start()
        stack.restart_minio(down_seconds=4)
        feeder.join()
        produced += 1000
        wait_for(caught_up(spark, config, produced), 240, what="bronze to catch up after the MinIO outage")
        assert proc.poll() is None, "the stream gave up:\n" + _tail(log_path)
        assert stop_stream(proc) == 0, _tail(log_path)
    finally:
        if proc.poll() is None:
            proc.kill()
    use_stack(spark, config)  # the restarted MinIO: drop cached connections
    assert bronze_offsets(spark, config, DATASET) == expected_offsets(spark, config)
    assert produced == 3000
