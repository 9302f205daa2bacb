"""Real-broker tests of lakehouse.services.kafka: start, topics, records, stop, restart, data kept.

Run: .venv/bin/pytest -q tests/services/test_kafka_service.py (needs Java 17+ and Maven; the
Kafka jars are fetched into ~/.cache/lakehouse/kafka-<version> on first use, ~30 s once).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import free_ports

from lakehouse.services import kafka

pytestmark = pytest.mark.services

PORT, CONTROLLER_PORT = free_ports(2)
TOPICS = {"events": 2, "single": 1}


@pytest.fixture
def base_dir(tmp_path: Path) -> Iterator[Path]:
    # Kafka runs as the current user (root is fine for it), so pytest's tmp dir will do.
    path = tmp_path / "kafka"
    yield path
    kafka.stop(path)


def test_topics_and_records_survive_stop_and_restart(base_dir: Path) -> None:
    server = kafka.start(base_dir, port=PORT, controller_port=CONTROLLER_PORT, topics=TOPICS)
    try:
        assert kafka.status(base_dir)
        assert server.bootstrap == f"127.0.0.1:{PORT}"
        assert (server.base_dir, server.log_file) == (base_dir, base_dir / "kafka.log")
        # Idempotent: same broker, existing topics are not created again.
        assert kafka.start(base_dir, port=PORT, controller_port=CONTROLLER_PORT, topics=TOPICS) == server
        assert kafka.create_topics(server, TOPICS) == []
        with pytest.raises(RuntimeError, match=f"already running on ports {PORT}/{CONTROLLER_PORT}"):
            kafka.start(base_dir, port=PORT + 10, controller_port=CONTROLLER_PORT)

        kafka.produce(server, "single", ["a", "b", "c"])
        assert kafka.topic_end_offsets(server, "single") == {0: 3}
        assert kafka.topic_start_offsets(server, "single") == {0: 0}

        produced = kafka.producer_perf(server, "events", records=1000, record_size=50)
        assert produced["records"] == 1000
        events = kafka.topic_end_offsets(server, "events")
        assert set(events) == {0, 1} and sum(events.values()) == 1000

        consumed = kafka.consumer_perf(server, "events", messages=1000, timeout=120)
        assert consumed["messages"] >= 1000
        assert consumed["mb_per_s"] > 0 and consumed["elapsed_s"] > 0

        kafka.stop(base_dir)
        assert not kafka.status(base_dir)
        kafka.stop(base_dir)  # idempotent

        server = kafka.start(base_dir, port=PORT, controller_port=CONTROLLER_PORT)
        assert kafka.list_topics(server) >= set(TOPICS)
        assert kafka.topic_end_offsets(server, "single") == {0: 3}
        assert kafka.topic_end_offsets(server, "events") == events
    finally:
        kafka.stop(base_dir)
    assert not kafka.status(base_dir)


def test_optional_sasl_listener_takes_plain_and_scram_users(base_dir: Path) -> None:
    from lakehouse.io.kafka import KafkaAuth, KafkaUnavailable, check_cluster

    port, controller, sasl_port = free_ports(3)
    users = {"alice": 'al"ice\\pw', "bob": "bob-pw"}  # quotes and backslashes survive the JAAS/properties quoting
    server = kafka.start(base_dir, port=port, controller_port=controller, topics={"t": 3}, sasl=kafka.SaslListener(sasl_port, users))
    try:
        assert server.sasl_bootstrap == f"127.0.0.1:{sasl_port}"
        assert kafka.running_server(base_dir) == server
        for mechanism in ("PLAIN", "SCRAM-SHA-512"):
            for user, password in users.items():
                auth = KafkaAuth("SASL_PLAINTEXT", mechanism, user, password)
                assert check_cluster(server.sasl_bootstrap, auth, "t")[1] == 3
            with pytest.raises(KafkaUnavailable, match=f"authentication failed with SASL mechanism {mechanism}"):
                check_cluster(server.sasl_bootstrap, KafkaAuth("SASL_PLAINTEXT", mechanism, "alice", "wrong"), "t")
        with pytest.raises(RuntimeError, match="SASL listener port"):
            kafka.start(base_dir, port=port, controller_port=controller)  # the same broker, asked for without SASL
        # Off by default: a restart without `sasl` has no such listener (and the data stays).
        kafka.stop(base_dir)
        server = kafka.start(base_dir, port=port, controller_port=controller)
        assert server.sasl_bootstrap is None
        assert "SASL" not in (base_dir / "server.properties").read_text()
        assert kafka.topic_end_offsets(server, "t") == {0: 0, 1: 0, 2: 0}
    finally:
        kafka.stop(base_dir)
