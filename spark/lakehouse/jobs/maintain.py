"""Table upkeep: compact small files (OPTIMIZE) and delete unreferenced ones (VACUUM).

    lakehouse maintain                         # every table of the warehouse
    lakehouse maintain --layer bronze          # only bronze (what the stream writes)
    lakehouse maintain --vacuum-hours 336      # keep two weeks of old files for time travel

A stream with a 1-second trigger commits a few small files per micro-batch per table:
tens of thousands a day. Reads slow down with the file count, so run `maintain` daily
(the Airflow DAG does, after gold) or whenever `files before` grows into the thousands.
OPTIMIZE rewrites small files into large ones in a commit marked `dataChange=false`, so
incremental readers (silver reads bronze as a stream) do not see the rows twice. VACUUM
then deletes files no version newer than `--vacuum-hours` needs (also stored as the
table's `delta.deletedFileRetentionDuration`); it never goes below Delta's 7-day safety
default unless you pass a smaller value on purpose, because a running stream or a
time-travel query may still read them.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

from pyspark.sql import SparkSession

from lakehouse.config import Config
from lakehouse.io import delta
from lakehouse.jobs.runtime import JobRun, run_job

log = logging.getLogger("lakehouse.maintain")

LAYERS = ("bronze", "silver", "gold", "quarantine", "_meta")
DEFAULT_VACUUM_HOURS = delta.SAFE_RETENTION_HOURS


def warehouse_tables(spark: SparkSession, config: Config, layers: tuple[str, ...]) -> list[str]:
    """Paths of the Delta tables under `<warehouse>/<layer>/` for the given layers."""
    return [path for layer in layers for path in delta.tables_under(spark, config.table_path(layer, "x").rsplit("/", 1)[0])]


def maintain_table(spark: SparkSession, path: str, vacuum_hours: float, run: JobRun) -> None:
    """OPTIMIZE then VACUUM one table, logging the file count before and after."""
    started = time.time()
    before = delta.file_count(spark, path)
    delta.compact(spark, path)
    after = delta.file_count(spark, path)
    delta.vacuum(spark, path, vacuum_hours)
    run.add(tables=1, files_before=before, files_after=after)
    log.info("%s: %d -> %d files, vacuumed files older than %gh (%.1fs)", path, before, after, vacuum_hours, time.time() - started)


def main(argv: list[str] | None = None) -> int:
    def arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--layer", action="append", choices=LAYERS, help="layer to maintain (repeatable; default: all)")
        parser.add_argument(
            "--vacuum-hours", type=float, default=DEFAULT_VACUUM_HOURS,
            help=f"keep unreferenced files younger than this (default {DEFAULT_VACUUM_HOURS} = Delta's 7 days)",
        )

    def body(spark: SparkSession, config: Config, run: JobRun, args: argparse.Namespace) -> None:
        if args.vacuum_hours < DEFAULT_VACUUM_HOURS:
            log.warning("vacuum below 7 days: readers older than %gh may fail", args.vacuum_hours)
        for path in warehouse_tables(spark, config, tuple(args.layer or LAYERS)):
            maintain_table(spark, path, args.vacuum_hours, run)

    return run_job("maintain", "OPTIMIZE (compact small files) and VACUUM every table.", body, argv, arguments)


if __name__ == "__main__":
    sys.exit(main())
