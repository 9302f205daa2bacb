"""Real-broker tests of lakehouse_dev.services.kafka: start, topics, records, stop, restart, data
kept, and the SASL listener, on the run's broker (tests/stack.py; topics of their own).

Run: .venv/bin/pytest -q tests/services/test_kafka_service.py (needs Java 17+ and Maven; the
Kafka jars are fetched into ~/.cache/lakehouse/kafka-<version> on first use, ~30 s once).
"""

from __future__ import annotations

import pytest
from tests.stack import SASL_USERS

from lakehouse_dev.services import kafka

pytestmark = pytest.mark.services

TOPICS = {"svc.events": 2, "svc.single": 1}


def test_topics_and_records_survive_stop_and_restart(stack) -> None:
    server = stack.kafka
    base, port, controller = server.base_dir, stack.ports["kafka"], stack.ports["controller"]
    assert kafka.status(base)
    assert server.bootstrap == f"127.0.0.1:{port}"
    assert server.log_file == base / "kafka.log"
    assert sorted(kafka.create_topics(server, TOPICS)) == sorted(TOPICS)
    # Idempotent: the same broker, existing topics are not created again.
    assert kafka.start(base, port=port, controller_port=controller, topics=TOPICS, sasl=stack.kafka_sasl) == server
    assert kafka.create_topics(server, TOPICS) == []
    with pytest.raises(RuntimeError, match=f"already running on ports {port}/{controller}"):
        kafka.start(base, port=port + 10, controller_port=controller)

    kafka.produce(server, "svc.single", ["a", "b", "c"])
    assert kafka.topic_end_offsets(server, "svc.single") == {0: 3}
    assert kafka.topic_start_offsets(server, "svc.single") == {0: 0}

    produced = kafka.producer_perf(server, "svc.events", records=1000, record_size=50)
    assert produced["records"] == 1000
    events = kafka.topic_end_offsets(server, "svc.events")
    assert set(events) == {0, 1} and sum(events.values()) == 1000

    consumed = kafka.consumer_perf(server, "svc.events", messages=1000, timeout=120)
    assert consumed["messages"] >= 1000
    assert consumed["mb_per_s"] > 0 and consumed["elapsed_s"] > 0

    kafka.stop(base)
    assert not kafka.status(base)
    kafka.stop(base)  # idempotent
    stack.restart_kafka(down_seconds=0)
    server = stack.kafka
    assert kafka.list_topics(server) >= set(TOPICS)
    assert kafka.topic_end_offsets(server, "svc.single") == {0: 3}
    assert kafka.topic_end_offsets(server, "svc.events") == events


def test_the_sasl_listener_takes_plain_and_scram_users(stack) -> None:
    from lakehouse.io.kafka import KafkaAuth, KafkaUnavailable, check_cluster

    server = stack.kafka
    kafka.create_topics(server, {"svc.sasl": 3})
    assert server.sasl_bootstrap == f"127.0.0.1:{stack.ports['kafka_sasl']}"
    assert kafka.running_server(server.base_dir) == server
    for mechanism in ("PLAIN", "SCRAM-SHA-512"):
        for user, password in SASL_USERS.items():
            auth = KafkaAuth("SASL_PLAINTEXT", mechanism, user, password)
            assert check_cluster(server.sasl_bootstrap, auth, "svc.sasl")[1] == 3
        with pytest.raises(KafkaUnavailable, match=f"authentication failed with SASL mechanism {mechanism}"):
            check_cluster(server.sasl_bootstrap, KafkaAuth("SASL_PLAINTEXT", mechanism, "alice", "wrong"), "svc.sasl")
    with pytest.raises(RuntimeError, match="SASL listener port"):  # the same broker, asked for without SASL
        kafka.start(server.base_dir, port=stack.ports["kafka"], controller_port=stack.ports["controller"])


def test_the_sasl_listener_is_off_by_default(tmp_path) -> None:
    plain = kafka._server_properties(tmp_path, 9092, 9093)
    assert "SASL" not in plain and "listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093" in plain
    with_sasl = kafka._server_properties(tmp_path, 9092, 9093, kafka.SaslListener(9094, {"u": "p"}))
    assert "SASL_PLAINTEXT://127.0.0.1:9094" in with_sasl
