"""Bronze from files: access-log or product-view files (a file or a folder, gzip too).

    lakehouse ingest --dataset access_logs --path sample_logs/access.log
    spark-submit spark/lakehouse/jobs/ingest_files.py --dataset product_views --path DIR

Every line lands unchanged in `bronze/<dataset>` with its place: the file's id (a
fingerprint of its first bytes, `transforms.file_identity`) and its line number. So
the same file ingested again adds nothing, also after log rotation renamed or
compressed it; a file that grew adds only its new lines; a folder holding the same
file twice (a copy, a symlink loop) ingests it once. A file already ingested unchanged
(same path, size and mtime) is not even opened. A file that cannot be read (a
truncated gzip, no permission) is reported with its path and reason, recorded in
`_meta/ingest_errors`, and skipped: the other files land.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from py4j.protocol import Py4JJavaError
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.config import Config
from lakehouse.feeds import NAMES, feed
from lakehouse.io import delta, files, staging
from lakehouse.jobs.runtime import JobRun, run_job
from lakehouse.transforms import file_identity
from lakehouse.transforms.bronze import BRONZE_PROPERTIES, from_file_lines

log = logging.getLogger("lakehouse.ingest")


ERRORS_SCHEMA = T.StructType(
    [
        T.StructField("dataset", T.StringType()),
        T.StructField("path", T.StringType()),
        T.StructField("reason", T.StringType()),
        T.StructField("run_id", T.StringType()),
        T.StructField("detected_at", T.TimestampType()),
    ]
)


@dataclass(frozen=True)
class BronzeFiles:
    """What bronze holds of files: every (uri, size, mtime ms) version read, and each file id's last line."""

    versions: set[tuple[str, int, int]]
    known: list[file_identity.KnownFile]


def ingested_files(spark: SparkSession, table: str) -> BronzeFiles:
    """The files bronze holds lines of (one row per file version: small, whatever the lines)."""
    if not delta.table_exists(spark, table):
        return BronzeFiles(set(), [])
    bronze = delta.read_table(spark, table)
    file_id = F.col("source_file_id") if "source_file_id" in bronze.columns else F.lit(None).cast("string")
    line = F.col("source_line") if "source_line" in bronze.columns else F.lit(None).cast("bigint")
    rows = (
        # Rows from `ingest-mongo` name a collection, not a file: they are no file version.
        bronze.where(F.col("source_file").isNotNull() & ~F.col("source_file").startswith("mongodb"))  # mongodb:// and mongodb+srv://
        .groupBy(file_id.alias("file_id"), "source_file", "source_file_size", F.unix_millis("source_file_mtime").alias("mtime"))
        .agg(F.max(line).alias("lines"))
        .collect()
    )
    versions = {(files.normalize_uri(r["source_file"]), int(r["source_file_size"]), int(r["mtime"])) for r in rows}
    last: dict[str, int] = {}
    for r in rows:
        if r["file_id"] is not None and r["lines"] is not None:
            last[r["file_id"]] = max(last.get(r["file_id"], 0), int(r["lines"]))
    return BronzeFiles(versions, [file_identity.KnownFile(k, v) for k, v in sorted(last.items())])


def _error_reason(error: Exception) -> str:
    """The innermost Java exception's message (e.g. "Unexpected end of input stream")."""
    java = getattr(error, "java_exception", None)
    if java is None:
        return str(error).splitlines()[0]
    while java.getCause() is not None:
        java = java.getCause()
    return f"{java.getClass().getSimpleName()}: {java.getMessage()}"


