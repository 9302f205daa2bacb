"""Delta Lake reads and writes: the only module that knows how tables are stored."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, DataFrameWriter, SparkSession

from lakehouse.io import files
from lakehouse.io.files import filesystem, read_text, write_text


def table_exists(spark: SparkSession, path: str) -> bool:
    """True when `path` holds a Delta table (at least one commit in `_delta_log`).

    Asks the file system rather than `DeltaTable.isDeltaTable`: that answers from Delta's
    in-process log cache, so a table another process created after the first question
    (the stream writing bronze while a notebook or test watches) stays "missing".
    """
    fs, base = filesystem(spark, path)
    log = spark.sparkContext._jvm.org.apache.hadoop.fs.Path(base, "_delta_log")
    if not fs.exists(log):
        return False
    return any(
        status.getPath().getName().endswith((".json", ".parquet")) for status in fs.listStatus(log)
    )


_locks_guard = threading.Lock()
_table_locks: dict[str, threading.RLock] = {}


@contextmanager
def writing(path: str) -> Iterator[None]:
    """One writer at a time per table in this process (the batch runs feeds and tables on
    several threads). Two first commits to a missing table would both be version 0, and
    Delta fails the second ("multiple writers are writing to an empty directory"); an
    `append_once` checks and writes as one step. Writers in other processes are Delta's
    optimistic concurrency's to sort out, as before.
    """
    with _locks_guard:
        lock = _table_locks.setdefault(path.rstrip("/"), threading.RLock())
    with lock:
        yield


def read_table(spark: SparkSession, path: str, version: int | None = None) -> DataFrame:
    """The current snapshot of the Delta table at `path` (or the given version of it)."""
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    return reader.load(path)


def _append_writer(
    df: DataFrame, partition_by: tuple[str, ...], properties: dict[str, str] | None, merge_schema: bool = False
) -> DataFrameWriter:
    """A Delta append writer; `properties` (`delta.*`) apply when the append creates the table.

    `merge_schema` lets the append add columns the table does not have yet (a table
    written by an earlier version of the lakehouse).
    """
    writer = df.write.format("delta").mode("append")
    if merge_schema:
        writer = writer.option("mergeSchema", "true")
    for key, value in (properties or {}).items():
        writer = writer.option(key, value)
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    return writer


def append(
    df: DataFrame,
    path: str,
    partition_by: tuple[str, ...] = (),
    txn: tuple[str, int] | None = None,
    properties: dict[str, str] | None = None,
    merge_schema: bool = False,
) -> None:
    """Append `df`; with `txn=(app_id, version)` a replayed version is skipped (exactly once).

    `properties` (`delta.*` table properties) apply when this append creates the table.
    """
    writer = _append_writer(df, partition_by, properties, merge_schema)
    if txn is not None:
        writer = writer.option("txnAppId", txn[0]).option("txnVersion", txn[1])
    with writing(path):
        writer.save(path)


# Commits this process made with `append_once`: (table, writer id) -> last batch id.
_written_batches: dict[tuple[str, str], int] = {}


def last_batch_written(spark: SparkSession, path: str, writer_id: str) -> int | None:
    """The highest batch id that `writer_id` committed to the table (from commit metadata).

    Reads commit infos only (the latest commits first, then further back), never the
    table's state: cheap however many files the table holds.
    """
    prefix = f"{writer_id}:"
    if not table_exists(spark, path):
        return None
    table = DeltaTable.forPath(spark, path)
    limit = 50
    while True:
        rows = table.history(limit).select("version", "userMetadata").collect()
        found = [int(r["userMetadata"][len(prefix):]) for r in rows if (r["userMetadata"] or "").startswith(prefix)]
        if found:
            return max(found)
        if len(rows) < limit or rows[-1]["version"] == 0:
            return None
        limit *= 10


def set_properties(spark: SparkSession, path: str, properties: dict[str, str]) -> None:
    """Set table properties (e.g. `delta.checkpointInterval`) on an existing table if they differ."""
    if not properties or not table_exists(spark, path):
        return
    current = DeltaTable.forPath(spark, path).detail().select("properties").first()["properties"] or {}
    changed = {k: v for k, v in properties.items() if current.get(k) != v}
    if changed:
        assignments = ", ".join(f"'{k}' = '{v}'" for k, v in changed.items())
        spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ({assignments})")


def append_once(
    df: DataFrame,
    path: str,
    writer_id: str,
    batch_id: int,
    partition_by: tuple[str, ...] = (),
    properties: dict[str, str] | None = None,
    merge_schema: bool = False,
) -> bool:
    """Append `df` as batch `batch_id` of `writer_id` unless that batch is already in the table.

    Exactly once for one writer that numbers its batches in increasing order (a stream's
    micro-batches): the pair is stored in the commit's `userMetadata`, and a replayed batch
    (the process died after the commit, before its checkpoint recorded it) is found there.
    Rather than Delta's txnAppId/txnVersion, whose check rebuilds the table's whole state
    (every live file) on every commit: seconds per micro-batch once a table is large.
    `properties` (`delta.*` table properties) apply when this append creates the table.
    Returns False when the batch was skipped as a replay.
    """
    spark = df.sparkSession
    key = (path, writer_id)
    with writing(path):
        if key not in _written_batches:
            last = last_batch_written(spark, path, writer_id)
            _written_batches[key] = -1 if last is None else last
        if batch_id <= _written_batches[key]:
            return False
        writer = _append_writer(df, partition_by, properties, merge_schema).option("userMetadata", f"{writer_id}:{batch_id}")
        try:
            writer.save(path)
        except Exception:
            # The commit may have landed even though the call failed (storage answered
            # late): ask the table again before the next batch rather than trust memory.
            _written_batches.pop(key, None)
            raise
        _written_batches[key] = batch_id
    return True


def replace_where(
    df: DataFrame, path: str, condition: str, txn: tuple[str, int] | None = None, partition_by: tuple[str, ...] = ()
) -> None:
    """Atomically replace the rows matching `condition` with `df` (creates the table if absent,
    partitioned by `partition_by`; an existing table keeps the partitioning it has).

    A condition on partition columns only drops whole files by their partition values;
    on other columns Delta reads the files that may hold matching rows and rewrites the
    rest of them (about twice the time on a small table, and growing with it).
    """
    spark = df.sparkSession
    writer = df.write.format("delta")
    if txn is not None:
        writer = writer.option("txnAppId", txn[0]).option("txnVersion", txn[1])
    with writing(path):
        if table_exists(spark, path):
            writer.mode("overwrite").option("replaceWhere", condition).save(path)
        else:
            if partition_by:
                writer = writer.partitionBy(*partition_by)
            writer.mode("append").save(path)


def last_commit_metrics(spark: SparkSession, path: str) -> dict[str, str]:
    """operationMetrics of the table's latest commit (e.g. numOutputRows)."""
    row = DeltaTable.forPath(spark, path).history(1).select("operationMetrics").first()
    return dict(row["operationMetrics"] or {}) if row else {}


