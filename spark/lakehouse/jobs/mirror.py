"""Mirror a product-views topic of a remote Kafka cluster into our own topic (seed 004).

    export LAKEHOUSE_MIRROR_SASL_PASSWORD=...          # the password: from the environment only
    lakehouse mirror --from-bootstrap kafka.example.com:9092 --from-topic product_views \\
        --security-protocol SASL_PLAINTEXT --sasl-mechanism SCRAM-SHA-512 --sasl-username mirror
    lakehouse mirror ... --trigger availableNow         # catch up on everything, then stop
    spark-submit spark/lakehouse/jobs/mirror.py --from-bootstrap HOST:PORT --from-topic T ...

One Structured Streaming query: Spark's Kafka source on the remote topic (PLAINTEXT,
SASL_PLAINTEXT or SASL_SSL with PLAIN or SCRAM) -> `transforms.mirror.mirror_records` ->
Spark's Kafka sink on our broker (`kafka.bootstrap_servers`), topic `--to-topic` (default
`kafka.topics.product_views`, created with the remote's partition count when missing), from
where `lakehouse stream` lands it in bronze as any other product view. Its checkpoint is
`<checkpoints>/mirror_<from-topic>`: a restart resumes where the last committed batch ended.

Delivery: at least once into our topic. The Kafka sink is not transactional, so a batch
written but not committed when the process died is written again after the restart. Silver
still counts each event once: it dedupes product views on `event_id`, and the mirror gives
an event without an id one derived from its place in the remote topic (see
`transforms/mirror.py`), the same for both copies.

Before Spark starts, the remote cluster is asked for the topic's metadata with the given
credentials: a refused password, an unreachable bootstrap or a missing topic ends the job
within seconds, exit code 2 and one line naming the bootstrap and the mechanism. Failures
while running (a broker restart) restart the query from its checkpoint after a back-off,
up to `--max-restarts` times in a row; offsets deleted by the remote's retention before
they were mirrored stop it (exit 3) unless `kafka.fail_on_data_loss` is false. SIGTERM /
Ctrl-C let the batch in flight finish. Each micro-batch logs rows, rows/s and the lag.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import StreamingQuery

from lakehouse.config import Config
from lakehouse.io import kafka
from lakehouse.jobs import stream_metrics
from lakehouse.jobs.runtime import JobRun, base_parser, run_job
from lakehouse.jobs.stream_kafka import log_progress, still_active, stop_gracefully, stop_on_signals
from lakehouse.jobs.stream_query import DatasetStream
from lakehouse.transforms.mirror import mirror_records

log = logging.getLogger("lakehouse.mirror")

NAME = "mirror"
METRICS_PORT = "mirror_port"  # its endpoint's port: metrics.mirror_port
DESCRIPTION = "mirror a remote Kafka topic (SASL) of product views into our product-views topic"
PASSWORD_ENV = "LAKEHOUSE_MIRROR_SASL_PASSWORD"
DEFAULT_TRIGGER = "5 seconds"


@dataclass(frozen=True)
class MirrorSpec:
    """What one mirror reads and writes (from the command line, the remote's metadata and config)."""

    from_bootstrap: str
    from_topic: str
    auth: kafka.KafkaAuth
    cluster: str  # the remote cluster's id: part of the ids given to events without one
    to_bootstrap: str
    to_topic: str
    checkpoint: str
    starting_offsets: str
    fail_on_data_loss: bool
    max_offsets_per_trigger: int | None
    trigger: str

    @property
    def available_now(self) -> bool:
        return self.trigger.replace("_", "").lower() == "availablenow"


def start_mirror(
    spark: SparkSession,
    spec: MirrorSpec,
    transform: Callable[[DataFrame, str], DataFrame] = mirror_records,
) -> StreamingQuery:
    """Start (or resume from its checkpoint) the remote topic -> our topic query.

    `transform` turns the source's rows into (key, value) rows; the benchmark swaps in a
    plain copy to measure the engine's own ceiling."""
    reader = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", spec.from_bootstrap)
        .options(**spec.auth.spark_options())
        .option("subscribe", spec.from_topic)
        .option("startingOffsets", spec.starting_offsets)
        .option("failOnDataLoss", str(spec.fail_on_data_loss).lower())
        .option("fetchOffset.numRetries", "10")
        .option("fetchOffset.retryIntervalMs", "1000")
        .options(**kafka.FETCH_OPTIONS)
    )
    if spec.max_offsets_per_trigger:
        reader = reader.option("maxOffsetsPerTrigger", str(spec.max_offsets_per_trigger))
    writer = (
        transform(reader.load(), spec.cluster)
        .writeStream.format("kafka")
        .queryName(f"mirror_{spec.from_topic}")
        .option("kafka.bootstrap.servers", spec.to_bootstrap)
        .option("topic", spec.to_topic)
        # as io.kafka.write_batch: every record acknowledged, or the batch fails
        .option("kafka.acks", "all")
        .option("kafka.linger.ms", "20")
        .option("kafka.batch.size", str(512 * 1024))
        .option("kafka.compression.type", "lz4")
        .option("kafka.max.request.size", str(16 * 1024 * 1024))
        .option("checkpointLocation", spec.checkpoint)
    )
    writer = writer.trigger(availableNow=True) if spec.available_now else writer.trigger(processingTime=spec.trigger)
    return writer.start()


