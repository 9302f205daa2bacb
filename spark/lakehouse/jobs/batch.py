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

from lakehouse.jobs import export_gold, gold_daily, ingest_files, silver_access_logs, silver_product_views
from lakehouse.jobs.common import JobRun, base_parser, config_from_args, get_session, setup_logging

log = logging.getLogger("lakehouse.batch")


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
    stages = []
    if args.access_logs or args.product_views:
        stage = JobRun("1/4 bronze")
        if args.access_logs:
            ingest_files.ingest(spark, config, "access_logs", args.access_logs, stage)
        if args.product_views:
            ingest_files.ingest(spark, config, "product_views", args.product_views, stage)
        stages.append(stage)
        stage.record(spark, config)
    if args.access_logs:
        stage = JobRun("2/4 silver access_logs")
        silver_access_logs.run(spark, config, stage)
        stages.append(stage)
        stage.record(spark, config)
    if args.product_views:
        stage = JobRun("2/4 silver product_views")
        silver_product_views.run(spark, config, stage)
        stages.append(stage)
        stage.record(spark, config)
    stage = JobRun("3/4 gold")
    gold_daily.run(spark, config, stage)
    stage.record(spark, config)
    if args.no_export:
        log.info("export skipped (--no-export)")
    else:
        stage = JobRun("4/4 export")
        export_gold.run(spark, config, stage)
        stage.record(spark, config)
    print(f"batch: done in {time.time() - started:.1f}s; warehouse {config.warehouse}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
