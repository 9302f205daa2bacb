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
from functools import partial
from importlib import import_module

from pyspark.sql import SparkSession

from lakehouse.config import Config
from lakehouse.feeds import FEEDS, NAMES
from lakehouse.jobs import export_gold, gold_daily, ingest_files
from lakehouse.jobs.runtime import JobRun, in_parallel, run_job

log = logging.getLogger("lakehouse.batch")


def run_batch(
    spark: SparkSession,
    config: Config,
    access_logs: str | None = None,
    product_views: str | None = None,
    export: bool = True,
    from_kafka: bool = False,
    **more: str | None,
) -> dict[str, JobRun]:
    """Run every stage for the given inputs (a file or folder per registered feed, by its
    name: `web_events=...`); returns each stage's counts."""
    inputs = {"access_logs": access_logs, "product_views": product_views, **more}
    if unknown := sorted(set(inputs) - set(NAMES)):
        raise TypeError(f"run_batch: no feed named {', '.join(unknown)} (registered: {', '.join(NAMES)})")
    stages: dict[str, JobRun] = {}

    def stage(name: str, body) -> None:
        run = JobRun(name)
        body(run)
        run.record(spark, config)
        stages[name] = run

    def bronze(run: JobRun) -> None:
        in_parallel({name: partial(ingest_files.ingest, spark, config, name, inputs[name], run)
                     for name in NAMES if inputs.get(name)}, config.driver_threads)
        if from_kafka:
            from lakehouse.jobs.stream_kafka import StreamOptions, default_datasets, run_streams

            cap = config.kafka.max_offsets_per_trigger or None
            run_streams(spark, config, StreamOptions(default_datasets(config), "availableNow", cap), run)

    stage("1/4 bronze", bronze)
    # Silver runs for every dataset whatever the inputs: bronze may hold rows that a
    # previous (crashed) run or the Kafka stream landed and silver has not seen yet (a
    # dataset without a bronze table is a no-op).
    # The feeds' silver steps share no table they do not lock (`delta.writing`) or allow
    # for (a dimension value two feeds classify at once is stored twice and read once).
    silver = {name: import_module(f"lakehouse.feeds.{name}.silver") for name in NAMES}
    in_parallel(
        {name: partial(stage, f"2/4 silver {name}", lambda run, step=step: step.run(spark, config, run))
         for name, step in silver.items()},
        config.driver_threads,
    )
    stage("3/4 gold", lambda run: gold_daily.run(spark, config, run))
    if export:
        stage("4/4 export", lambda run: export_gold.run(spark, config, run))
    else:
        log.info("export skipped (--no-export)")
    return stages


def option(feed: str) -> str:
    """The batch's input option of a feed: `--access-logs` for access_logs."""
    return "--" + feed.replace("_", "-")


def main(argv: list[str] | None = None) -> int:
    def arguments(parser: argparse.ArgumentParser) -> None:
        for name, feed in FEEDS.items():
            parser.add_argument(option(name), dest=name, help=f"{feed.description}: a file or folder")
        parser.add_argument("--from-kafka", action="store_true", help="bronze from the Kafka topics (catch-up run of the stream)")
        parser.add_argument("--no-export", action="store_true", help="stop after gold")

    def body(spark: SparkSession, config: Config, run: JobRun, args: argparse.Namespace) -> None:
        log.info("warehouse %s (profile %s)", config.warehouse, config.profile)
        run_batch(spark, config, export=not args.no_export, from_kafka=args.from_kafka,
                  **{name: getattr(args, name) for name in NAMES})
        print(f"batch: done in {time.time() - run.started:.1f}s; warehouse {config.warehouse}", flush=True)

    def check(args: argparse.Namespace) -> str | None:
        if not (any(getattr(args, name) for name in NAMES) or args.from_kafka):
            return f"give {', '.join(option(name) for name in NAMES)} (any of them), or --from-kafka"
        return None

    # Each stage records its own run (run_batch): nothing more to record here.
    return run_job("batch", "Files -> bronze -> silver -> gold (-> export) in one go.", body, argv, arguments, check, record=False)


if __name__ == "__main__":
    sys.exit(main())