def history(spark: SparkSession, path: str, limit: int | None = None) -> DataFrame:
    """The table's commits, newest first (`DESCRIBE HISTORY`: version, timestamp, operation,
    operationParameters, operationMetrics...); the latest `limit` only when given."""
    table = DeltaTable.forPath(spark, path)
    return table.history(limit) if limit is not None else table.history()


def table_version(spark: SparkSession, path: str) -> int | None:
    """The table's latest version, or None when there is no table."""
    if not table_exists(spark, path):
        return None
    return int(DeltaTable.forPath(spark, path).history(1).select("version").first()[0])


def writer_app_id(spark: SparkSession, checkpoint: str, name: str) -> str:
    """A Delta txnAppId tied to one streaming checkpoint.

    Written once beside the checkpoint, so a restarted stream keeps its id (replayed
    micro-batches are skipped), while a deleted checkpoint gets a fresh id (its batch
    ids restart at 0 and must not be mistaken for replays).
    """
    marker = f"{checkpoint.rstrip('/')}/_lakehouse_writer.json"
    data = read_text(spark, marker)
    if data is not None:
        return json.loads(data)["app_id"]
    app_id = f"{name}-{uuid.uuid4()}"
    write_text(spark, marker, json.dumps({"app_id": app_id}))
    return app_id


