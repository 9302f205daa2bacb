"""The whole batch in one go: files -> bronze -> silver -> gold (-> export when configured).

    lakehouse batch --access-logs sample_logs/access.log --product-views sample_logs/product_views.jsonl --warehouse ./warehouse
    spark-submit spark/lakehouse/jobs/batch.py --access-logs DIR

Either input is optional; every stage is incremental and idempotent, so running the
same command twice changes nothing. Per-stage counts are printed as each stage ends.
"""

from __future__ import annotations

import logging
import sys
import time

from pyspark.sql import SparkSession

from lakehouse.config import Config
from lakehouse.jobs import (
    export_gold,
    gold_daily,
    ingest_files,
    silver_access_logs,
    silver_product_views,
)
from lakehouse.jobs.common import JobRun, base_parser, config_from_args, get_session, setup_logging

log = logging.getLogger("lakehouse.batch")


def run_batch(
    spark: SparkSession,
    config: Config,
    access_logs: str | None,
    product_views: str | None,
    export: bool = True,
) -> dict[str, JobRun]:
    """Run every stage for the given inputs; returns each stage's counts."""
    stages: dict[str, JobRun] = {}

    def stage(name: str, body) -> None:
        run = JobRun(name)
        body(run)
        run.record(spark, config)
        stages[name] = run

    def bronze(run: JobRun) -> None:
        if access_logs:
            ingest_files.ingest(spark, config, "access_logs", access_logs, run)
        if product_views:
            ingest_files.ingest(spark, config, "product_views", product_views, run)

    stage("1/4 bronze", bronze)
    # Silver runs for both datasets whatever the inputs: bronze may hold rows that a
    # previous (crashed) run or the Kafka stream landed and silver has not seen yet.
    stage("2/4 silver access_logs", lambda run: silver_access_logs.run(spark, config, run))
    stage("2/4 silver product_views", lambda run: silver_product_views.run(spark, config, run))
    stage("3/4 gold", lambda run: gold_daily.run(spark, config, run))
    if export:
        stage("4/4 export", lambda run: export_gold.run(spark, config, run))
    else:
        log.info("export skipped (--no-export)")
    return stages


def main(argv: list[str] | None = None) -> int:
    parser = base_parser("lakehouse batch", "Files -> bronze -> silver -> gold (-> export) in one go.")
    parser.add_argument("--access-logs", help="access-log file or folder")
    parser.add_argument("--product-views", help="product-view JSON-lines file or folder")
    parser.add_argument("--no-export", action="store_true", help="stop after gold")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    if not (args.access_logs or args.product_views):
        parser.error("give --access-logs and/or --product-views")
    config = config_from_args(args)
    started = time.time()
    spark = get_session(config, "batch")
    log.info("warehouse %s (profile %s)", config.warehouse, config.profile)
    run_batch(spark, config, args.access_logs, args.product_views, export=not args.no_export)
    print(f"batch: done in {time.time() - started:.1f}s; warehouse {config.warehouse}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
