"""The Kafka -> bronze query of one dataset, and the checks around it for lost offsets.

Used by the stream's supervisor (`jobs/stream_kafka.py`), which starts, watches and restarts
these queries.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.streaming import StreamingQuery

from lakehouse.config import Config
from lakehouse.feeds import FEEDS
from lakehouse.io import delta, kafka
from lakehouse.transforms import bronze

log = logging.getLogger("lakehouse.stream")

# What `lakehouse stream` and `batch --from-kafka` read when no dataset is named: the
# feeds every deployment has; the others are streamed when named (`--dataset web_events`).
DEFAULT_DATASETS = tuple(name for name, feed in FEEDS.items() if feed.streamed_by_default)
GAPS_SCHEMA = T.StructType(
    [
        T.StructField("dataset", T.StringType()),
        T.StructField("topic", T.StringType()),
        T.StructField("partition", T.IntegerType()),
        T.StructField("lost_from", T.LongType()),
        T.StructField("lost_to", T.LongType()),
        T.StructField("records_lost", T.LongType()),
        T.StructField("policy", T.StringType()),
        T.StructField("detected_at", T.TimestampType()),
    ]
)


class DataLossError(RuntimeError):
    """Offsets the stream still had to read were removed from Kafka (retention)."""


@dataclass(frozen=True)
class StreamOptions:
    datasets: tuple[str, ...]
    trigger: str
    max_offsets_per_trigger: int | None
    max_restarts: int = 5
    max_seconds: float | None = None
    gap_check_seconds: float = 30.0

    @property
    def available_now(self) -> bool:
        return self.trigger.replace("_", "").lower() == "availablenow"


@dataclass
class DatasetStream:
    """One dataset's query and what it has done so far."""

    dataset: str
    topic: str
    table: str
    checkpoint: str
    query: StreamingQuery | None = None
    last_batch: int = -1
    rows: int = 0
    batches: int = 0
    restarts_in_a_row: int = 0
    restarts: int = 0
    done: bool = False
    committed: dict[int, int] = field(default_factory=dict)
    gaps_recorded: set[tuple[int, int, int]] = field(default_factory=set)


def find_gaps(resume_at: dict[int, int], earliest: dict[int, int]) -> list[tuple[int, int, int]]:
    """(partition, lost_from, lost_to) where Kafka no longer has offsets the stream needs."""
    return sorted(
        (p, start, earliest[p]) for p, start in resume_at.items() if p in earliest and earliest[p] > start
    )


def record_gaps(spark: SparkSession, config: Config, stream: DatasetStream, gaps, policy: str) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = [(stream.dataset, stream.topic, p, lo, hi, hi - lo, policy, now) for p, lo, hi in gaps]
    for p, lo, hi in gaps:
        log.error(
            "DATA LOSS on %s partition %d: offsets %d..%d (%d records) were removed by Kafka "
            "retention before the stream read them (policy: %s; recorded in _meta/stream_gaps)",
            stream.topic, p, lo, hi - 1, hi - lo, policy,
        )
    delta.append(spark.createDataFrame(rows, GAPS_SCHEMA), config.table_path("_meta", "stream_gaps"))


def check_data_loss(spark: SparkSession, config: Config, stream: DatasetStream, resume_at: dict[int, int] | None) -> int:
    """Compare where the stream resumes with what Kafka still stores; record any gap.

    Returns the number of records lost; raises DataLossError when the policy is to fail.
    """
    if not resume_at:
        return 0
    earliest = kafka.earliest_offsets(config.kafka.bootstrap_servers, stream.topic)
    gaps = [g for g in find_gaps(resume_at, earliest) if g not in stream.gaps_recorded]
    if not gaps:
        return 0
    stream.gaps_recorded.update(gaps)
    policy = "fail" if config.kafka.fail_on_data_loss else "skip"
    record_gaps(spark, config, stream, gaps, policy)
    lost = sum(hi - lo for _p, lo, hi in gaps)
    if config.kafka.fail_on_data_loss:
        raise DataLossError(
            f"{lost} record(s) of topic {stream.topic!r} were deleted by Kafka before the stream "
            "read them (see the log and _meta/stream_gaps). To accept the loss and continue from "
            "the earliest stored offset, run with LAKEHOUSE_KAFKA__FAIL_ON_DATA_LOSS=false."
        )
    return lost


def start_query(spark: SparkSession, config: Config, stream: DatasetStream, options: StreamOptions) -> StreamingQuery:
    """Start (or resume from its checkpoint) the topic -> bronze query of one dataset."""
    messages = kafka.read_stream(spark, config, stream.topic, options.max_offsets_per_trigger)
    writer_id = delta.writer_app_id(spark, stream.checkpoint, f"bronze_{stream.dataset}")
    delta.set_properties(spark, stream.table, bronze.BRONZE_PROPERTIES)

    def write_batch(batch, batch_id: int) -> None:
        written = delta.append_once(
            bronze.from_kafka(batch, F.lit(datetime.now(UTC))),
            stream.table,
            writer_id,
            batch_id,
            partition_by=("ingest_date",),
            properties=bronze.BRONZE_PROPERTIES,
            merge_schema=True,
        )
        if not written:
            log.info("%s batch %d: already in %s (replay after a restart): skipped", stream.dataset, batch_id, stream.table)

    writer = (
        messages.writeStream.foreachBatch(write_batch)
        .queryName(f"bronze_{stream.dataset}")
        .option("checkpointLocation", stream.checkpoint)
    )
    if options.available_now:
        writer = writer.trigger(availableNow=True)
    else:
        writer = writer.trigger(processingTime=options.trigger)
    return writer.start(stream.table)
