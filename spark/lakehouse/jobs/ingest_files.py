"""Bronze from files: access-log or product-view files (a file or a folder, gzip too).

    lakehouse ingest --dataset access_logs --path sample_logs/access.log
    spark-submit spark/lakehouse/jobs/ingest_files.py --dataset product_views --path DIR

Every line lands unchanged in `bronze/<dataset>` with its source file, size and mtime.
A file already ingested (same path, size and mtime) is skipped, so re-ingesting never
duplicates; a file that grew is ingested again and silver drops the repeated lines.
"""

from __future__ import annotations

import logging
import sys

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from lakehouse.config import Config
from lakehouse.io import delta, files
from lakehouse.jobs.common import JobRun, base_parser, config_from_args, get_session, setup_logging
from lakehouse.transforms.bronze import with_ingest_columns

log = logging.getLogger("lakehouse.ingest")

DATASETS = ("access_logs", "product_views")


def already_ingested(spark: SparkSession, table: str) -> set[tuple[str, int, int]]:
    """(path, size, mtime ms) of every file bronze already holds rows of."""
    if not delta.table_exists(spark, table):
        return set()
    rows = (
        delta.read_table(spark, table)
        .where(F.col("source_file").isNotNull())
        .select("source_file", "source_file_size", (F.unix_millis("source_file_mtime")).alias("mtime"))
        .distinct()
        .collect()
    )
    return {(files.normalize_uri(r[0]), int(r[1]), int(r[2])) for r in rows}


def ingest(spark: SparkSession, config: Config, dataset: str, path: str, run: JobRun) -> int:
    """Append the new files under `path` to bronze/<dataset>; returns the lines written."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}: expected one of {', '.join(DATASETS)}")
    table = config.table_path("bronze", dataset)
    listed = files.list_files(spark, path)
    # `_metadata.file_path` is the URI form Spark reads back, so compare in that form.
    seen = already_ingested(spark, table)
    new = [f for f in listed if (f.path, f.size, f.mtime_ms) not in seen]
    run.add(**{f"{dataset}_files_found": len(listed), f"{dataset}_files_skipped": len(listed) - len(new)})
    if not new:
        log.info("%s: %d file(s) under %s, all ingested already", dataset, len(listed), path)
        return 0
    log.info("%s: ingesting %d new file(s) of %d under %s", dataset, len(new), len(listed), path)
    rows = files.read_lines(spark, new).transform(with_ingest_columns)
    delta.append(rows, table, partition_by=("ingest_date",))
    written = int(delta.last_commit_metrics(spark, table).get("numOutputRows", 0))
    run.add(**{f"{dataset}_lines": written})
    return written


def main(argv: list[str] | None = None) -> int:
    parser = base_parser("lakehouse ingest", "Ingest access-log or product-view files into bronze.")
    parser.add_argument("--dataset", required=True, choices=DATASETS)
    parser.add_argument("--path", required=True, help="a file or folder (plain or .gz)")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    config = config_from_args(args)
    spark = get_session(config, "ingest")
    run = JobRun(f"ingest {args.dataset}")
    ingest(spark, config, args.dataset, args.path, run)
    run.record(spark, config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
