"""Bronze from MongoDB: backfill a seed-004 `product_views_records` collection into
`bronze/product_views`, resumably, each document exactly once.

    LAKEHOUSE_MONGO_URI=mongodb://user:pass@host:27017 \\
        lakehouse ingest-mongo --database kafka_data_db --collection product_views_records
    lakehouse ingest-mongo --uri mongodb://127.0.0.1:27017 --database D --collection C [--batch-size N]
    spark-submit spark/lakehouse/jobs/ingest_mongo.py --database D --collection C

The collection is read in `_id` order, in chunks of `--batch-size` documents; each chunk
is one commit to bronze. A chunk is split into one `_id` range per Spark core: the driver
asks MongoDB only for the range boundaries (one `_id` per range), and every Spark task
reads its own range with its own connection (`io.mongo`). Each document becomes one bronze
row (`transforms.mongo_docs`) that silver's product-view parser reads like a Kafka event.

Exactly once, across crashes and reruns:
- a chunk's boundaries are recorded in `_meta/mongo_ingest_chunks` *before* its documents
  are written, so a rerun replays the very same ranges, whatever was inserted meanwhile;
- the chunk's bronze commit is a Delta idempotent write (`txnAppId` = the collection,
  `txnVersion` = the chunk number): a replay of a chunk bronze already holds is skipped
  by Delta, before any document is read again;
- a rerun resumes with the last recorded chunk (written now if the crash came before its
  commit, skipped if after) and then plans new chunks after its last `_id`: documents
  added to the collection since the last run, with higher `_id`s (new ObjectIds), are
  picked up; a rerun with nothing new commits nothing.
Two runs of the same collection at once cannot both write a chunk: the second stops with
an error (Delta's transaction ids are unique per table).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.config import Config
from lakehouse.io import delta, mongo
from lakehouse.io.mongo import MongoSource, MongoSourceError
from lakehouse.jobs.runtime import JobRun, run_job
from lakehouse.transforms.bronze import BRONZE_PROPERTIES
from lakehouse.transforms.mongo_docs import from_mongo_documents, source_id

log = logging.getLogger("lakehouse.ingest_mongo")

URI_ENV = "LAKEHOUSE_MONGO_URI"
DATASET = "product_views"
PROGRESS_TABLE = "mongo_ingest_chunks"  # under _meta
DEFAULT_BATCH_SIZE = 100_000

PROGRESS_SCHEMA = T.StructType(
    [
        T.StructField("source_id", T.StringType()),
        T.StructField("source", T.StringType()),
        T.StructField("chunk", T.LongType()),
        T.StructField("after_id", T.StringType()),
        T.StructField("bounds", T.ArrayType(T.StringType())),
        T.StructField("planned_at", T.TimestampType()),
        T.StructField("run_id", T.StringType()),
    ]
)


@dataclass(frozen=True)
class Chunk:
    """One commit's worth of documents: the `_id` ranges (after, b0], (b0, b1], ... as
    Extended JSON text (`after` None: from the start of the collection)."""

    number: int
    after: str | None
    bounds: tuple[str, ...]

    @property
    def ranges(self) -> list[tuple[str | None, str]]:
        return list(zip((self.after, *self.bounds[:-1]), self.bounds, strict=True))

    @property
    def upto(self) -> str:
        return self.bounds[-1]


def range_sizes(batch_size: int, cores: int) -> list[int]:
    """Documents per range of a chunk of `batch_size`: one range per core, as even as can be."""
    ranges = max(1, min(cores, batch_size))
    return [batch_size // ranges + (1 if i < batch_size % ranges else 0) for i in range(ranges)]


def writer_id(file_id: str) -> str:
    """The Delta transaction id of a collection's backfill (bronze and progress commits)."""
    return f"lakehouse-ingest-mongo:{file_id}"


def last_planned(spark: SparkSession, progress: str, file_id: str) -> Chunk | None:
    """The collection's last recorded chunk, or None before its first."""
    if not delta.table_exists(spark, progress):
        return None
    row = (
        delta.read_table(spark, progress)
        .where(F.col("source_id") == file_id)
        .orderBy(F.col("chunk").desc())
        .limit(1)
        .first()
    )
    return None if row is None else Chunk(int(row["chunk"]), row["after_id"], tuple(row["bounds"]))


