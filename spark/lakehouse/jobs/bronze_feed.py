"""A feed's new records into bronze, from wherever its producer lands them.

    lakehouse bronze --dataset ip_events        # what the hourly feed DAGs run
    spark-submit spark/lakehouse/jobs/bronze_feed.py --dataset api_ticks

Web events, API ticks and IP sightings land either as files or on a Kafka topic, and one
setting per feed decides both sides (`web_events.source`, `poll.sink`, `ip_events.sink`:
`landing`, `kafka`, or `auto`, which is landing in the local profile and kafka in the
others). The collector and the poller write where it says; this job reads from there: the
landing files (`ingest`: files already in bronze add nothing) or the topic (a catch-up run
of the stream, `stream --dataset <feed> --trigger availableNow`). So nothing waits unread
in a place the pipeline does not look.
"""

from __future__ import annotations

import argparse
import logging
import sys

from pyspark.sql import SparkSession

from lakehouse.config import FEED_SETTINGS, Config
from lakehouse.io import files
from lakehouse.jobs import ingest_files
from lakehouse.jobs.runtime import JobRun, run_job

log = logging.getLogger("lakehouse.bronze")


def source_of(config: Config, dataset: str) -> tuple[str, str | None]:
    """(`landing` or `kafka`, the landing file or folder) of a feed, as its setting says."""
    if dataset not in FEED_SETTINGS:
        raise ValueError(f"unknown feed {dataset!r}: expected one of {', '.join(FEED_SETTINGS)}")
    # The setting `<section>.<key>` (the registry's landing_setting) sits beside its
    # section's `landing` folder: web_events.source + web_events.landing, poll.sink + poll.landing.
    section, key = FEED_SETTINGS[dataset].split(".")
    settings = getattr(config, section)
    landing = settings.landing
    return getattr(settings, key), str(landing) if landing else None


def land(spark: SparkSession, config: Config, dataset: str, run: JobRun) -> int:
    """Bring the feed's new records into bronze/<dataset>; the records landed."""
    kind, landing = source_of(config, dataset)
    log.info("%s: from %s (%s)", dataset, landing if kind == "landing" else f"topic {config.kafka.topics[dataset]}",
             FEED_SETTINGS[dataset])
    if kind == "kafka":
        from lakehouse.jobs.stream_kafka import StreamOptions, run_streams

        cap = config.kafka.max_offsets_per_trigger or None
        run_streams(spark, config, StreamOptions((dataset,), "availableNow", cap), run)
        return int(run.counts.get(f"{dataset}_rows", 0))
    if landing is None or not files.exists(spark, landing):
        log.info("%s: nothing landed yet at %s", dataset, landing)
        return 0
    return ingest_files.ingest(spark, config, dataset, landing, run)


def main(argv: list[str] | None = None) -> int:
    def arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--dataset", required=True, choices=tuple(FEED_SETTINGS))

    def body(spark: SparkSession, config: Config, run: JobRun, args: argparse.Namespace) -> None:
        run.job = f"bronze {args.dataset}"
        land(spark, config, args.dataset, run)

    return run_job("bronze", "A feed's new records into bronze, from its landing files or its topic.", body, argv, arguments)


if __name__ == "__main__":
    sys.exit(main())
