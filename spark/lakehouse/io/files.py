"""Raw files (local or s3a, plain or gzip) -> bronze-shaped rows, via Hadoop's FileSystem."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F


def normalize_uri(uri: str) -> str:
    """One spelling per local file: Hadoop lists `file:/x`, Spark's `_metadata` says `file:///x`."""
    return re.sub(r"^file:/+", "file:///", uri)


@dataclass(frozen=True)
class SourceFile:
    """One input file as Spark's `_metadata` names it."""

    path: str
    size: int
    mtime_ms: int


def filesystem(spark: SparkSession, path: str):
    """(Hadoop FileSystem, Path) for `path`: local, s3a, whatever the session is configured for."""
    jpath = spark.sparkContext._jvm.org.apache.hadoop.fs.Path(path)
    return jpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), jpath


def list_files(spark: SparkSession, path: str) -> list[SourceFile]:
    """Data files under `path` (a file or a folder, recursively), skipping hidden/_ files."""
    fs, root = filesystem(spark, path)
    if not fs.exists(root):
        raise FileNotFoundError(f"input path does not exist: {path}")
    found = []
    it = fs.listFiles(root, True)
    while it.hasNext():
        status = it.next()
        name = status.getPath().getName()
        if name.startswith((".", "_")):
            continue
        found.append(
            SourceFile(
                path=normalize_uri(status.getPath().toUri().toString()),
                size=int(status.getLen()),
                mtime_ms=int(status.getModificationTime()),
            )
        )
    return sorted(found, key=lambda f: f.path)


def read_lines(spark: SparkSession, files: list[SourceFile]) -> DataFrame:
    """One row per line of `files` with bronze's source columns (gzip is decompressed)."""
    df = spark.read.format("text").load([f.path for f in files])
    meta = F.col("_metadata")
    return df.select(
        F.col("value"),
        F.lit(None).cast("binary").alias("raw_value"),
        F.lit(None).cast("string").alias("key"),
        F.lit(None).cast("string").alias("topic"),
        F.lit(None).cast("int").alias("partition"),
        F.lit(None).cast("bigint").alias("offset"),
        F.lit(None).cast("timestamp").alias("kafka_ts"),
        meta.getField("file_path").alias("source_file"),
        meta.getField("file_size").alias("source_file_size"),
        meta.getField("file_modification_time").alias("source_file_mtime"),
    )