def _is_data_loss(error: BaseException | None) -> bool:
    text = str(error or "")
    return "KAFKA_DATA_LOSS" in text or "data loss" in text.lower()


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def run_mirror(
    spark: SparkSession,
    spec: MirrorSpec,
    run: JobRun,
    stop: threading.Event | None = None,
    max_seconds: float | None = None,
    max_restarts: int = 5,
    metrics=None,
) -> int:
    """Run the mirror until it caught up (availableNow), `stop` is set or `max_seconds` pass;
    a failed query restarts from its checkpoint. The exit code: 0, 1 (gave up), 3 (data loss).
    Each batch also goes to `metrics` (a `stream_metrics.StreamMetrics`) when given."""
    stop = stop or threading.Event()
    stream = DatasetStream(NAME, spec.from_topic, f"kafka:{spec.to_topic}", spec.checkpoint)
    stream.query = start_mirror(spark, spec)
    log.info(
        "%s %s (%s) -> %s %s (checkpoint %s, trigger %s)",
        spec.from_bootstrap, spec.from_topic, spec.auth.describe(), spec.to_bootstrap, spec.to_topic,
        spec.checkpoint, spec.trigger,
    )  # fmt: skip
    started = time.monotonic()
    while True:
        query = stream.query
        if not still_active(stream, run, metrics):
            error = query.exception()
            if error is None:
                return 0  # caught up (availableNow) or stopped
            if _is_data_loss(error):
                log.error("offsets of %s were deleted by the remote before they were mirrored: %s",
                          spec.from_topic, _first_line(error))
                return 3
            if stream.restarts_in_a_row >= max_restarts:
                log.error("mirror failed %d times in a row; last error: %s", stream.restarts_in_a_row + 1, _first_line(error))
                return 1
            stream.restarts_in_a_row += 1
            run.add(restarts=1)
            backoff = min(30.0, 2.0**stream.restarts_in_a_row)
            log.warning("mirror failed (%s); restarting from the checkpoint in %.0fs", _first_line(error), backoff)
            if stop.wait(backoff):
                return 0
            try:
                stream.query = start_mirror(spark, spec)
            except Exception as exc:  # noqa: BLE001 - e.g. a broker still down: counted, retried
                log.warning("restart failed (%s); will retry", _first_line(exc))
            continue
        if max_seconds is not None and time.monotonic() - started >= max_seconds and not stop.is_set():
            log.info("ran for %.0fs (--max-seconds): stopping", time.monotonic() - started)
            stop.set()
        if stop.is_set():
            log.info("stopping: letting the batch in flight finish")
            stop_gracefully(stream)
            log_progress(stream, run, metrics)
            return 0
        stop.wait(0.2)