class _Reader:
    """The lines of a set of files with their line numbers, read in two passes of one plan."""

    def __init__(self, spark: SparkSession, paths: dict[str, files.SourceFile]):
        self.spark = spark
        self.lines = files.read_lines(spark, sorted(paths))
        stats = files.split_stats(self.lines).collect()
        by_path = {files.path_uri(spark, p): source for p, source in paths.items()}
        per_file: dict[str, list] = {}
        for row in stats:
            per_file.setdefault(row["_file_uri"], []).append(row)
        self.counts: dict[str, int] = {}  # source uri -> lines
        self.sources: dict[str, files.SourceFile] = {}  # source uri -> the file
        self.spark_uri: dict[str, str] = {}  # source uri -> `_file_uri` as Spark wrote it
        split_rows = []
        for spark_uri, splits in per_file.items():
            source = by_path[files.normalize_uri(spark_uri)]
            first = 1
            for split in sorted(splits, key=lambda r: r["_block_start"]):
                split_rows.append((spark_uri, split["_block_start"], first, split["first_position"]))
                first += split["lines"]
            self.counts[source.uri] = first - 1
            self.sources[source.uri] = source
            self.spark_uri[source.uri] = spark_uri
        schema = "_file_uri string, _block_start bigint, first_line bigint, first_position bigint"
        self.numbered = files.with_line_numbers(self.lines, spark.createDataFrame(split_rows, schema))

    def line_hashes(self, probes: set[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """xxhash64 of the (valid UTF-8) text of the given (source uri, line) pairs."""
        if not probes:
            return {}
        back = {v: k for k, v in self.spark_uri.items()}
        wanted = self.spark.createDataFrame([(self.spark_uri[u], n) for u, n in sorted(probes)], "_file_uri string, source_line bigint")
        rows = (
            self.numbered.join(F.broadcast(wanted), ["_file_uri", "source_line"], "left_semi")
            .select("_file_uri", "source_line", F.xxhash64(F.make_valid_utf8("value")).alias("h"))
            .collect()
        )
        return {(back[r[0]], int(r[1])): int(r[2]) for r in rows}


def known_line_hashes(spark: SparkSession, table: str, probes: set[tuple[str, int]]) -> dict[tuple[str, int], int]:
    """xxhash64 of bronze's text at the given (file id, line) pairs."""
    if not probes:
        return {}
    wanted = spark.createDataFrame(sorted(probes), "source_file_id string, source_line bigint")
    ids = sorted({p[0] for p in probes})
    rows = (
        delta.read_table(spark, table)
        .where(F.col("source_file_id").isin(ids))
        .join(F.broadcast(wanted), ["source_file_id", "source_line"], "left_semi")
        .select("source_file_id", "source_line", F.xxhash64("value").alias("h"))
        .collect()
    )
    return {(r[0], int(r[1])): int(r[2]) for r in rows}


def _readable(spark: SparkSession, paths: dict[str, files.SourceFile]) -> tuple[dict[str, files.SourceFile], dict[str, str]]:
    """Split `paths` into those Spark reads to the end and those it cannot (with why).

    Called only after a read of all of them failed: each file is read on its own.
    """
    good, bad = {}, {}
    for path, source in paths.items():
        try:
            files.read_lines(spark, [path]).select("_position").count()
            good[path] = source
        except Py4JJavaError as error:
            bad[source.uri] = _error_reason(error)
    return good, bad


def _read(spark: SparkSession, paths: dict[str, files.SourceFile], failed: dict[str, str]) -> _Reader | None:
    try:
        return _Reader(spark, paths)
    except Py4JJavaError:
        good, bad = _readable(spark, paths)
        failed.update(bad)
        return _Reader(spark, good) if good else None


def record_errors(spark: SparkSession, config: Config, dataset: str, failed: dict[str, str], run: JobRun) -> None:
    """Log and record the files that could not be read (`_meta/ingest_errors`)."""
    if not failed:
        return
    for uri, reason in sorted(failed.items()):
        log.error("%s: cannot read %s: %s (skipped; the other files are ingested)", dataset, uri, reason)
    rows = [(dataset, uri, reason, run.run_id, None) for uri, reason in sorted(failed.items())]
    df = spark.createDataFrame(rows, ERRORS_SCHEMA).withColumn("detected_at", F.current_timestamp())
    delta.append(df, config.table_path("_meta", "ingest_errors"))


def outside(path: str, within: str) -> bool:
    """Whether the local `path` (symbolic links followed) lies outside the folder `within`."""
    real, root = os.path.realpath(path), os.path.realpath(within)
    return os.path.commonpath([real, root]) != root


def ingest(spark: SparkSession, config: Config, dataset: str, path: str, run: JobRun, within: str | None = None) -> int:
    """Append the new lines of the files under `path` to bronze/<dataset>; returns the lines written.

    With `within` (a local folder), `path` and every file found under it must lie inside that
    folder, symbolic links followed: a path that does not is refused (ValueError), a file
    that does not is recorded as unreadable and skipped (a scheduler's run parameters must
    not make the job read any file the worker can).
    """
    feed(dataset)  # every registered feed can arrive as files; an unknown one is named
    if within is not None and outside(path, within):
        raise ValueError(f"refusing {path}: it is outside the incoming folder {within}")
    table = config.table_path("bronze", dataset)
    listing = files.list_files(spark, path)
    escaped: dict[str, str] = {}
    if within is not None:
        escaped = {f.uri: f"outside the incoming folder {within}" for f in listing.files
                   if outside(f.path.removeprefix("file:"), within)}
        listing = replace(listing, files=[f for f in listing.files if f.uri not in escaped])
    if listing.hidden:
        log.info("%s: %d hidden name(s) under %s not ingested (e.g. %s)", dataset, len(listing.hidden), path, listing.hidden[0])
    bronze_files = ingested_files(spark, table)
    changed = [f for f in listing.files if (f.uri, f.size, f.mtime_ms) not in bronze_files.versions]
    empty = [f for f in changed if f.size == 0]
    changed = [f for f in changed if f.size > 0]
    prefix = f"{dataset}_files"
    run.add(**{f"{prefix}_found": len(listing.files), f"{prefix}_skipped": len(listing.files) - len(changed)})
    if not changed and not escaped:
        log.info("%s: %d file(s) under %s, nothing new (%d empty)", dataset, len(listing.files), path, len(empty))
        return 0

    failed: dict[str, str] = dict(escaped)
    heads: dict[str, bytes] = {}
    for source in changed:
        try:
            heads[source.uri] = files.read_head(spark, source.path, file_identity.HEAD_BYTES)
        except Py4JJavaError as error:
            failed[source.uri] = _error_reason(error)
    scratch = f"{config.checkpoint('ingest_scratch')}/{run.run_id}_{dataset}"  # feeds may ingest side by side
    try:
        paths = {files.reading_path(spark, f, scratch): f for f in changed if f.uri in heads}
        reader = _read(spark, paths, failed) if paths else None
        written = _write_new_lines(spark, config, dataset, table, reader, heads, bronze_files, run) if reader else 0
    finally:
        staging.remove(spark, scratch)
    record_errors(spark, config, dataset, failed, run)
    run.add(**{f"{prefix}_failed": len(failed)})
    return written


def _write_new_lines(
    spark: SparkSession,
    config: Config,
    dataset: str,
    table: str,
    reader: _Reader,
    heads: dict[str, bytes],
    bronze_files: BronzeFiles,
    run: JobRun,
) -> int:
    candidates = [file_identity.Candidate(uri, heads[uri], n) for uri, n in sorted(reader.counts.items())]
    of_candidates, of_known = file_identity.line_probes(candidates, bronze_files.known)
    decisions = file_identity.plan(
        candidates,
        bronze_files.known,
        reader.line_hashes(of_candidates),
        known_line_hashes(spark, table, of_known),
    )
    sources = reader.sources
    selected = []
    for d in decisions:
        if d.file_id is None:
            log.info("%s: %s holds nothing new (same lines as %s)", dataset, d.uri, d.same_as)
            continue
        source = sources[d.uri]
        selected.append((reader.spark_uri[d.uri], d.file_id, d.skip_lines, source.uri, source.size, source.mtime_ms))
        if d.skip_lines:
            log.info("%s: %s continues a known file: lines after %d are new", dataset, d.uri, d.skip_lines)
    already = sum(d.skip_lines for d in decisions)
    prefix = f"{dataset}_files"
    run.add(**{f"{prefix}_read": len(selected), f"{prefix}_copies": len(decisions) - len(selected), f"{dataset}_lines_already_in": already})
    if not selected:
        return 0
    log.info("%s: ingesting %d file(s)", dataset, len(selected))
    chosen = spark.createDataFrame(
        selected,
        "_file_uri string, source_file_id string, skip bigint, source_file string, source_file_size bigint, mtime_ms bigint",
    )
    rows = (
        reader.numbered.join(F.broadcast(chosen), "_file_uri")
        .where(F.col("source_line") > F.col("skip"))
        .withColumn("source_file_mtime", F.timestamp_millis("mtime_ms"))
        .transform(lambda d: from_file_lines(d, F.lit(datetime.now(UTC))))
    )
    delta.set_properties(spark, table, BRONZE_PROPERTIES)
    delta.append(rows, table, partition_by=("ingest_date",), properties=BRONZE_PROPERTIES, merge_schema=True)
    written = int(delta.last_commit_metrics(spark, table).get("numOutputRows", 0))
    run.add(**{f"{dataset}_lines": written})
    return written


def main(argv: list[str] | None = None) -> int:
    def arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--dataset", required=True, choices=NAMES)
        parser.add_argument("--path", required=True, help="a file or folder (plain or .gz)")
        parser.add_argument("--within", help="refuse a path, and skip files, outside this local folder "
                                             "(the DAGs pass their incoming folder)")

    def body(spark: SparkSession, config: Config, run: JobRun, args: argparse.Namespace) -> int | None:
        run.job = f"ingest {args.dataset}"
        try:
            ingest(spark, config, args.dataset, args.path, run, within=args.within)
        except ValueError as error:
            log.error("%s", error)
            return 2
        return None

    return run_job("ingest", "Ingest access-log or product-view files into bronze.", body, argv, arguments)


if __name__ == "__main__":
    sys.exit(main())
