"""Kafka at the edges: Spark's source and sink, and a client for the rest.

Spark's Kafka connector reads topics (the stream) and writes them (bulk produce). Everything
else — topics, offsets, deleting records, a paced producer — goes through one client library,
confluent-kafka (librdkafka), in this process: no JVM per command, no py4j round trip per
record. The service manager (`services/kafka.py`) and the jobs share it.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse import feeds
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


def _admin(bootstrap: str):
    from confluent_kafka.admin import AdminClient

    # log_level 2 (critical only): librdkafka logs every refused connection as an error
    # (level 3), dozens while a broker starts; the admin calls' results report failures.
    return AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 10000, "log_level": 2})


class KafkaTransientError(RuntimeError):
    """An admin request failed in a way the broker says is passing (e.g. a partition whose
    leader is not elected yet, just after the topic was created): asking again may succeed."""


def _wait(futures: dict, timeout: float, what: str, tolerated: tuple = ()) -> dict:
    """Results of admin futures; RuntimeError naming `what` on any error not `tolerated`
    (KafkaTransientError when the error is retriable)."""
    from confluent_kafka import KafkaError, KafkaException

    # Passing while leaders are elected (a topic just created, a broker just restarted): the
    # epoch ones are retriable in Kafka's own client, but librdkafka does not flag them so.
    passing = (
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError.UNKNOWN_LEADER_EPOCH,  # "Leader epoch is newer than broker epoch"
        KafkaError.FENCED_LEADER_EPOCH,
        KafkaError.OFFSET_NOT_AVAILABLE,
    )
    results = {}
    for key, future in futures.items():
        try:
            results[key] = future.result(timeout=timeout)
        except KafkaException as exc:
            error = exc.args[0]
            if error.code() in tolerated:
                continue
            kind = KafkaTransientError if error.retriable() or error.code() in passing else RuntimeError
            raise kind(f"kafka {what} failed for {key}: {error.str()}") from None
    return results


def answers(bootstrap: str, timeout: float = 1) -> bool:
    """Whether a broker at `bootstrap` answers a metadata request (it is ready for clients)."""
    try:
        _admin(bootstrap).list_topics(timeout=timeout)
    except Exception:  # noqa: BLE001 - any failure means "not ready"
        return False
    return True


def list_topics(bootstrap: str, timeout: float = 60) -> set[str]:
    """Names of the non-internal topics."""
    return {name for name in _admin(bootstrap).list_topics(timeout=timeout).topics if not name.startswith("__")}


def create_topics(bootstrap: str, topics: Mapping[str, int], timeout: float = 60) -> list[str]:
    """Create the missing topics of `topics` ({name: partitions}, replication factor 1).

    Idempotent: existing topics are left alone, whatever their partition count. Returns the
    names that were created.
    """
    from confluent_kafka import KafkaError
    from confluent_kafka.admin import NewTopic

    for name, partitions in topics.items():
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,249}", name) or int(partitions) < 1:
            raise ValueError(f"bad topic {name!r} with {partitions!r} partitions")
    missing = [t for t in topics if t not in list_topics(bootstrap, timeout=timeout)]
    if missing:
        admin = _admin(bootstrap)  # kept until the futures are done: its end cancels them
        futures = admin.create_topics([NewTopic(name, int(topics[name]), 1) for name in missing], operation_timeout=timeout)
        _wait(futures, timeout, "create topic", tolerated=(KafkaError.TOPIC_ALREADY_EXISTS,))
    return missing


def _offsets(bootstrap: str, topic: str, latest: bool, timeout: float) -> dict[int, int]:
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import OffsetSpec

    spec = OffsetSpec.latest() if latest else OffsetSpec.earliest()
    deadline = time.monotonic() + timeout
    while True:  # a topic just created (or a broker just restarted) elects its leaders first
        admin = _admin(bootstrap)  # each try afresh: a retry must not reuse the stale epochs
        described = admin.list_topics(topic=topic, timeout=timeout).topics.get(topic)
        if described is None or described.error is not None or not described.partitions:
            raise RuntimeError(f"Kafka topic {topic!r} does not exist on {bootstrap}")
        futures = admin.list_offsets({TopicPartition(topic, p): spec for p in described.partitions}, request_timeout=timeout)
        try:
            listed = _wait(futures, timeout, "list offsets")
        except KafkaTransientError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
            continue
        return dict(sorted((tp.partition, result.offset) for tp, result in listed.items()))


def earliest_offsets(bootstrap: str, topic: str, timeout: float = 60) -> dict[int, int]:
    """First offset still stored per partition (older ones were removed by retention)."""
    return _offsets(bootstrap, topic, False, timeout)


def latest_offsets(bootstrap: str, topic: str, timeout: float = 60) -> dict[int, int]:
    """Next offset to be written per partition (the end of the log)."""
    return _offsets(bootstrap, topic, True, timeout)


def delete_records(bootstrap: str, topic: str, before: Mapping[int, int], timeout: float = 60) -> None:
    """Delete the records of `topic` below `before[partition]` (what retention does to old segments)."""
    from confluent_kafka import TopicPartition

    admin = _admin(bootstrap)  # kept until the futures are done: its end cancels them
    futures = admin.delete_records(
        [TopicPartition(topic, p, o) for p, o in before.items()], operation_timeout=timeout, request_timeout=timeout
    )
    _wait(futures, timeout, "delete records")


@dataclass
class ProducerStats:
    sent: int = 0
    acknowledged: int = 0
    errors: int = 0
    seconds: float = 0.0


def send_paced(
    bootstrap: str,
    topic: str,
    records: Iterable[tuple[bytes | None, bytes | None]],
    rate: float | None,
    progress_every: float = 5.0,
    log=None,
) -> ProducerStats:
    """Send (key, value) records at `rate` per second (None: as fast as possible), then flush.

    acks=all and idempotent; after the flush every record has been acknowledged by the broker
    or has failed for good, and each delivery report is counted.
    """
    from confluent_kafka import Producer

    stats = ProducerStats()

    def delivered(error, _message) -> None:
        if error is None:
            stats.acknowledged += 1
        else:
            stats.errors += 1

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 5,
            "message.max.bytes": 16 * 1024 * 1024,
            "delivery.timeout.ms": 120000,
        }
    )
    started = last_report = time.monotonic()
    for key, value in records:
        if rate:
            delay = started + stats.sent / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        while True:
            try:
                producer.produce(topic, value=value, key=key, on_delivery=delivered)
                break
            except BufferError:  # the local queue is full: let deliveries drain it
                producer.poll(0.1)
        producer.poll(0)
        stats.sent += 1
        now = time.monotonic()
        if log and now - last_report >= progress_every:
            log.info("%s: %d sent (%.0f/s)", topic, stats.sent, stats.sent / (now - started))
            last_report = now
    left = producer.flush(120)
    stats.errors += left  # never reported: not acknowledged
    stats.seconds = time.monotonic() - started
    return stats


def keyed(df: DataFrame, dataset: str) -> DataFrame:
    """(key, value) for producing a dataset: access logs, web events and IP sightings keyed by
    client address, product views by device, API ticks by symbol (each client's events stay in
    order on one partition); a record without one gets no key (spread round-robin)."""
    value = F.col("value")
    text = value.cast("string")
    path = feeds.feed(dataset).kafka_key
    if path == feeds.FIRST_WORD:
        key = F.nullif(F.substring_index(text, " ", 1), F.lit(""))
    else:
        key = F.get_json_object(text, path)
    return df.select(key.alias("key"), value.alias("value"))


# --- a cluster of someone else's, with SASL (what `lakehouse mirror` reads) -------------------

SECURITY_PROTOCOLS = ("PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
_LOGIN_MODULES = {
    "PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
    "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
    "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule",
}


class KafkaUnavailable(RuntimeError):
    """A cluster cannot be used: unreachable, credentials refused, or the topic is missing.
    The message is one line that names the bootstrap (and the mechanism), never a password."""


@dataclass(frozen=True)
class KafkaAuth:
    """How to connect to a cluster: security protocol, SASL mechanism and credentials, and
    for SASL_SSL optionally a CA bundle (PEM) to trust. The password is never shown (repr)."""

    security_protocol: str = "PLAINTEXT"
    mechanism: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: str | None = None

    def __post_init__(self) -> None:
        if self.security_protocol not in SECURITY_PROTOCOLS:
            raise ValueError(f"security protocol {self.security_protocol!r}: one of {', '.join(SECURITY_PROTOCOLS)}")
        if self.sasl:
            if self.mechanism not in SASL_MECHANISMS:
                raise ValueError(f"SASL mechanism {self.mechanism!r}: one of {', '.join(SASL_MECHANISMS)}")
            if not self.username or self.password is None:
                raise ValueError(f"{self.security_protocol} with {self.mechanism} needs a user name and a password")

    @property
    def sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    def describe(self) -> str:
        """E.g. `SASL_PLAINTEXT/SCRAM-SHA-512 as 'mirror'` (for messages; no password)."""
        return f"{self.security_protocol}/{self.mechanism} as {self.username!r}" if self.sasl else self.security_protocol

    def client_config(self) -> dict[str, str]:
        """The librdkafka (confluent-kafka) settings."""
        conf = {"security.protocol": self.security_protocol}
        if self.sasl:
            conf |= {"sasl.mechanism": self.mechanism, "sasl.username": self.username, "sasl.password": self.password}
        if self.ca_file:
            conf["ssl.ca.location"] = self.ca_file
        return conf

    def spark_options(self) -> dict[str, str]:
        """The `kafka.`-prefixed options of Spark's Kafka source and sink (Java client)."""
        options = {"kafka.security.protocol": self.security_protocol}
        if self.sasl:
            def quoted(text: str) -> str:
                return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

            options |= {
                "kafka.sasl.mechanism": self.mechanism,
                "kafka.sasl.jaas.config": f"{_LOGIN_MODULES[self.mechanism]} required "
                f"username={quoted(self.username)} password={quoted(self.password)};",
            }
        if self.ca_file:
            options |= {"kafka.ssl.truststore.type": "PEM", "kafka.ssl.truststore.location": self.ca_file}
        return options


