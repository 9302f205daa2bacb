"""Kafka topics -> bronze Delta tables with Structured Streaming (exactly once).

    lakehouse stream                                  # both topics, trigger from config
    lakehouse stream --trigger "1 second"             # keep running, a micro-batch per second
    lakehouse stream --trigger availableNow           # catch up on everything, then stop
    spark-submit spark/lakehouse/jobs/stream_kafka.py --dataset access_logs

One query per dataset: topic `kafka.topics.<dataset>` -> `bronze/<dataset>` (one Delta
commit per micro-batch), its checkpoint at `<checkpoints>/bronze_<dataset>`. Delivery guarantees:

* Exactly once into bronze. The checkpoint records the offsets of each micro-batch
  before it runs, and each batch is one Delta commit that carries "<writer id>:<batch id>"
  in its commit metadata (`delta.append_once`), so a batch re-run after a crash
  (SIGKILL, broker or MinIO outage) is either skipped (already committed) or written
  exactly once. (Not the Delta sink: its per-batch transaction-id check rebuilds the
  table's whole state every micro-batch, seconds each once the table has grown.)
* Failures that can pass (a broker restarting, storage briefly unreachable) restart the
  query from its checkpoint after a back-off, up to `--max-restarts` times in a row.
* Data loss is never silent. If retention deleted offsets the stream has not read yet,
  the gap (topic, partition, lost offset range) is logged as an ERROR and recorded in
  `_meta/stream_gaps`. With `kafka.fail_on_data_loss: true` (the default) the job then
  stops with an error; with `false` it records the gap and goes on from the earliest
  offset still stored.
* SIGTERM / Ctrl-C stop gracefully: the micro-batch in flight finishes and commits.

Each micro-batch logs rows, rows/s, batch duration and the lag (offsets not yet read).

This module is the supervisor (start, watch, restart, stop) and the command line; the
query itself and the lost-offset checks are `jobs/stream_query.py`, the reading of progress
reports `jobs/stream_progress.py`, the checkpoint's offsets `io.kafka.checkpoint_offsets`.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time

from pyspark.errors import StreamingQueryException
from pyspark.sql import SparkSession

from lakehouse.config import Config
from lakehouse.feeds import NAMES
from lakehouse.io import kafka
from lakehouse.jobs import stream_metrics
from lakehouse.jobs.runtime import JobRun, run_job
from lakehouse.jobs.stream_progress import batch_progress
from lakehouse.jobs.stream_query import (
    DEFAULT_DATASETS,
    DataLossError,
    DatasetStream,
    StreamOptions,
    check_data_loss,
    start_query,
)

log = logging.getLogger("lakehouse.stream")


def default_datasets(config: Config) -> tuple[str, ...]:
    """Access logs and product views, plus each other feed whose topic the broker has (a
    deployment without web events or API ticks never subscribes to topics it lacks)."""
    topics = kafka.list_topics(config.kafka.bootstrap_servers)
    return DEFAULT_DATASETS + tuple(d for d in NAMES if d not in DEFAULT_DATASETS and config.kafka.topics[d] in topics)


def log_progress(stream: DatasetStream, run: JobRun, metrics=None) -> None:
    """Log every micro-batch finished since the last call (rows, rate, duration, lag), and hand
    it to `metrics` (a `stream_metrics.StreamMetrics`) when the metrics endpoint is on.

    Polled, not a `StreamingQueryListener`: the supervisor wakes every few seconds anyway to
    watch for failures, signals and lost offsets, and a listener would add the Py4J callback
    server and a second thread updating the same counters.
    """
    for report in stream.query.recentProgress if stream.query else []:
        batch = batch_progress(report)
        if batch is None or batch.batch_id <= stream.last_batch:
            continue
        stream.last_batch = batch.batch_id
        stream.restarts_in_a_row = 0  # progress made: the restart budget is full again
        stream.committed = batch.end_offsets or stream.committed
        stream.rows += batch.rows
        stream.batches += 1
        run.add(**{f"{stream.dataset}_rows": batch.rows, f"{stream.dataset}_batches": 1})
        log.info("%s", batch.describe(stream.dataset))
        if metrics is not None:
            metrics.observe(stream.dataset, stream.topic, batch)


def still_active(stream: DatasetStream, run: JobRun, metrics=None) -> bool:
    """Log the batches finished since the last call; False once the query has stopped.

    A query that stops between the read of its progress and the read of `isActive` has
    its last batches read again: they finished before it stopped, and a stopped query's
    progress is not read again by its caller.
    """
    log_progress(stream, run, metrics)
    if stream.query.isActive:
        return True
    log_progress(stream, run, metrics)
    return False


def poll(spark, config, stream: DatasetStream, options: StreamOptions, run: JobRun, stop, metrics=None) -> None:
    """Log the batches finished since the last poll; handle a query that stopped."""
    if not still_active(stream, run, metrics):
        _handle_stopped(spark, config, stream, options, run, stop)


def _is_data_loss(error: BaseException | None) -> bool:
    text = str(error or "")
    return "KAFKA_DATA_LOSS" in text or "data loss" in text.lower()


def stop_gracefully(stream: DatasetStream, timeout: float = 60.0) -> None:
    """Let the micro-batch in flight finish (it commits), then stop the query."""
    query = stream.query
    if query is None or not query.isActive:
        return
    deadline = time.monotonic() + timeout
    while query.isActive and query.status.get("isTriggerActive") and time.monotonic() < deadline:
        time.sleep(0.1)
    query.stop()


def _restart(spark: SparkSession, config: Config, stream: DatasetStream, options: StreamOptions, run: JobRun) -> None:
    """Start the query again from its checkpoint (after checking for a gap)."""
    try:
        resume_at = kafka.checkpoint_offsets(spark, stream.checkpoint, stream.topic)
        run.add(**{f"{stream.dataset}_records_lost": check_data_loss(spark, config, stream, resume_at)})
        stream.query = start_query(spark, config, stream, options)
    except DataLossError:
        raise
    except Exception as exc:  # noqa: BLE001 - e.g. the broker is still down: the loop retries
        log.warning("%s: restart failed (%s); will retry", stream.dataset, str(exc).splitlines()[0])
        stream.query = _FailedQuery(exc)


def _handle_stopped(spark, config, stream: DatasetStream, options: StreamOptions, run: JobRun, stop) -> None:
    """A query is no longer active: finished, or failed (restart it with back-off)."""
    error = stream.query.exception()
    if error is None:
        stream.done = True  # availableNow caught up, or it was stopped
        return
    if _is_data_loss(error):
        raise DataLossError(f"{stream.dataset}: {error}")
    if stream.restarts_in_a_row >= options.max_restarts:
        raise RuntimeError(
            f"{stream.dataset}: stream failed {stream.restarts_in_a_row + 1} times in a row; last error: {error}"
        )
    stream.restarts_in_a_row += 1
    stream.restarts += 1
    run.add(**{f"{stream.dataset}_restarts": 1})
    backoff = min(30.0, 2.0**stream.restarts_in_a_row)
    log.warning(
        "%s: stream failed (%s); restarting from the checkpoint in %.0fs",
        stream.dataset, str(error).strip().splitlines()[0], backoff,
    )
    if not stop.wait(backoff):
        _restart(spark, config, stream, options, run)


def run_streams(
    spark: SparkSession,
    config: Config,
    options: StreamOptions,
    run: JobRun,
    stop: threading.Event | None = None,
    metrics=None,
) -> dict[str, DatasetStream]:
    """Run one query per dataset until they finish (availableNow), `stop` is set, or
    `max_seconds` pass; failed queries restart from their checkpoints. Each batch also
    goes to `metrics` (a `stream_metrics.StreamMetrics`) when given."""
    stop = stop or threading.Event()
    streams: dict[str, DatasetStream] = {}
    for dataset in options.datasets:
        stream = DatasetStream(
            dataset,
            config.kafka.topics[dataset],
            config.table_path("bronze", dataset),
            config.checkpoint(f"bronze_{dataset}"),
        )
        resume_at = kafka.checkpoint_offsets(spark, stream.checkpoint, stream.topic)
        run.add(**{f"{dataset}_records_lost": check_data_loss(spark, config, stream, resume_at)})
        stream.query = start_query(spark, config, stream, options)
        log.info(
            "%s: topic %s -> %s (checkpoint %s, trigger %s)",
            dataset, stream.topic, stream.table, stream.checkpoint, options.trigger,
        )
        streams[dataset] = stream

    started = last_gap_check = time.monotonic()
    while not all(s.done for s in streams.values()):
        for stream in streams.values():
            if not stream.done:
                poll(spark, config, stream, options, run, stop, metrics)
        now = time.monotonic()
        if options.max_seconds is not None and now - started >= options.max_seconds and not stop.is_set():
            log.info("ran for %.0fs (--max-seconds): stopping", now - started)
            stop.set()
        if stop.is_set():
            log.info("stopping: letting the batches in flight commit")
            for stream in streams.values():
                stop_gracefully(stream)
                log_progress(stream, run, metrics)
            break
        if now - last_gap_check >= options.gap_check_seconds:
            last_gap_check = now
            for stream in streams.values():
                if stream.committed and not stream.done:
                    run.add(**{f"{stream.dataset}_records_lost": _check_running(spark, config, stream)})
        stop.wait(0.2)
    return streams


def _check_running(spark: SparkSession, config: Config, stream: DatasetStream) -> int:
    try:
        return check_data_loss(spark, config, stream, stream.committed)
    except DataLossError:
        raise
    except Exception as exc:  # noqa: BLE001 - a broker blip must not stop the stream
        log.debug("gap check skipped: %s", exc)
        return 0


class _FailedQuery:
    """Stands in for a query that could not even start, so the loop retries it."""

    isActive = False
    recentProgress: list = []
    lastProgress = None
    status: dict = {}

    def __init__(self, error: Exception) -> None:
        self._error = error

    def exception(self) -> Exception:
        return self._error


METRICS_PORT = "stream_port"  # its endpoint's port: metrics.stream_port


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", action="append", choices=NAMES, help="dataset to stream (repeatable; default: access_logs, product_views and any other whose topic exists)")
    parser.add_argument("--trigger", help='"availableNow" (catch up, then stop) or an interval such as "1 second" (default: kafka.trigger)')
    parser.add_argument("--max-offsets-per-trigger", type=int, help="cap per micro-batch (default: kafka.max_offsets_per_trigger; 0 = no cap)")
    parser.add_argument("--max-restarts", type=int, default=5, help="restarts in a row after failures before giving up (default 5)")
    parser.add_argument("--max-seconds", type=float, help="stop gracefully after this many seconds")
    stream_metrics.port_argument(parser, METRICS_PORT)


def stop_on_signals(logger: logging.Logger) -> threading.Event:
    """An event SIGTERM / Ctrl-C set: the stream finishes the batch in flight, then stops."""
    stop = threading.Event()

    def on_signal(signum, _frame) -> None:
        logger.info("%s received: finishing the batch in flight, then stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return stop


def main(argv: list[str] | None = None) -> int:
    def body(spark: SparkSession, config: Config, run: JobRun, args: argparse.Namespace) -> int:
        cap = config.kafka.max_offsets_per_trigger if args.max_offsets_per_trigger is None else args.max_offsets_per_trigger
        options = StreamOptions(
            datasets=tuple(args.dataset or default_datasets(config)),
            trigger=args.trigger or config.kafka.trigger,
            max_offsets_per_trigger=cap or None,
            max_restarts=args.max_restarts,
            max_seconds=args.max_seconds,
        )
        stop = stop_on_signals(log)
        with stream_metrics.job_endpoint(config, args.metrics_port, METRICS_PORT) as metrics:
            try:
                run_streams(spark, config, options, run, stop, metrics)
            except DataLossError as exc:
                log.error("%s", exc)
                return 3
            except StreamingQueryException as exc:
                log.error("stream failed: %s", exc)
                return 1
        return 0

    return run_job("stream", "Kafka topics -> bronze Delta tables (Structured Streaming).", body, argv, arguments)


if __name__ == "__main__":
    sys.exit(main())
