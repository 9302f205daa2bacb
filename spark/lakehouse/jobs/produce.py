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

import gzip
import logging
import re
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from pyspark.sql import SparkSession

from lakehouse import samples
from lakehouse.config import Config
from lakehouse.io import files, kafka
from lakehouse.jobs.common import JobRun, base_parser, config_from_args, get_session, setup_logging

log = logging.getLogger("lakehouse.produce")

DATASETS = ("access_logs", "product_views")
_LINE_END = re.compile(rb"\r?\n$")
_ACCESS_KEY = re.compile(rb"^([^ ]+) ")


def file_records(path: Path, dataset: str) -> Iterator[tuple[bytes | None, bytes]]:
    """(key, value) per line of a local file (plain or gzip), bytes exactly as stored."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        for raw in handle:
            value = _LINE_END.sub(b"", raw)
            yield record_key(value, dataset), value


def record_key(value: bytes, dataset: str) -> bytes | None:
    """The same key `kafka.keyed` computes in Spark, for the paced path."""
    if dataset == "access_logs":
        match = _ACCESS_KEY.match(value)
        return match.group(1) if match else None
    match = re.search(rb'"device_id"\s*:\s*"([^"]*)"', value)
    return match.group(1) if match else None


def synthesize(dataset: str, count: int, out_dir: Path, seed: int) -> Path:
    """Generate `count` realistic records (the bench/sample generators) into a file."""
    path = out_dir / f"{dataset}.synthetic"
    if dataset == "access_logs":
        samples.write_access_log(path, count, seed=seed, bad_lines=False)
    else:
        samples.write_product_views(path, count, seed=seed, bad_records=False)
    return path


def end_total(spark: SparkSession, config: Config, topic: str) -> int:
    return sum(kafka.latest_offsets(spark, config.kafka.bootstrap_servers, topic).values())


def produce_file(
    spark: SparkSession, config: Config, dataset: str, path: str, topic: str, rate: float | None, run: JobRun
) -> int:
    """Send every line of `path` to `topic`; returns the records the broker acknowledged."""
    before = end_total(spark, config, topic)
    if rate:
        local = Path(path.removeprefix("file://"))
        stats = kafka.send_paced(
            spark, config.kafka.bootstrap_servers, topic, file_records(local, dataset), rate, log=log
        )
        if stats.errors or stats.acknowledged != stats.sent:
            raise RuntimeError(
                f"{topic}: {stats.sent} sent but only {stats.acknowledged} acknowledged ({stats.errors} failed)"
            )
        sent = stats.sent
        log.info("%s: %d records in %.1fs (%.0f/s)", topic, sent, stats.seconds, sent / max(stats.seconds, 1e-9))
    else:
        lines = files.read_lines(spark, [f.path for f in files.list_files(spark, path).files]).select("value")
        rows = lines.transform(lambda df: kafka.keyed(df, dataset))
        rows = rows.selectExpr("key", "CAST(value AS BINARY) AS value").cache()
        sent = rows.count()
        kafka.write_batch(rows, config.kafka.bootstrap_servers, topic)
        rows.unpersist()
    after = end_total(spark, config, topic)
    run.add(**{f"{dataset}_sent": sent, f"{dataset}_topic_growth": after - before})
    print(f"produced {sent:,} {dataset} record(s) to {topic}; topic end offsets grew by {after - before:,}", flush=True)
    return sent


def main(argv: list[str] | None = None) -> int:
    parser = base_parser("lakehouse produce", "Replay a file or synthetic events into a Kafka topic.")
    parser.add_argument("--dataset", required=True, choices=DATASETS)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--file", help="access-log or JSON-lines file/folder (gzip ok) to replay")
    source.add_argument("--synthetic", type=int, metavar="N", help="generate N realistic records")
    parser.add_argument("--rate", type=float, help="records per second (default: as fast as possible)")
    parser.add_argument("--topic", help="topic (default: kafka.topics.<dataset>)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the synthetic generator")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    config = config_from_args(args)
    topic = args.topic or config.kafka.topics[args.dataset]
    spark = get_session(config, "produce")
    run = JobRun(f"produce {args.dataset}")
    with tempfile.TemporaryDirectory(prefix="lakehouse-produce-") as tmp:
        path = args.file or str(synthesize(args.dataset, args.synthetic, Path(tmp), args.seed))
        if args.rate and args.file and (Path(args.file).is_dir() or "://" in args.file):
            parser.error("--rate replays one local file; give a file path")
        produce_file(spark, config, args.dataset, path, topic, args.rate, run)
    run.record(spark, config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
