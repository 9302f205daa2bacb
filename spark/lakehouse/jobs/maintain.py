"""Table upkeep: compact small files (OPTIMIZE) and delete unreferenced ones (VACUUM).

    lakehouse maintain                         # every table of the warehouse
    lakehouse maintain --layer bronze          # only bronze (what the stream writes)
    lakehouse maintain --vacuum-hours 336      # keep two weeks of old files for time travel

A stream with a 1-second trigger commits a few small files per micro-batch per table:
tens of thousands a day. Reads slow down with the file count, so run `maintain` daily
(the Airflow DAG does, after gold) or whenever `files before` grows into the thousands.
OPTIMIZE rewrites small files into large ones in a commit marked `dataChange=false`, so
incremental readers (silver reads bronze as a stream) do not see the rows twice. VACUUM
then deletes files no version newer than `--vacuum-hours` needs; it never goes below
Delta's 7-day safety default unless you pass a smaller value on purpose, because a
running stream or a time-travel query may still read them.
"""

from __future__ import annotations

import logging
import sys

from delta.tables import DeltaTable
from pyspark.sql import SparkSession

from lakehouse.config import Config
from lakehouse.io import delta
from lakehouse.jobs.common import JobRun, base_parser, config_from_args, get_session, setup_logging

log = logging.getLogger("lakehouse.maintain")

LAYERS = ("bronze", "silver", "gold", "quarantine", "_meta")
DEFAULT_VACUUM_HOURS = 168


def warehouse_tables(spark: SparkSession, config: Config, layers: tuple[str, ...]) -> list[str]:
    """Paths of the Delta tables under `<warehouse>/<layer>/` for the given layers."""
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    found = []
    for layer in layers:
        root = jvm.org.apache.hadoop.fs.Path(config.table_path(layer, "x")).getParent()
        fs = root.getFileSystem(conf)
        if not fs.exists(root):
            continue
        for status in fs.listStatus(root):
            path = status.getPath().toString()
            if status.isDirectory() and delta.table_exists(spark, path):
                found.append(path)
    return sorted(found)


def file_count(spark: SparkSession, path: str) -> int:
    return int(DeltaTable.forPath(spark, path).detail().select("numFiles").first()[0])


def maintain_table(spark: SparkSession, path: str, vacuum_hours: float, run: JobRun) -> None:
    """OPTIMIZE then VACUUM one table, logging the file count before and after."""
    table = DeltaTable.forPath(spark, path)
    before = file_count(spark, path)
    table.optimize().executeCompaction()
    after = file_count(spark, path)
    table.vacuum(vacuum_hours)
    run.add(tables=1, files_before=before, files_after=after)
    log.info("%s: %d -> %d files (vacuumed files older than %gh)", path, before, after, vacuum_hours)


def main(argv: list[str] | None = None) -> int:
    parser = base_parser("lakehouse maintain", "OPTIMIZE (compact small files) and VACUUM every table.")
    parser.add_argument("--layer", action="append", choices=LAYERS, help="layer to maintain (repeatable; default: all)")
    parser.add_argument(
        "--vacuum-hours", type=float, default=DEFAULT_VACUUM_HOURS,
        help=f"keep unreferenced files younger than this (default {DEFAULT_VACUUM_HOURS} = Delta's 7 days)",
    )
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    config = config_from_args(args)
    extra = {}
    if args.vacuum_hours < DEFAULT_VACUUM_HOURS:
        log.warning("vacuum below 7 days: readers older than %gh may fail", args.vacuum_hours)
        extra["spark.databricks.delta.retentionDurationCheck.enabled"] = "false"
    spark = get_session(config, "maintain")
    for key, value in extra.items():
        spark.conf.set(key, value)
    run = JobRun("maintain")
    for path in warehouse_tables(spark, config, tuple(args.layer or LAYERS)):
        maintain_table(spark, path, args.vacuum_hours, run)
    run.record(spark, config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
