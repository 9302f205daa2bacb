"""Kafka at the edges: the streaming source, offsets, and a producer, all through the JVM.

Everything goes through the `kafka-clients` jar that the Spark Kafka connector already
brings (`.jars/`), via the session's JVM: one client library, the one Spark itself uses,
instead of a second, Python-side Kafka client with its own quirks and versions.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse.config import Config
from lakehouse.io import files

# Bigger fetches than the consumer defaults (1 MB per partition, 50 MB per fetch): fewer
# round trips per batch; Spark's source alone reads ~12 % faster on a catch-up.
FETCH_OPTIONS = {"kafka.max.partition.fetch.bytes": str(16 << 20), "kafka.fetch.max.bytes": str(64 << 20)}


def read_stream(spark: SparkSession, config: Config, topic: str, max_offsets_per_trigger: int | None) -> DataFrame:
    """Spark's Kafka source on `topic` with the configured policy (offsets, data loss)."""
    kafka = config.kafka
    reader = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", kafka.bootstrap_servers)
        .option("subscribe", topic)
        .option("startingOffsets", kafka.starting_offsets)
        .option("failOnDataLoss", str(kafka.fail_on_data_loss).lower())
        # A broker restart or a slow metadata answer should be retried, not fail the run.
        .option("fetchOffset.numRetries", "10")
        .option("fetchOffset.retryIntervalMs", "1000")
        .option("includeHeaders", "false")
        .options(**FETCH_OPTIONS)
    )
    if max_offsets_per_trigger:
        reader = reader.option("maxOffsetsPerTrigger", str(max_offsets_per_trigger))
    return reader.load()


def checkpoint_offsets(spark: SparkSession, checkpoint: str, topic: str) -> dict[int, int] | None:
    """Where a Structured Streaming query on `topic` resumes: the end offsets of its last
    committed micro-batch, read from its checkpoint (`commits/<n>` marks batch n done,
    `offsets/<n>` holds its end offsets); None when nothing was committed yet."""
    done = [int(name) for name in files.child_names(spark, f"{checkpoint}/commits") if name.isdigit()]
    if not done:
        return None
    text = files.read_text(spark, f"{checkpoint}/offsets/{max(done)}") or ""
    # "v1", the batch metadata, then one JSON line per source: {"topic": {"0": 12, ...}}
    for line in text.splitlines()[2:]:
        offsets = json.loads(line)
        if topic in offsets:
            return {int(p): int(o) for p, o in offsets[topic].items()}
    return None


def write_batch(df: DataFrame, bootstrap: str, topic: str) -> None:
    """Write `df` (`key`, `value` columns) to `topic` with Spark's Kafka sink (acks=all).

    The job fails if any record is not acknowledged, so success is delivery confirmation.
    """
    (
        df.write.format("kafka")
        .option("kafka.bootstrap.servers", bootstrap)
        .option("kafka.acks", "all")
        .option("kafka.linger.ms", "20")
        .option("kafka.batch.size", str(512 * 1024))
        .option("kafka.compression.type", "lz4")
        .option("kafka.max.request.size", str(16 * 1024 * 1024))
        .option("topic", topic)
        .save()
    )


def _properties(spark: SparkSession, settings: dict[str, str]):
    props = spark.sparkContext._jvm.java.util.Properties()
    for key, value in settings.items():
        props.setProperty(key, value)
    return props


def _topic_partitions(spark: SparkSession, consumer, topic: str) -> list:
    jvm = spark.sparkContext._jvm
    infos = consumer.partitionsFor(topic)
    if infos is None or infos.size() == 0:
        raise RuntimeError(f"Kafka topic {topic!r} does not exist")
    parts = jvm.java.util.ArrayList()
    for info in infos:
        parts.add(jvm.org.apache.kafka.common.TopicPartition(topic, info.partition()))
    return parts