def record_plan(spark: SparkSession, progress: str, source: MongoSource, file_id: str, chunk: Chunk, run: JobRun) -> None:
    """Record `chunk`'s boundaries before its documents are written (once per chunk number:
    a second run planning the same chunk meanwhile is refused)."""
    row = [(file_id, source.name, chunk.number, chunk.after, list(chunk.bounds), datetime.now(UTC), run.run_id)]
    delta.append(spark.createDataFrame(row, PROGRESS_SCHEMA), progress, txn=(writer_id(file_id), chunk.number))
    owner = (
        delta.read_table(spark, progress)
        .where((F.col("source_id") == file_id) & (F.col("chunk") == chunk.number))
        .select("run_id")
        .first()
    )
    if owner is None or owner["run_id"] != run.run_id:
        raise RuntimeError(
            f"chunk {chunk.number} of {source.name} was planned by another run "
            f"({owner['run_id'] if owner else 'unknown'}): is another ingest-mongo of this collection running?"
        )


@contextmanager
def _commit_metadata(spark: SparkSession, text: str) -> Iterator[None]:
    """Tag the Delta commits made inside with `text` (their `userMetadata` in the history).

    `delta.append` takes no userMetadata; Delta also reads it from this session setting.
    """
    key = "spark.databricks.delta.commitInfo.userMetadata"
    before = spark.conf.get(key, None)
    spark.conf.set(key, text)
    try:
        yield
    finally:
        if before is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, before)


def chunk_commit(spark: SparkSession, table: str, tag: str) -> tuple[int, int] | None:
    """(version, rows written) of the newest commit tagged `tag`, or None. Filtered in Spark:
    the driver receives at most one row, however long the table's history."""
    if not delta.table_exists(spark, table):
        return None
    row = (
        delta.history(spark, table)
        .where(F.col("userMetadata") == tag)
        .orderBy(F.col("version").desc())
        .select("version", "operationMetrics")
        .first()
    )
    if row is None:
        return None
    return int(row["version"]), int((row["operationMetrics"] or {}).get("numOutputRows", 0))


def write_chunk(spark: SparkSession, table: str, source: MongoSource, file_id: str, chunk: Chunk) -> int | None:
    """Append `chunk`'s documents to bronze in one commit; the rows written, or None when
    bronze already held the chunk (Delta skipped the replay without reading MongoDB)."""
    writer = writer_id(file_id)
    tag = f"{writer}:{chunk.number}"
    before = delta.table_version(spark, table)
    spark.sparkContext.setJobDescription(f"ingest-mongo {source.name} chunk {chunk.number}")
    documents = mongo.read_documents(spark, source, chunk.ranges)
    rows = from_mongo_documents(documents, source.name, file_id, F.lit(datetime.now(UTC)))
    delta.set_properties(spark, table, BRONZE_PROPERTIES)
    try:
        with _commit_metadata(spark, tag):
            delta.append(
                rows, table, partition_by=("ingest_date",), txn=(writer, chunk.number), properties=BRONZE_PROPERTIES, merge_schema=True
            )
    finally:
        spark.sparkContext.setJobDescription(None)
    commit = chunk_commit(spark, table, tag)
    if commit is None or (before is not None and commit[0] <= before):
        return None
    return commit[1]


def _short(bound: str | None) -> str:
    """An `_id` bound for the log: the ObjectId hex, else the Extended JSON text."""
    if bound is None:
        return "start"
    value = mongo.decode_id(bound)
    return str(value)


def _commit_chunk(spark: SparkSession, table: str, source: MongoSource, file_id: str, chunk: Chunk, replay: bool, run: JobRun) -> int:
    started = time.monotonic()
    written = write_chunk(spark, table, source, file_id, chunk)
    seconds = time.monotonic() - started
    if written is None:
        if not replay:
            raise RuntimeError(
                f"bronze already holds chunk {chunk.number} of {source.name}, but _meta/{PROGRESS_TABLE} "
                "had not recorded it (the progress table was removed or restored from an older copy): "
                "stopping rather than risk reading other ranges under the same chunk numbers"
            )
        log.info("chunk %d (_id %s .. %s] was already in bronze (the last run stopped after its commit)",
                 chunk.number, _short(chunk.after), _short(chunk.upto))
        run.add(mongo_chunks_already_in=1)
        return 0
    run.add(mongo_chunks=1, **{f"{DATASET}_docs": written})
    log.info(
        "chunk %d: %s docs, _id (%s .. %s], %d range(s), %.1fs, %s docs/s; %s docs so far",
        chunk.number, f"{written:,}", _short(chunk.after), _short(chunk.upto), len(chunk.ranges), seconds,
        f"{written / max(seconds, 1e-9):,.0f}", f"{run.counts.get(f'{DATASET}_docs', 0):,}",
    )
    return written


