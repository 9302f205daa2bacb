"""Put records on Kafka: replay a file, or generate realistic synthetic load.

    lakehouse produce --dataset access_logs --file sample_logs/access.log            # as fast as possible
    lakehouse produce --dataset product_views --file views.jsonl --rate 2000         # 2,000 records/s
    lakehouse produce --dataset product_views --synthetic 1000000                    # generated events
    lakehouse produce --dataset access_logs --synthetic 500000 --rate 5000 --topic t

Every line of the file becomes one message (the value is the line's exact bytes, without
its line ending), keyed so one client's records stay in order on one partition: access
logs by client address, product views by `device_id`; records without one get no key.

Delivery is confirmed before the final count is printed: without `--rate`, Spark's Kafka
writer sends the file (the job fails if any record is not acknowledged, acks=all); with
`--rate`, a paced kafka-clients producer sends each record and, after a flush, its own
counters must show every record acknowledged and none failed. Either way the topic's end
offsets are read before and after and the difference is printed.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse.config import Config
from lakehouse.feeds import NAMES
from lakehouse.io import files, kafka
from lakehouse.jobs.runtime import JobRun, run_job

log = logging.getLogger("lakehouse.produce")


NEW_TOPIC_PARTITIONS = 2  # a topic named by --topic that does not exist yet (the stack's own have 2)


def file_messages(spark: SparkSession, path: str, dataset: str) -> DataFrame:
    """(key, value) per line of the files under `path`, bytes exactly as stored (without the
    line's `\\r\\n` / `\\n` ending), keyed by `kafka.keyed` whichever way they are sent."""
    lines = files.read_lines(spark, [f.path for f in files.list_files(spark, path).files])
    raw = F.col("value").cast("binary")
    # A CRLF ending is the line's end, not its content (bytes, so nothing is re-encoded).
    value = F.when(F.endswith(raw, F.lit(b"\r")), F.substring(raw, 1, F.length(raw) - 1)).otherwise(raw)
    return kafka.keyed(lines.select(value.alias("value")), dataset)


def _samples():
    """The sample generators: developer tooling (`lakehouse_dev`), imported only for
    `--synthetic`, so the runtime package never needs it."""
    from lakehouse_dev import samples

    return samples


# The sample generator of each dataset, for `count` records: lines of an access log, events,
# polls of the ticker (a line each, or three), collector requests (1-5 sightings each).
SYNTHETIC = {
    "access_logs": lambda path, count, seed: _samples().write_access_log(path, count, seed=seed, bad_lines=False),
    "product_views": lambda path, count, seed: _samples().write_product_views(path, count, seed=seed, bad_records=False),
    "web_events": lambda path, count, seed: _samples().write_web_events(path, count, seed=seed, bad_records=False),
    "api_ticks": lambda path, count, seed: _samples().write_api_ticks(path, seed=seed, polls=count),
    "ip_events": lambda path, count, seed: _samples().write_ip_events(path, seed=seed, requests=count),
}


def synthesize(dataset: str, count: int, out_dir: Path, seed: int) -> Path:
    """Generate `count` realistic records of `dataset` (the bench/sample generators) into a file."""
    path = out_dir / f"{dataset}.synthetic"
    SYNTHETIC[dataset](path, count, seed)
    return path


def end_total(spark: SparkSession, config: Config, topic: str) -> int:
    return sum(kafka.latest_offsets(config.kafka.bootstrap_servers, topic).values())


def produce_file(
    spark: SparkSession, config: Config, dataset: str, path: str, topic: str, rate: float | None, run: JobRun
) -> int:
    """Send every line of `path` to `topic`; returns the records the broker acknowledged."""
    before = end_total(spark, config, topic)
    messages = file_messages(spark, path, dataset)
    if rate:
        # One partition at a time through the driver, at the rate asked (a few thousand a second).
        records = ((None if r.key is None else r.key.encode(), bytes(r.value)) for r in messages.toLocalIterator())
        stats = kafka.send_paced(config.kafka.bootstrap_servers, topic, records, rate, log=log)
        if stats.errors or stats.acknowledged != stats.sent:
            raise RuntimeError(
                f"{topic}: {stats.sent} sent but only {stats.acknowledged} acknowledged ({stats.errors} failed)"
            )
        sent = stats.sent
        log.info("%s: %d records in %.1fs (%.0f/s)", topic, sent, stats.seconds, sent / max(stats.seconds, 1e-9))
    else:
        rows = messages.cache()
        sent = rows.count()
        kafka.write_batch(rows, config.kafka.bootstrap_servers, topic)
        rows.unpersist()
    after = end_total(spark, config, topic)
    run.add(**{f"{dataset}_sent": sent, f"{dataset}_topic_growth": after - before})
    print(f"produced {sent:,} {dataset} record(s) to {topic}; topic end offsets grew by {after - before:,}", flush=True)
    return sent


def main(argv: list[str] | None = None) -> int:
    def arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--dataset", required=True, choices=NAMES)
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--file", help="access-log or JSON-lines file/folder (gzip ok) to replay")
        source.add_argument("--synthetic", type=int, metavar="N", help="generate N realistic records")
        parser.add_argument("--rate", type=float, help="records per second (default: as fast as possible)")
        parser.add_argument("--topic", help="topic (default: kafka.topics.<dataset>)")
        parser.add_argument("--seed", type=int, default=7, help="seed of the synthetic generator")

    def check(args: argparse.Namespace) -> str | None:
        if args.rate and args.file and (Path(args.file).is_dir() or "://" in args.file):
            return "--rate replays one local file; give a file path"
        return None

    def body(spark: SparkSession, config: Config, run: JobRun, args: argparse.Namespace) -> None:
        run.job = f"produce {args.dataset}"
        topic = args.topic or config.kafka.topics[args.dataset]
        if kafka.create_topics(config.kafka.bootstrap_servers, {topic: NEW_TOPIC_PARTITIONS}):
            print(f"created topic {topic} ({NEW_TOPIC_PARTITIONS} partitions)", flush=True)
        with tempfile.TemporaryDirectory(prefix="lakehouse-produce-") as tmp:
            path = args.file or str(synthesize(args.dataset, args.synthetic, Path(tmp), args.seed))
            produce_file(spark, config, args.dataset, path, topic, args.rate, run)

    return run_job("produce", "Replay a file or synthetic events into a Kafka topic.", body, argv, arguments, check)


if __name__ == "__main__":
    sys.exit(main())