def _offsets(spark: SparkSession, bootstrap: str, topic: str, which: str) -> dict[int, int]:
    jvm = spark.sparkContext._jvm
    deser = "org.apache.kafka.common.serialization.ByteArrayDeserializer"
    props = _properties(
        spark,
        {
            "bootstrap.servers": bootstrap,
            "key.deserializer": deser,
            "value.deserializer": deser,
            "default.api.timeout.ms": "15000",
            "request.timeout.ms": "10000",
        },
    )
    consumer = jvm.org.apache.kafka.clients.consumer.KafkaConsumer(props)
    try:
        parts = _topic_partitions(spark, consumer, topic)
        found = consumer.beginningOffsets(parts) if which == "earliest" else consumer.endOffsets(parts)
        return {int(tp.partition()): int(found.get(tp)) for tp in parts}
    finally:
        consumer.close()


def earliest_offsets(spark: SparkSession, bootstrap: str, topic: str) -> dict[int, int]:
    """First offset still stored per partition (older ones were removed by retention)."""
    return _offsets(spark, bootstrap, topic, "earliest")


def latest_offsets(spark: SparkSession, bootstrap: str, topic: str) -> dict[int, int]:
    """Next offset to be written per partition (the end of the log)."""
    return _offsets(spark, bootstrap, topic, "latest")


@dataclass
class ProducerStats:
    sent: int = 0
    acknowledged: int = 0
    errors: int = 0
    seconds: float = 0.0


@contextmanager
def producer(spark: SparkSession, bootstrap: str) -> Iterator[object]:
    """A kafka-clients KafkaProducer (bytes in, acks=all, idempotent), closed on exit."""
    ser = "org.apache.kafka.common.serialization.ByteArraySerializer"
    props = _properties(
        spark,
        {
            "bootstrap.servers": bootstrap,
            "key.serializer": ser,
            "value.serializer": ser,
            "acks": "all",
            "enable.idempotence": "true",
            "linger.ms": "5",
            "max.request.size": str(16 * 1024 * 1024),
            "delivery.timeout.ms": "120000",
        },
    )
    jvm = spark.sparkContext._jvm
    prod = jvm.org.apache.kafka.clients.producer.KafkaProducer(props)
    try:
        yield prod
    finally:
        prod.close()


def _metric(prod, name: str) -> float:
    for metric_name, metric in prod.metrics().items():
        if metric_name.name() == name and metric_name.group() == "producer-metrics":
            return float(metric.metricValue())
    return 0.0


def send_paced(
    spark: SparkSession,
    bootstrap: str,
    topic: str,
    records: Iterable[tuple[bytes | None, bytes | None]],
    rate: float | None,
    progress_every: float = 5.0,
    log=None,
) -> ProducerStats:
    """Send (key, value) records at `rate` per second (None: as fast as possible), then flush.

    Delivery is confirmed after `flush()`: every record has then either been acknowledged
    by the broker (acks=all) or failed for good, and the producer counts the failures.
    """
    jvm = spark.sparkContext._jvm
    record_cls = jvm.org.apache.kafka.clients.producer.ProducerRecord
    stats = ProducerStats()
    started = time.monotonic()
    last_report = started
    with producer(spark, bootstrap) as prod:
        for key, value in records:
            if rate:
                due = started + stats.sent / rate
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            prod.send(record_cls(topic, key, value))
            stats.sent += 1
            now = time.monotonic()
            if log and now - last_report >= progress_every:
                log.info("%s: %d sent (%.0f/s)", topic, stats.sent, stats.sent / (now - started))
                last_report = now
        # After flush() every record has completed: acknowledged, or failed for good
        # (record-error-total counts final failures, not retried attempts).
        prod.flush()
        stats.errors = int(_metric(prod, "record-error-total"))
        stats.acknowledged = stats.sent - stats.errors
    stats.seconds = time.monotonic() - started
    return stats


def keyed(df: DataFrame, dataset: str) -> DataFrame:
    """(key, value) for producing a dataset: access logs keyed by client address, product
    views by device (each client's events stay in order on one partition); a record
    without one gets no key (spread round-robin)."""
    value = F.col("value")
    text = value.cast("string")
    if dataset == "access_logs":
        key = F.nullif(F.substring_index(text, " ", 1), F.lit(""))
    else:
        key = F.get_json_object(text, "$.device_id")
    return df.select(key.alias("key"), value.alias("value"))
