"""Raw files (local or s3a, plain or compressed) -> bronze-shaped rows, via Hadoop's FileSystem.

Listing, the first bytes of a file (its fingerprint), and reading lines with their
line number in the file: the place that identifies a record (`transforms.file_identity`).
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

# Filebeat's default fingerprint length: enough bytes to tell log files apart, small
# enough to read for every new file.
HEAD_BYTES = 1024


def normalize_uri(uri: str) -> str:
    """One spelling per local file: Hadoop lists `file:/x`, Spark's `_metadata` may say `file:///x`."""
    return re.sub(r"^file:/+", "file:///", uri)


@dataclass(frozen=True)
class SourceFile:
    """One input file: `path` as Hadoop names it (what Spark is given), `uri` as `_metadata` names it."""

    path: str
    uri: str
    size: int
    mtime_ms: int


@dataclass(frozen=True)
class Listing:
    """What a listing found: the data files, and the hidden names it passed over in folders."""

    files: list[SourceFile]
    hidden: list[str]


def filesystem(spark: SparkSession, path: str):
    """(Hadoop FileSystem, Path) for `path`: local, s3a, whatever the session is configured for."""
    jpath = spark.sparkContext._jvm.org.apache.hadoop.fs.Path(path)
    return jpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), jpath


def exists(spark: SparkSession, path: str) -> bool:
    """True when `path` (a file or folder, local or s3a://) exists."""
    fs, jpath = filesystem(spark, path)
    return bool(fs.exists(jpath))


def read_text(spark: SparkSession, path: str) -> str | None:
    """The UTF-8 text of a small file (a marker, a checkpoint entry), or None when it is absent."""
    fs, jpath = filesystem(spark, path)
    if not fs.exists(jpath):
        return None
    stream = fs.open(jpath)
    try:
        return spark.sparkContext._jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8")
    finally:
        stream.close()


def write_text(spark: SparkSession, path: str, text: str) -> None:
    """Write a small UTF-8 file (replacing it), making its folder when needed."""
    fs, jpath = filesystem(spark, path)
    fs.mkdirs(jpath.getParent())
    out = fs.create(jpath, True)
    try:
        out.write(bytearray(text.encode()))
    finally:
        out.close()


def child_names(spark: SparkSession, folder: str) -> list[str]:
    """Names of the entries of `folder` (none when it does not exist)."""
    fs, jpath = filesystem(spark, folder)
    if not fs.exists(jpath):
        return []
    return [status.getPath().getName() for status in fs.listStatus(jpath)]


def path_uri(spark: SparkSession, path: str) -> str:
    """`path` (as Hadoop names it) the way Spark's `_metadata.file_path` spells it."""
    fs, jpath = filesystem(spark, path)
    return normalize_uri(fs.makeQualified(jpath).toUri().toString())


def _source_file(status) -> SourceFile:
    jpath = status.getPath()
    return SourceFile(
        path=jpath.toString(),
        uri=normalize_uri(jpath.toUri().toString()),
        size=int(status.getLen()),
        mtime_ms=int(status.getModificationTime()),
    )


def is_hidden(name: str) -> bool:
    """Hadoop's and Spark's rule: names starting with `_` or `.` are not data (temp files, markers)."""
    return name.startswith((".", "_"))


def list_files(spark: SparkSession, path: str) -> Listing:
    """Data files under `path`: the file itself when it is one (whatever its name), or every
    file in the folder tree, hidden names skipped, each real file once.

    Folders are walked with loop detection: a symlink to a parent folder (or two links to
    one folder) is followed once, so no file is listed twice (local file systems; object
    stores have no links).
    """
    fs, root = filesystem(spark, path)
    if not fs.exists(root):
        raise FileNotFoundError(f"input path does not exist: {path}")
    top = fs.getFileStatus(root)
    if not top.isDirectory():
        return Listing([_source_file(top)], [])
    local = root.toUri().getScheme() in (None, "file")
    seen_real: set[str] = set()
    files: list[SourceFile] = []
    hidden: list[str] = []
    pending = [top]
    while pending:
        folder = pending.pop()
        if local:
            real = os.path.realpath(folder.getPath().toUri().getPath())
            if real in seen_real:
                continue
            seen_real.add(real)
        for status in fs.listStatus(folder.getPath()):
            name = status.getPath().getName()
            if is_hidden(name):
                hidden.append(status.getPath().toString())
            elif status.isDirectory():
                pending.append(status)
            elif not local:
                files.append(_source_file(status))
            else:
                real = os.path.realpath(status.getPath().toUri().getPath())
                if real not in seen_real:
                    seen_real.add(real)
                    files.append(_source_file(status))
    return Listing(sorted(files, key=lambda f: f.uri), sorted(hidden))


