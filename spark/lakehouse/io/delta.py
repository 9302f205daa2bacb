"""Delta Lake reads and writes: the only module that knows how tables are stored."""

from __future__ import annotations

import json
import uuid

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession


def table_exists(spark: SparkSession, path: str) -> bool:
    """True when `path` holds a Delta table (at least one commit in `_delta_log`).

    Asks the file system rather than `DeltaTable.isDeltaTable`: that answers from Delta's
    in-process log cache, so a table another process created after the first question
    (the stream writing bronze while a notebook or test watches) stays "missing".
    """
    fs, base = _fs(spark, path)
    log = spark.sparkContext._jvm.org.apache.hadoop.fs.Path(base, "_delta_log")
    if not fs.exists(log):
        return False
    return any(
        status.getPath().getName().endswith((".json", ".parquet")) for status in fs.listStatus(log)
    )


def read_table(spark: SparkSession, path: str) -> DataFrame:
    """The current snapshot of the Delta table at `path`."""
    return spark.read.format("delta").load(path)


def append(
    df: DataFrame,
    path: str,
    partition_by: tuple[str, ...] = (),
    txn: tuple[str, int] | None = None,
    properties: dict[str, str] | None = None,
) -> None:
    """Append `df`; with `txn=(app_id, version)` a replayed version is skipped (exactly once).

    `properties` (`delta.*` table properties) apply when this append creates the table.
    """
    writer = df.write.format("delta").mode("append")
    for key, value in (properties or {}).items():
        writer = writer.option(key, value)
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    if txn is not None:
        writer = writer.option("txnAppId", txn[0]).option("txnVersion", txn[1])
    writer.save(path)


def replace_where(df: DataFrame, path: str, condition: str, txn: tuple[str, int] | None = None) -> None:
    """Atomically replace the rows matching `condition` with `df` (creates the table if absent)."""
    spark = df.sparkSession
    writer = df.write.format("delta")
    if txn is not None:
        writer = writer.option("txnAppId", txn[0]).option("txnVersion", txn[1])
    if table_exists(spark, path):
        writer.mode("overwrite").option("replaceWhere", condition).save(path)
    else:
        writer.mode("append").save(path)


def last_commit_metrics(spark: SparkSession, path: str) -> dict[str, str]:
    """operationMetrics of the table's latest commit (e.g. numOutputRows)."""
    row = DeltaTable.forPath(spark, path).history(1).select("operationMetrics").first()
    return dict(row["operationMetrics"] or {}) if row else {}


def table_version(spark: SparkSession, path: str) -> int | None:
    """The table's latest version, or None when there is no table."""
    if not table_exists(spark, path):
        return None
    return int(DeltaTable.forPath(spark, path).history(1).select("version").first()[0])


def _fs(spark: SparkSession, path: str):
    jvm = spark.sparkContext._jvm
    jpath = jvm.org.apache.hadoop.fs.Path(path)
    return jpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), jpath


def writer_app_id(spark: SparkSession, checkpoint: str, name: str) -> str:
    """A Delta txnAppId tied to one streaming checkpoint.

    Written once beside the checkpoint, so a restarted stream keeps its id (replayed
    micro-batches are skipped), while a deleted checkpoint gets a fresh id (its batch
    ids restart at 0 and must not be mistaken for replays).
    """
    fs, base = _fs(spark, checkpoint)
    jvm = spark.sparkContext._jvm
    marker = jvm.org.apache.hadoop.fs.Path(base, "_lakehouse_writer.json")
    if fs.exists(marker):
        stream = fs.open(marker)
        try:
            data = jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8")
        finally:
            stream.close()
        return json.loads(data)["app_id"]
    app_id = f"{name}-{uuid.uuid4()}"
    fs.mkdirs(base)
    out = fs.create(marker, True)
    try:
        out.write(bytearray(json.dumps({"app_id": app_id}).encode()))
    finally:
        out.close()
    return app_id


def process_new_rows(spark: SparkSession, path: str, checkpoint: str, name: str, handle_batch) -> int:
    """Feed rows appended to the table at `path` since the last run to `handle_batch`.

    A streaming read with `availableNow`: the checkpoint remembers what was processed,
    so each run sees only new data and a failed run resumes where it stopped.
    `handle_batch(df, batch_id, app_id)` gets each micro-batch; returns batches run.
    """
    app_id = writer_app_id(spark, checkpoint, name)
    batches = []

    def on_batch(df: DataFrame, batch_id: int) -> None:
        handle_batch(df, batch_id, app_id)
        batches.append(batch_id)

    query = (
        spark.readStream.format("delta")
        .load(path)
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