def process_new_rows(
    spark: SparkSession, path: str, checkpoint: str, name: str, handle_batch, skip_change_commits: bool = False
) -> int:
    """Feed rows appended to the table at `path` since the last run to `handle_batch`.

    A streaming read with `availableNow`: the checkpoint remembers what was processed,
    so each run sees only new data and a failed run resumes where it stopped.
    `handle_batch(df, batch_id, app_id)` gets each micro-batch; returns batches run.
    A commit that deletes or rewrites rows of the table stops the read with an error,
    unless `skip_change_commits` (then such commits are passed over: the reader must
    handle those changes another way).
    """
    app_id = writer_app_id(spark, checkpoint, name)
    batches = []

    def on_batch(df: DataFrame, batch_id: int) -> None:
        handle_batch(df, batch_id, app_id)
        batches.append(batch_id)

    reader = spark.readStream.format("delta")
    if skip_change_commits:
        reader = reader.option("skipChangeCommits", "true")
    query = (
        reader.load(path)
        .writeStream.queryName(name)
        .foreachBatch(on_batch)
        .option("checkpointLocation", checkpoint)
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination()
    if query.exception() is not None:
        raise RuntimeError(f"{name} failed: {query.exception()}")
    return len(batches)


def tables_under(spark: SparkSession, folder: str) -> list[str]:
    """Paths of the Delta tables directly under `folder` (none when it does not exist)."""
    fs, root = filesystem(spark, folder)
    if not fs.exists(root):
        return []
    found = [s.getPath().toString() for s in fs.listStatus(root) if s.isDirectory()]
    return sorted(p for p in found if table_exists(spark, p))


def file_count(spark: SparkSession, path: str) -> int:
    """Live data files of the table's current version."""
    return detail(spark, path)["files"]


def detail(spark: SparkSession, path: str) -> dict:
    """Files and bytes of the table's current version, and its last commit (time, operation)."""
    table = DeltaTable.forPath(spark, path)
    size = table.detail().select("numFiles", "sizeInBytes").first()
    last = table.history(1).select("timestamp", "operation").first()
    return {"files": int(size[0]), "bytes": int(size[1]), "last_write": last[0], "operation": last[1]}


def compact(spark: SparkSession, path: str) -> None:
    """OPTIMIZE: small files rewritten into large ones, in a commit with `dataChange=false`
    (incremental readers of the table see nothing new)."""
    DeltaTable.forPath(spark, path).optimize().executeCompaction()


# Delta's safety floor: VACUUM below it needs `retentionDurationCheck` turned off.
SAFE_RETENTION_HOURS = 168


def vacuum(spark: SparkSession, path: str, retention_hours: float) -> None:
    """Delete the table's files that no version younger than `retention_hours` needs.

    The retention is also stored as the table's `delta.deletedFileRetentionDuration`, the
    setting Delta goes by whenever it is not told a number (and that some Delta builds take
    over the argument), so every VACUUM of the table keeps what was asked for.
    """
    seconds = int(round(retention_hours * 3600))
    set_properties(spark, path, {"delta.deletedFileRetentionDuration": f"interval {seconds} seconds"})
    check = "spark.databricks.delta.retentionDurationCheck.enabled"
    # Listing the table's files runs this many tasks; Spark's default (10,000) turned the
    # VACUUM of a tiny table into ~30 s of task scheduling.
    listing = "spark.sql.sources.parallelPartitionDiscovery.parallelism"
    before = {key: spark.conf.get(key, None) for key in (check, listing)}
    spark.conf.set(listing, str(max(8, 2 * spark.sparkContext.defaultParallelism)))
    if retention_hours < SAFE_RETENTION_HOURS:
        spark.conf.set(check, "false")
    try:
        DeltaTable.forPath(spark, path).vacuum(retention_hours)
    finally:
        for key, value in before.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)


def processed_version(spark: SparkSession, checkpoint: str) -> int | None:
    """The last version of a Delta source table that the streaming query of `checkpoint`
    has wholly processed (its last committed micro-batch's end offset), or None when it
    has committed nothing yet.

    The offset is (reservoirVersion, index): index -1 means "before the first file of
    that version", so the version before it is the last one done.
    """
    done = [int(name) for name in files.child_names(spark, f"{checkpoint}/commits") if name.isdigit()]
    if not done:
        return None
    text = files.read_text(spark, f"{checkpoint}/offsets/{max(done)}") or ""
    # "v1", the batch metadata, then the source's offset as one JSON line.
    offset = json.loads(text.splitlines()[2])
    version = int(offset["reservoirVersion"])
    return version - 1 if int(offset.get("index", -1)) == -1 else version


def count_at(spark: SparkSession, path: str, version: int) -> int:
    """Rows of the table at `version` (0 before the table existed)."""
    if version < 0:
        return 0
    return spark.read.format("delta").option("versionAsOf", version).load(path).count()