def ingest(spark: SparkSession, config: Config, source: MongoSource, batch_size: int, run: JobRun, cores: int | None = None) -> int:
    """Append the collection's documents not yet in bronze to `bronze/product_views`; returns
    the documents written. Raises MongoSourceError when the collection cannot be read."""
    table = config.table_path("bronze", DATASET)
    progress = config.table_path("_meta", PROGRESS_TABLE)
    file_id = source_id(source.database, source.collection)
    collection = mongo.open_collection(source)
    sizes = range_sizes(batch_size, cores or spark.sparkContext.defaultParallelism)
    written = 0
    try:
        last = last_planned(spark, progress, file_id)
        if last is None:
            after, number = None, 0
            log.info("%s: backfill from the start, chunks of %s docs in %d range(s)", source.name, f"{batch_size:,}", len(sizes))
        else:
            log.info("%s: resuming with chunk %d, the last one recorded", source.name, last.number)
            written += _commit_chunk(spark, table, source, file_id, last, replay=True, run=run)
            after, number = last.upto, last.number + 1
        while True:
            bounds, ended = mongo.plan_bounds(collection, None if after is None else mongo.decode_id(after), sizes)
            if not bounds:
                break
            chunk = Chunk(number, after, tuple(mongo.encode_id(b) for b in bounds))
            record_plan(spark, progress, source, file_id, chunk, run)
            written += _commit_chunk(spark, table, source, file_id, chunk, replay=False, run=run)
            after, number = chunk.upto, number + 1
            if ended:  # the collection ended inside this chunk: later documents are the next run's
                break
        _check_complete(spark, table, source, file_id, collection, run)
    finally:
        collection.database.client.close()
    return written


def _check_complete(spark: SparkSession, table: str, source: MongoSource, file_id: str, collection, run: JobRun) -> None:
    """Log (and count) how many of the collection's documents bronze holds: fewer means
    some were inserted below the last `_id` read (or have an `_id` of another BSON type)."""
    in_collection = mongo.estimated_count(collection)
    in_bronze = delta.read_table(spark, table).where(F.col("source_file_id") == file_id).count() if delta.table_exists(spark, table) else 0
    run.add(mongo_docs_in_collection=in_collection, mongo_docs_in_bronze=in_bronze)
    if in_bronze < in_collection:
        log.warning(
            "%s: bronze holds %s of its ~%s documents: the others were inserted below the last _id read, "
            "or have an _id of another BSON type (ranges follow one _id type)",
            source.name, f"{in_bronze:,}", f"{in_collection:,}",
        )
    else:
        log.info("%s: bronze holds all %s documents of the collection", source.name, f"{in_bronze:,}")


def main(argv: list[str] | None = None) -> int:
    def arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--uri", help=f"MongoDB URI (default: ${URI_ENV}; keep passwords there, not on the command line)")
        parser.add_argument("--database", required=True, help="e.g. kafka_data_db")
        parser.add_argument("--collection", required=True, help="e.g. product_views_records")
        parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help=f"documents per committed chunk (default {DEFAULT_BATCH_SIZE:,})")
        parser.add_argument("--timeout-ms", type=int, default=mongo.DEFAULT_TIMEOUT_MS, help="server selection / connect timeout")

    def check(args: argparse.Namespace) -> str | None:
        if not (args.uri or os.environ.get(URI_ENV)):
            return f"--uri or ${URI_ENV} is required"
        if args.batch_size < 1:
            return "--batch-size must be at least 1"
        return None

    def body(spark: SparkSession, config: Config, run: JobRun, args: argparse.Namespace) -> int:
        source = MongoSource(args.uri or os.environ[URI_ENV], args.database, args.collection, args.timeout_ms)
        run.job = f"ingest-mongo {source.database}.{source.collection}"
        try:
            ingest(spark, config, source, args.batch_size, run)
        except MongoSourceError as error:
            log.error("%s", error)
            return 2
        return 0

    return run_job("ingest-mongo", "Backfill a MongoDB product-view collection into bronze.", body, argv, arguments, check)


if __name__ == "__main__":
    sys.exit(main())