def read_head(spark: SparkSession, path: str, limit: int = HEAD_BYTES) -> bytes:
    """The first `limit` bytes of the file's content (decompressed, with the codec Spark's
    text reader picks from the file name)."""
    jvm = spark.sparkContext._jvm
    fs, jpath = filesystem(spark, path)
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    codec = jvm.org.apache.hadoop.io.compress.CompressionCodecFactory(conf).getCodec(jpath)
    stream = fs.open(jpath)
    try:
        if codec is not None:
            stream = codec.createInputStream(stream)
        # A byte[] return value comes over as bytes in one go. (Not a py4j array filled on the
        # JVM side: py4j passed IOUtils.read a copy, and every head read as zeros.)
        return bytes(stream.readNBytes(limit))
    finally:
        stream.close()


def reading_path(spark: SparkSession, source: SourceFile, scratch: str) -> str:
    """A path Spark's reader accepts for `source`: its own, or, when its name starts with
    `_`/`.` (which Spark's reader ignores even when named directly), a link or copy under
    `scratch` with the same extension."""
    name = source.path.rsplit("/", 1)[-1]
    if not is_hidden(name):
        return source.path
    fs, jsource = filesystem(spark, source.path)
    folder = hashlib.sha256(source.uri.encode()).hexdigest()[:16]
    target = f"{scratch.rstrip('/')}/{folder}/file-{name.lstrip('._')}"
    tfs, jtarget = filesystem(spark, target)
    jtarget = tfs.makeQualified(jtarget)
    tfs.mkdirs(jtarget.getParent())
    if jsource.toUri().getScheme() in (None, "file") and jtarget.toUri().getScheme() in (None, "file"):
        if not os.path.lexists(jtarget.toUri().getPath()):
            os.symlink(jsource.toUri().getPath(), jtarget.toUri().getPath())
    else:
        jvm = spark.sparkContext._jvm
        jvm.org.apache.hadoop.fs.FileUtil.copy(fs, jsource, tfs, jtarget, False, True, spark.sparkContext._jsc.hadoopConfiguration())
    return jtarget.toString()


def read_lines(spark: SparkSession, paths: list[str]) -> DataFrame:
    """One row per line of the files at `paths` (decompressed), with where it was read.

    Columns: `value` (the line's bytes as read, `\\n` ending removed), `_file_uri`,
    `_block_start` (the split the line was read in) and `_position` (increasing within a
    split, in file order): what `with_line_numbers` turns into line numbers. Lines end at
    `\\n` only (a lone `\\r` inside a line does not split it; a `\\r\\n` ending leaves its
    `\\r`, which the silver parsers strip).
    """
    meta = F.col("_metadata")
    return (
        spark.read.format("text")
        .option("lineSep", "\n")
        .load(paths)
        .select(
            F.col("value"),
            meta.getField("file_path").alias("_file_uri"),
            meta.getField("file_block_start").alias("_block_start"),
            F.monotonically_increasing_id().alias("_position"),
        )
    )


def split_stats(lines: DataFrame) -> DataFrame:
    """Per split read: (`_file_uri`, `_block_start`, `lines`, `first_position`)."""
    return lines.groupBy("_file_uri", "_block_start").agg(
        F.count(F.lit(1)).alias("lines"), F.min("_position").alias("first_position")
    )


def with_line_numbers(lines: DataFrame, splits: DataFrame) -> DataFrame:
    """`source_line` (1-based line number in its file) for rows of `read_lines`.

    `splits` holds, per split, its first line number (`first_line`) and first position,
    computed from `split_stats` of the same DataFrame: a row's number is the split's first
    line plus how far into the split it is. No shuffle of the lines themselves.
    """
    keyed = lines.join(F.broadcast(splits.select("_file_uri", "_block_start", "first_line", "first_position")), ["_file_uri", "_block_start"])
    return keyed.withColumn("source_line", F.col("first_line") + (F.col("_position") - F.col("first_position"))).drop(
        "first_line", "first_position", "_block_start", "_position"
    )