def auth_from(args: argparse.Namespace, environ: dict[str, str]) -> kafka.KafkaAuth:
    """The remote's credentials: flags, and the password from the environment variable
    `--sasl-password-env` names (never a flag: it would show in `ps` and shell history)."""
    password = environ.get(args.sasl_password_env) if args.security_protocol.startswith("SASL_") else None
    if args.security_protocol.startswith("SASL_") and not password:
        raise ValueError(f"{args.security_protocol} needs the password in the environment variable {args.sasl_password_env}")
    return kafka.KafkaAuth(args.security_protocol, args.sasl_mechanism, args.sasl_username, password, args.ssl_ca_file)


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from-bootstrap", required=True, help="the remote cluster's bootstrap servers (HOST:PORT[,HOST:PORT])")
    parser.add_argument("--from-topic", required=True, help="the remote topic to mirror")
    parser.add_argument("--to-topic", help="our topic (default: kafka.topics.product_views)")
    parser.add_argument("--security-protocol", default="PLAINTEXT", choices=kafka.SECURITY_PROTOCOLS, help="of the remote (default PLAINTEXT)")
    parser.add_argument("--sasl-mechanism", default="PLAIN", choices=kafka.SASL_MECHANISMS, help="with SASL_* (default PLAIN)")
    parser.add_argument("--sasl-username", help="with SASL_*")
    parser.add_argument("--sasl-password-env", default=PASSWORD_ENV, help=f"the environment variable holding the password (default {PASSWORD_ENV})")
    parser.add_argument("--ssl-ca-file", help="with SASL_SSL: a PEM bundle of the CAs to trust (default: the system's)")
    parser.add_argument("--starting-offsets", default="earliest", choices=("earliest", "latest"), help="where a new mirror starts (default earliest; a restart resumes from its checkpoint)")
    parser.add_argument("--trigger", default=DEFAULT_TRIGGER, help=f'"availableNow" (catch up, then stop) or an interval (default "{DEFAULT_TRIGGER}")')
    parser.add_argument("--max-offsets-per-trigger", type=int, help="cap per micro-batch (default: kafka.max_offsets_per_trigger; 0 = no cap)")
    parser.add_argument("--max-restarts", type=int, default=5, help="restarts in a row after failures before giving up (default 5)")
    parser.add_argument("--max-seconds", type=float, help="stop gracefully after this many seconds")
    parser.add_argument("--connect-timeout", type=float, default=15, help="seconds the pre-flight check waits for the remote (default 15)")
    stream_metrics.port_argument(parser, METRICS_PORT)


def preflight(args: argparse.Namespace, environ: dict[str, str]) -> tuple[kafka.KafkaAuth, str, int]:
    """(credentials, the remote's cluster id, its topic's partition count), or ValueError /
    KafkaUnavailable with a one-line reason. No Spark: a wrong password fails in seconds."""
    auth = auth_from(args, environ)
    cluster, partitions = kafka.check_cluster(args.from_bootstrap, auth, args.from_topic, args.connect_timeout)
    return auth, cluster, partitions


def main(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> int:
    environ = dict(os.environ if environ is None else environ)
    parser = base_parser(f"lakehouse {NAME}", DESCRIPTION)
    arguments(parser)
    try:
        auth, cluster, partitions = preflight(parser.parse_args(argv), environ)
    except (ValueError, kafka.KafkaUnavailable) as exc:
        print(f"lakehouse {NAME}: {exc}", file=sys.stderr, flush=True)
        return 2

    def body(spark: SparkSession, config: Config, run: JobRun, args: argparse.Namespace) -> int:
        to_topic = args.to_topic or config.kafka.topics["product_views"]
        if kafka.create_topics(config.kafka.bootstrap_servers, {to_topic: partitions}):
            log.info("created topic %s (%d partitions, as the remote's) on %s", to_topic, partitions, config.kafka.bootstrap_servers)
        cap = config.kafka.max_offsets_per_trigger if args.max_offsets_per_trigger is None else args.max_offsets_per_trigger
        spec = MirrorSpec(
            from_bootstrap=args.from_bootstrap,
            from_topic=args.from_topic,
            auth=auth,
            cluster=cluster,
            to_bootstrap=config.kafka.bootstrap_servers,
            to_topic=to_topic,
            checkpoint=config.checkpoint(f"mirror_{args.from_topic}"),
            starting_offsets=args.starting_offsets,
            fail_on_data_loss=config.kafka.fail_on_data_loss,
            max_offsets_per_trigger=cap or None,
            trigger=args.trigger,
        )
        stop = stop_on_signals(log)
        with stream_metrics.job_endpoint(config, args.metrics_port, METRICS_PORT) as metrics:
            return run_mirror(spark, spec, run, stop, args.max_seconds, args.max_restarts, metrics)

    return run_job(NAME, DESCRIPTION, body, argv, arguments)


if __name__ == "__main__":
    sys.exit(main())
