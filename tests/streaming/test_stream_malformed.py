"""Malformed messages reach bronze untouched and end in quarantine with a reason."""

from __future__ import annotations

import pytest
from pyspark.sql import functions as F

from lakehouse.feeds.access_logs import silver as silver_access_logs
from lakehouse.feeds.product_views import silver as silver_product_views
from lakehouse.io import delta, kafka
from lakehouse.jobs.runtime import JobRun
from lakehouse.jobs.stream_kafka import StreamOptions, run_streams
from tests.streaming.conftest import stack_config, use_stack

pytestmark = pytest.mark.services

HUGE = 3 * 1024 * 1024  # over Kafka's 1 MB default message size
VALID_LINE = b'203.0.113.9 - - [01/Mar/2024:10:00:00 +0000] "GET /a HTTP/1.1" 200 5 "-" "curl/8"'
VALID_VIEW = b'{"_id":"v1","product_id":"p1","device_id":"d1","timestamp":"2024-03-01T10:00:00Z"}'
NOT_UTF8_LINE = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\xc3\x28"
NOT_UTF8_VIEW = b'{"_id":"v2","product_id":"p\xff\xfe","timestamp":"2024-03-01T10:00:00Z"}'

MESSAGES = {
    "access_logs": [
        (VALID_LINE, None),
        (NOT_UTF8_LINE, "not valid UTF-8"),
        (b"", "empty message"),
        (None, "empty message"),
        (b"x" * HUGE, "line does not match the log format"),
        (b"hello world", "line does not match the log format"),
    ],
    "product_views": [
        (VALID_VIEW, None),
        (NOT_UTF8_VIEW, "not valid UTF-8"),
        (b'{"product_id": ', "invalid JSON"),
        (b"", "empty message"),
        (None, "empty message"),
        (b'{"product_id":"p9","note":"' + b"x" * HUGE, "invalid JSON"),
        (b'{"device_id":"d1","timestamp":"2024-03-01T10:00:00Z"}', "missing product_id"),
    ],
}


@pytest.fixture(scope="module")
def landed(spark, stack):
    config = stack_config(stack, "malformed", partitions=1)
    use_stack(spark, config)
    for dataset, messages in MESSAGES.items():
        stats = kafka.send_paced(config.kafka.bootstrap_servers, config.kafka.topics[dataset], [(None, v) for v, _ in messages], None
        )
        assert stats.acknowledged == len(messages)
        # Kafka holds each message once (a producer-side duplicate would show here, not in bronze).
        assert kafka.latest_offsets(config.kafka.bootstrap_servers, config.kafka.topics[dataset]) == {0: len(messages)}
    run = JobRun("stream")
    run_streams(spark, config, StreamOptions(tuple(MESSAGES), "availableNow", None), run)
    runs = {"access_logs": JobRun("a"), "product_views": JobRun("v")}
    silver_access_logs.run(spark, config, runs["access_logs"])
    silver_product_views.run(spark, config, runs["product_views"])
    return config, run, runs


@pytest.mark.parametrize("dataset", list(MESSAGES))
def test_bronze_keeps_every_message_exactly(spark, landed, dataset):
    config, _run, _ = landed
    rows = delta.read_table(spark, config.table_path("bronze", dataset)).orderBy("offset").collect()
    assert [r["offset"] for r in rows] == list(range(len(MESSAGES[dataset])))
    for row, (sent, _reason) in zip(rows, MESSAGES[dataset], strict=True):
        stored = bytes(row["raw_value"]) if row["raw_value"] is not None else (
            None if row["value"] is None else row["value"].encode("utf-8")
        )
        assert stored == sent


@pytest.mark.parametrize("dataset", list(MESSAGES))
def test_each_bad_message_is_quarantined_with_its_reason(spark, landed, dataset):
    config, _run, runs = landed
    quarantine = delta.read_table(spark, config.table_path("quarantine", dataset))
    got = sorted((r["offset"], r["reason"]) for r in quarantine.select("offset", "reason").collect())
    expected = sorted((i, reason) for i, (_v, reason) in enumerate(MESSAGES[dataset]) if reason)
    assert [(o, reason.split(":")[0].split(" (")[0]) for o, reason in got] == expected
    raw = quarantine.where(F.col("reason").startswith("not valid UTF-8")).select("raw_value").first()[0]
    assert bytes(raw) in (NOT_UTF8_LINE, NOT_UTF8_VIEW)
    counts = runs[dataset].counts
    assert counts["written"] == 1
    assert counts["quarantined"] == len(expected)
    assert counts["read"] == counts["written"] + counts["quarantined"] + counts.get("skipped_blank", 0)
    assert counts.get("skipped_blank", 0) == 0


def test_the_stream_goes_on_after_bad_messages(spark, stack):
    # Its own topics and warehouse: the module's `landed` stays as it was for the other tests.
    config = stack_config(stack, "malformed_goes_on", partitions=1)
    use_stack(spark, config)
    topic = config.kafka.topics["access_logs"]
    kafka.send_paced(config.kafka.bootstrap_servers, topic, [(None, v) for v, _ in MESSAGES["access_logs"]], None)
    run_streams(spark, config, StreamOptions(("access_logs",), "availableNow", None), JobRun("first"))
    kafka.send_paced(config.kafka.bootstrap_servers, topic, [(None, VALID_LINE.replace(b"/a", b"/b"))], None)
    run = JobRun("again")
    run_streams(spark, config, StreamOptions(("access_logs",), "availableNow", None), run)
    assert run.counts["access_logs_rows"] == 1
    assert delta.read_table(spark, config.table_path("bronze", "access_logs")).count() == len(MESSAGES["access_logs"]) + 1
