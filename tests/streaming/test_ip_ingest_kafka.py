"""The IP collector on a real Kafka broker: `lakehouse serve`'s app in the services profile
(its default sink, the `ip_events` topic) -> each accepted IP one message, keyed by the IP,
exactly once. No Spark."""

from __future__ import annotations

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import httpx
import pytest

from lakehouse.api.app import create_app
from lakehouse.io import kafka
from tests.api.conftest import running
from tests.streaming.conftest import stack_config

pytestmark = pytest.mark.services


def read_topic(bootstrap: str, topic: str, expected: int, timeout: float = 60) -> list:
    """Every message of `topic` from its first offset to its end (at least `expected` of them)."""
    from confluent_kafka import Consumer, TopicPartition

    ends = kafka.latest_offsets(bootstrap, topic)
    assert sum(ends.values()) == expected, ends
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in ends])
        messages = []
        deadline = time.monotonic() + timeout
        while len(messages) < expected:
            assert time.monotonic() < deadline, f"read {len(messages)} of {expected} messages"
            for message in consumer.consume(100, timeout=1):
                assert message.error() is None, message.error()
                messages.append(message)
        return messages
    finally:
        consumer.close()


def test_accepted_ips_are_on_the_topic_exactly_once(stack):
    config = stack_config(stack, "ipk", datasets=())
    topic = "ipk.ip_events"
    kafka.create_topics(stack.kafka.bootstrap, {topic: 2})
    config = replace(
        config, kafka=replace(config.kafka, topics=config.kafka.topics | {"ip_events": topic})
    )
    assert config.ip_events.sink == "kafka"  # the services profile's default

    batches = [[f"172.16.{n}.{i}" for i in range(5)] + ["not-an-ip"] for n in range(20)]
    with running(create_app(config)) as url, httpx.Client(base_url=url, timeout=30) as http:
        single = http.post("/ingest-ip", json={"ip": "2001:DB8::1"})
        with ThreadPoolExecutor(8) as pool:
            answers = list(
                pool.map(lambda ips: http.post("/ingest-ips", json={"ips": ips}), batches)
            )
        refused = http.post("/ingest-ip", json={"ip": "example.com"})
    assert single.status_code == 202 and refused.status_code == 422
    assert [a.status_code for a in answers] == [202] * len(batches)
    assert all(a.json()["accepted"] == 5 for a in answers)

    accepted = ["2001:db8::1"] + [ip for ips in batches for ip in ips[:5]]
    messages = read_topic(stack.kafka.bootstrap, topic, expected=len(accepted))
    records = [json.loads(m.value()) for m in messages]
    assert sorted(r["ip"] for r in records) == sorted(accepted)
    assert all(m.key().decode() == json.loads(m.value())["ip"] for m in messages)
    ids = {a.headers["X-Request-ID"]: ips[:5] for a, ips in zip(answers, batches, strict=True)}
    ids[single.headers["X-Request-ID"]] = ["2001:db8::1"]
    for request_id, ips in ids.items():
        assert sorted(r["ip"] for r in records if r["request_id"] == request_id) == sorted(ips)
