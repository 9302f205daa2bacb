"""The whole batch in one go: files -> bronze -> silver -> gold (-> export when configured).

    lakehouse batch --access-logs sample_logs/access.log --product-views sample_logs/product_views.jsonl --warehouse ./warehouse
    lakehouse batch --web-events events.jsonl --api-ticks .data/landing/api_ticks
    lakehouse batch --ip-events .data/landing/ip_events      # what `lakehouse serve` collected
    lakehouse batch --from-kafka          # bronze stage = catch up on the Kafka topics
    spark-submit spark/lakehouse/jobs/batch.py --access-logs DIR

Every input is optional; with `--from-kafka` the bronze stage is a catch-up run of the
stream (`lakehouse stream --trigger availableNow`). Every stage is incremental and
idempotent, so running the same command twice changes nothing. Per-stage counts are
printed as each stage ends.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from importlib import import_module

from pyspark.sql import SparkSession

from lakehouse.config import Config
from lakehouse.feeds import NAMES
from lakehouse.jobs import export_gold, gold_daily, ingest_files
from lakehouse.jobs.runtime import JobRun, run_job

log = logging.getLogger("lakehouse.batch")


def run_batch(
    spark: SparkSession,
    config: Config,
    access_logs: str | None,
    product_views: str | None,
    export: bool = True,
    from_kafka: bool = False,
    web_events: str | None = None,
    api_ticks: str | None = None,
    ip_events: str | None = None,
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
        if web_events:
            ingest_files.ingest(spark, config, "web_events", web_events, run)
        if api_ticks:
            ingest_files.ingest(spark, config, "api_ticks", api_ticks, run)
        if ip_events:
            ingest_files.ingest(spark, config, "ip_events", ip_events, run)
        if from_kafka:
            from lakehouse.jobs.stream_kafka import StreamOptions, default_datasets, run_streams

            cap = config.kafka.max_offsets_per_trigger or None
            run_streams(spark, config, StreamOptions(default_datasets(config), "availableNow", cap), run)

    stage("1/4 bronze", bronze)
    # Silver runs for every dataset whatever the inputs: bronze may hold rows that a
    # previous (crashed) run or the Kafka stream landed and silver has not seen yet (a
    # dataset without a bronze table is a no-op).
    for name in NAMES:
        step = import_module(f"lakehouse.feeds.{name}.silver")
        stage(f"2/4 silver {name}", lambda run, step=step: step.run(spark, config, run))
    stage("3/4 gold", lambda run: gold_daily.run(spark, config, run))
    if export:
        stage("4/4 export", lambda run: export_gold.run(spark, config, run))
    else:
        log.info("export skipped (--no-export)")
    return stages


def main(argv: list[str] | None = None) -> int:
    def arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--access-logs", help="access-log file or folder")
        parser.add_argument("--product-views", help="product-view JSON-lines file or folder")
        parser.add_argument("--web-events", help="web-event JSON-lines file or folder")
        parser.add_argument("--api-ticks", help="polled API responses (JSON lines) file or folder")
        parser.add_argument("--ip-events", help="IP sightings (the collector's JSON lines) file or folder")
        parser.add_argument("--from-kafka", action="store_true", help="bronze from the Kafka topics (catch-up run of the stream)")
        parser.add_argument("--no-export", action="store_true", help="stop after gold")

    def body(spark: SparkSession, config: Config, run: JobRun, args: argparse.Namespace) -> None:
        log.info("warehouse %s (profile %s)", config.warehouse, config.profile)
        run_batch(
            spark, config, args.access_logs, args.product_views, export=not args.no_export,
            from_kafka=args.from_kafka, web_events=args.web_events, api_ticks=args.api_ticks, ip_events=args.ip_events,
        )
        print(f"batch: done in {time.time() - run.started:.1f}s; warehouse {config.warehouse}", flush=True)

    def check(args: argparse.Namespace) -> str | None:
        if not (args.access_logs or args.product_views or args.web_events or args.api_ticks or args.ip_events or args.from_kafka):
            return "give --access-logs, --product-views, --web-events, --api-ticks and/or --ip-events, or --from-kafka"
        return None

    # Each stage records its own run (run_batch): nothing more to record here.
    return run_job("batch", "Files -> bronze -> silver -> gold (-> export) in one go.", body, argv, arguments, check, record=False)


if __name__ == "__main__":
    sys.exit(main())