def check_cluster(bootstrap: str, auth: KafkaAuth, topic: str, timeout: float = 15) -> tuple[str, int]:
    """(cluster id, partition count of `topic`) of the cluster at `bootstrap`, connecting as
    `auth` says; KafkaUnavailable, within a second or two when the credentials are refused,
    else after `timeout` seconds, when it cannot be used.

    librdkafka reports a refused login only to the error callback (a metadata request just
    times out), so it is polled between short metadata requests.
    """
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient

    errors: list = []
    admin = AdminClient(
        {"bootstrap.servers": bootstrap, **auth.client_config(), "socket.timeout.ms": 10000,
         "log_level": 0, "error_cb": errors.append}  # fmt: skip
    )
    where = f"Kafka at {bootstrap} ({auth.describe()})"
    deadline = time.monotonic() + timeout
    while True:
        try:
            metadata = admin.list_topics(topic=topic, timeout=1)
            break
        except KafkaException:
            admin.poll(0)
        refused = [e for e in errors if e.code() == KafkaError._AUTHENTICATION]
        if refused:
            detail = refused[-1].str().split(": ", 1)[-1]
            raise KafkaUnavailable(f"{where}: authentication failed with SASL mechanism {auth.mechanism}: {detail}")
        if time.monotonic() >= deadline:
            last = errors[-1].str() if errors else "no answer"
            raise KafkaUnavailable(f"{where}: not reachable in {timeout:.0f}s: {last}")
    described = metadata.topics.get(topic)
    if described is None or described.error is not None or not described.partitions:
        raise KafkaUnavailable(f"{where}: topic {topic!r} does not exist")
    return metadata.cluster_id, len(described.partitions)
