"""Bronze web events -> gold 5-minute windows and sessions, in real time (seed 002's Flink jobs).

    lakehouse stream-windows                          # keep running, trigger web_events.trigger
    lakehouse stream-windows --trigger "1 second" --max-seconds 600
    lakehouse stream-windows --trigger availableNow   # catch up on bronze, then stop
    spark-submit spark/lakehouse/jobs/stream_windows.py --trigger availableNow

Reads `bronze/web_events` (filled from Kafka by `lakehouse stream --dataset web_events`)
as a Delta stream and keeps `gold/traffic_5min`, `gold/traffic_5min_referrer` and
`gold/sessions` current: a window or session is written as soon as the watermark
(the newest event time seen minus `web_events.lateness_seconds`) passes its close.
Events behind the watermark are counted per window in `gold/late_events`
(report_date, window_start, window_end, host, late_events); the daily batch
(`lakehouse silver` + `lakehouse gold`) recomputes their dates from silver, late ones
included. With `web_events.processed_events_topic` set, every valid event of a
micro-batch is also published there as JSON (ip, host, url, referrer_host, event_time,
country, event_id), keyed by ip.

Why not Spark's own `withWatermark` + `groupBy(window)` / `session_window`: its stateful
operators drop rows behind the watermark without telling which window they belonged
to, and their aggregation would be a second implementation of the windows. Instead a
`foreachBatch` query keeps its own small state, so that

* streaming equals batch by construction: closed windows and sessions are computed by
  the same pure functions as the batch gold job (`feeds.web_events.windows`) over the
  events kept in a small "pending" Delta table (events whose window or session is open);
* late events are never dropped silently: an event is late when its time is before the
  watermark in force when its micro-batch starts; it is counted per window and host;
* a replayed micro-batch (the process died before the checkpoint recorded it) changes
  nothing: the state table (`<checkpoint>/_state`: one row, the last batch's id,
  watermark and pending-table version, written last with the batch's transaction id) is
  the commit marker; a replay recomputes from the state of the batch before (the
  pending table read at the version that batch left), gold upserts are idempotent, and
  `late_events` additions carry the batch that made them (`updated_by`), so the same
  batch never adds twice.

Rules, with watermark w (epoch microseconds): a window [s, e) is closed when w >= e, a
session (per ip and host, events less than `session_gap_seconds` apart) when
w >= session_end + gap (no on-time event can join it any more). Micro-batch n closes
what lies in (w before n, w after n]. The gold upserts key on `transforms.gold.PRIMARY_KEYS`
and leave a row alone when it already counts more hits (the daily batch recomputed that
date from silver with events the stream saw as late); Delta commit conflicts with the
batch job writing the same tables are retried (`io.delta_merge.upsert`).

With `web_events.live_export` (the default) and an export target (`export.url`), each
closed window and session is also upserted into the database by its key in the micro-batch
that closes it (`export_gold.upsert_live`, the same "more hits stays" rule), so PostgreSQL
holds it seconds after the watermark passes its end, not after the daily export.

Each micro-batch logs its events, late events, windows and sessions closed, the watermark
and the close latency (now minus the end of the newest window written; at least the
lateness by design).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.streaming import StreamingQuery

from lakehouse.config import Config
from lakehouse.feeds.web_events import windows as web_windows
from lakehouse.feeds.web_events.stream_windows import (
    between_watermarks,
    late_counts,
    micros,
    processed_messages,
    window_end_us,
)
from lakehouse.io import delta, delta_merge, jdbc, kafka
from lakehouse.jobs import stream_metrics
from lakehouse.jobs.export_gold import prepare_live, upsert_live
from lakehouse.jobs.runtime import JobRun, run_job, timed
from lakehouse.jobs.stream_progress import batch_progress
from lakehouse.transforms import privacy as privacy_transform
from lakehouse.transforms.gold import PRIMARY_KEYS

log = logging.getLogger("lakehouse.stream_windows")

NAME = "stream_windows"
METRICS_PORT = "stream_windows_port"  # its endpoint's port: metrics.stream_windows_port
# What the pending table keeps of an event: what the window and session functions read.
EVENT_COLUMNS = ("event_id", "event_ts", "event_date", "ip", "host", "referrer_host")
LATE_KEYS = ("report_date", "window_start", "host")
STATE_SCHEMA = T.StructType(
    [
        T.StructField("app_id", T.StringType()),
        T.StructField("batch_id", T.LongType()),
        T.StructField("watermark_us", T.LongType()),
        T.StructField("pending_version", T.LongType()),
        T.StructField("events", T.LongType()),
        T.StructField("late_events", T.LongType()),
        T.StructField("windows_closed", T.LongType()),
        T.StructField("sessions_closed", T.LongType()),
        T.StructField("pending_events", T.LongType()),
        T.StructField("recorded_at", T.TimestampType()),
    ]
)


# --- state ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Paths:
    bronze: str
    checkpoint: str

    @property
    def state(self) -> str:
        return f"{self.checkpoint}/_state"

    @property
    def pending(self) -> str:
        return f"{self.checkpoint}/_pending"


@dataclass(frozen=True)
class State:
    """What the micro-batches before this one left: the last batch id, watermark and pending version."""

    batch_id: int
    watermark_us: int | None
    pending_version: int | None


def load_state(spark: SparkSession, paths: Paths, app_id: str) -> State:
    """The latest state row of this checkpoint's writer (`app_id`), or the initial state."""
    if not delta.table_exists(spark, paths.state):
        return State(-1, None, None)
    row = (
        delta.read_table(spark, paths.state)
        .where(F.col("app_id") == app_id)
        .orderBy(F.desc("batch_id"))
        .select("batch_id", "watermark_us", "pending_version")
        .first()
    )
    return State(-1, None, None) if row is None else State(int(row[0]), row[1], row[2])


def _ts(us: int | None) -> str:
    if us is None:
        return "none"
    return datetime.fromtimestamp(us / 1e6, UTC).strftime("%Y-%m-%d %H:%M:%S")


# --- one micro-batch ---------------------------------------------------------------------


@dataclass
class BatchResult:
    events: int = 0
    late_events: int = 0
    windows_closed: int = 0
    sessions_closed: int = 0
    pending_events: int = 0
    watermark_us: int | None = None
    newest_window_end_us: int | None = None
    replay: bool = False


def valid_events(bronze_rows: DataFrame, config: Config) -> DataFrame:
    """Bronze rows -> the valid events (what silver keeps) with the columns used here."""
    from lakehouse.feeds.web_events.parse import web_event_rows  # written alongside (issue 14)

    rows = web_event_rows(
        bronze_rows, config.quality.min_event_date, config.quality.max_future_hours
    )
    valid = F.col("reason").isNull() & ~F.coalesce(F.col("is_blank"), F.lit(False))
    events = rows.where(valid).select(*EVENT_COLUMNS, "url")
    # Sessions are per IP: stored as silver stores the IP (`privacy.ip_anonymisation`).
    privacy = config.privacy
    return privacy_transform.with_anonymised_ip(events, "ip", privacy.ip_anonymisation, privacy.ip_hash_key)


def _geo_countries(spark: SparkSession, config: Config) -> DataFrame | None:
    """ip -> country from the GeoIP dimension silver keeps (no lookup here): None when absent."""
    from lakehouse.io import geoip

    path = config.table_path("silver", "dim_ip_geo")
    if config.privacy.anonymises or not delta.table_exists(spark, path):
        # Anonymised IPs match no address of the dimension (which silver then does not keep).
        return None
    classifier = geoip.build_of(geoip.database_path(config.geoip_database))
    dim = delta.read_table(spark, path).where(F.col("classifier") == classifier)
    return dim.select("ip", "country").dropDuplicates(["ip"])


def publish_processed(spark: SparkSession, config: Config, events: DataFrame, topic: str) -> None:
    """Send the batch's valid events to `topic` (Spark's Kafka sink, acks=all).

    Countries come from `silver/dim_ip_geo` (an IP silver has not located yet has none).
    """
    countries = _geo_countries(spark, config)
    if countries is None:
        enriched = events.withColumn("country", F.lit(None).cast("string"))
    else:
        enriched = events.join(F.broadcast(countries), "ip", "left")
    kafka.write_batch(processed_messages(enriched), config.kafka.bootstrap_servers, topic)


def process_batch(
    spark: SparkSession,
    config: Config,
    paths: Paths,
    bronze_rows: DataFrame,
    batch_id: int,
    app_id: str,
    live: jdbc.JdbcTarget | None = None,
) -> BatchResult:
    """Apply one bronze micro-batch: late counts, closed windows and sessions, pending, state;
    with `live`, the closed windows and sessions are upserted into that database too."""
    state = load_state(spark, paths, app_id)
    if state.batch_id >= batch_id:
        log.info("batch %d: already applied (replay after a restart): skipped", batch_id)
        return BatchResult(watermark_us=state.watermark_us, replay=True)
    kept: list[DataFrame] = []
    gap = config.web_events.session_gap_seconds
    lateness_us = config.web_events.lateness_seconds * 1_000_000
    w0 = state.watermark_us
    result = BatchResult()
    try:
        ts_us = micros(F.col("event_ts"))
        is_late = F.lit(False) if w0 is None else ts_us < F.lit(w0)
        with timed(log, "parse + keep"):  # the first action fills the cache
            events = _keep(valid_events(bronze_rows, config), kept)
            facts = events.agg(F.count(F.lit(1)), F.max(ts_us), F.count_if(is_late)).first()
        result.events, newest, result.late_events = int(facts[0]), facts[1], int(facts[2])
        w1 = w0
        if newest is not None:
            w1 = newest - lateness_us if w0 is None else max(w0, newest - lateness_us)
        result.watermark_us = w1
        updated_by = f"{app_id}:{batch_id}"

        if result.late_events:
            with timed(log, "late_events"):
                delta_merge.upsert(
                    late_counts(events.where(is_late), updated_by),
                    config.table_path("gold", "late_events"),
                    LATE_KEYS,
                    update_when="t.updated_by <> s.updated_by",
                    update_set={
                        "late_events": "t.late_events + s.late_events",
                        "window_end": "s.window_end",
                        "updated_by": "s.updated_by",
                        "updated_at": "s.updated_at",
                    },
                )

        # The events of open windows and sessions: what earlier batches left, plus the on-time ones.
        on_time = events.where(~is_late).select(*EVENT_COLUMNS)
        if state.pending_version is not None:
            on_time = (
                delta.read_table(spark, paths.pending, state.pending_version)
                .select(*EVENT_COLUMNS)
                .unionByName(on_time)
            )
        pending = _keep(on_time.withColumn("_window_end_us", window_end_us(F.col("event_ts"))), kept)
        closing = pending.where(between_watermarks(F.col("_window_end_us"), w0, w1)).select(
            *EVENT_COLUMNS
        )
        windows = _keep(web_windows.traffic_5min(closing), kept)
        wfacts = windows.agg(F.count(F.lit(1)), F.max(micros(F.col("window_end")))).first()
        result.windows_closed, result.newest_window_end_us = int(wfacts[0]), wfacts[1]
        if result.windows_closed:
            referrers = _keep(web_windows.traffic_5min_referrer(closing), kept)
            if live is not None:  # first: what readers of the database wait for
                with timed(log, "SQL windows"):
                    _upsert_sql(live, "traffic_5min", windows)
                    _upsert_sql(live, "traffic_5min_referrer", referrers)
            with timed(log, "gold windows"):
                _upsert_gold(config, "traffic_5min", windows)
                _upsert_gold(config, "traffic_5min_referrer", referrers)

        all_sessions = _keep(web_windows.sessions(pending.select(*EVENT_COLUMNS), gap), kept)
        session_close_us = micros(F.col("session_end")) + F.lit(gap * 1_000_000)
        closed_sessions = all_sessions.where(between_watermarks(session_close_us, None, w1))
        new_sessions = all_sessions.where(between_watermarks(session_close_us, w0, w1))
        result.sessions_closed = new_sessions.count()
        if result.sessions_closed:
            if live is not None:
                with timed(log, "SQL sessions"):
                    _upsert_sql(live, "sessions", new_sessions)
            with timed(log, "gold sessions"):
                _upsert_gold(config, "sessions", new_sessions)

        # An event leaves pending once its window and its session are both closed.
        e, s = pending.alias("e"), closed_sessions.alias("s")
        done = (
            F.col("e.ip").eqNullSafe(F.col("s.ip"))
            & F.col("e.host").eqNullSafe(F.col("s.host"))
            & F.col("e.event_ts").between(F.col("s.session_start"), F.col("s.session_end"))
            & between_watermarks(F.col("e._window_end_us"), None, w1)
        )
        remaining = e.join(s, done, "left_anti").select(*EVENT_COLUMNS)
        with timed(log, "pending"):
            delta_merge.overwrite(remaining, paths.pending)
            pending_version = delta.table_version(spark, paths.pending)
            result.pending_events = int(
                delta.last_commit_metrics(spark, paths.pending).get("numOutputRows", 0)
            )

        topic = config.web_events.processed_events_topic
        if topic and result.events:
            with timed(log, "processed_events"):
                publish_processed(spark, config, events, topic)

        # Last: the commit marker of this batch (a replay of it is skipped from here on).
        record_state(spark, paths, app_id, batch_id, pending_version, result)
    finally:
        for df in kept:
            df.unpersist()
    return result


def _keep(df: DataFrame, kept: list[DataFrame]) -> DataFrame:
    """`df` cached for the batch's several reads (memory, spilling to the executors' disks).

    Not `io.staging`'s Parquet: a micro-batch is mostly small, and each staged write to the
    object store cost 1-3 s of the window's delay to SQL (a large catch-up batch spills to
    the executors' disks instead). A lost block is recomputed from
    the micro-batch's rows and the pending table at its pinned version, so the same rows
    come back even after this batch overwrote the pending table."""
    kept.append(df.persist(StorageLevel.MEMORY_AND_DISK))
    return kept[-1]


def record_state(
    spark: SparkSession,
    paths: Paths,
    app_id: str,
    batch_id: int,
    pending_version: int | None,
    result: BatchResult,
) -> None:
    """Store the batch's state row (with its transaction id: written once, whatever happens)."""
    row = (
        app_id,
        batch_id,
        result.watermark_us,
        pending_version,
        result.events,
        result.late_events,
        result.windows_closed,
        result.sessions_closed,
        result.pending_events,
        datetime.now(UTC).replace(tzinfo=None),
    )
    # One row, overwritten: the table stays one small file however many batches run.
    delta_merge.overwrite(
        spark.createDataFrame([row], STATE_SCHEMA), paths.state, txn=(app_id, batch_id)
    )


def _upsert_gold(config: Config, table: str, rows: DataFrame) -> None:
    # A date the daily batch recomputed from silver may count events this stream saw as
    # late: such a row (more hits than ours) is left as the batch wrote it.
    delta_merge.upsert(
        rows, config.table_path("gold", table), PRIMARY_KEYS[table], update_when="s.hits >= t.hits"
    )


def _upsert_sql(target: jdbc.JdbcTarget, table: str, rows: DataFrame) -> None:
    # The same rule as in gold: a row the daily export wrote with more hits stays.
    upsert_live(target, table, rows, unless_larger="hits")


def describe(batch_id: int, result: BatchResult, lateness_s: int) -> str:
    """One log line per micro-batch (with the close latency of the newest window written)."""
    text = (
        f"web_events windows batch {batch_id}: {result.events} events ({result.late_events} late), "
        f"{result.windows_closed} windows and {result.sessions_closed} sessions closed, "
        f"{result.pending_events} pending; watermark {_ts(result.watermark_us)}"
    )
    if result.newest_window_end_us is not None:
        latency = time.time() - result.newest_window_end_us / 1e6
        text += f"; newest window ended {latency:.1f}s ago ({latency - lateness_s:.1f}s after the lateness allowance)"
    return text


# --- the query ---------------------------------------------------------------------------


def _available_now(trigger: str) -> bool:
    return trigger.replace("_", "").lower() == "availablenow"


def start_query(
    spark: SparkSession, config: Config, paths: Paths, trigger: str, run: JobRun
) -> StreamingQuery:
    """The foreachBatch query over the bronze Delta stream."""
    app_id = delta.writer_app_id(spark, paths.checkpoint, NAME)
    live = None
    if config.web_events.live_export:
        live = prepare_live(spark, config)

    def on_batch(batch: DataFrame, batch_id: int) -> None:
        started = time.time()
        result = process_batch(spark, config, paths, batch, batch_id, app_id, live)
        if result.replay:
            return
        run.add(
            batches=1,
            events=result.events,
            late_events=result.late_events,
            windows_closed=result.windows_closed,
            sessions_closed=result.sessions_closed,
        )
        log.info(
            "%s (%.1fs)",
            describe(batch_id, result, config.web_events.lateness_seconds),
            time.time() - started,
        )

    writer = (
        spark.readStream.format("delta")
        .load(paths.bronze)
        .writeStream.queryName(NAME)
        .foreachBatch(on_batch)
        .option("checkpointLocation", paths.checkpoint)
    )
    writer = (
        writer.trigger(availableNow=True)
        if _available_now(trigger)
        else writer.trigger(processingTime=trigger)
    )
    return writer.start()


def run_windows(
    spark: SparkSession,
    config: Config,
    run: JobRun,
    trigger: str,
    max_seconds: float | None = None,
    stop: threading.Event | None = None,
    metrics=None,
) -> None:
    """Run the query until it catches up (availableNow), `stop` is set or `max_seconds` pass;
    each finished micro-batch also goes to `metrics` (a `stream_metrics.StreamMetrics`) when given."""
    stop = stop or threading.Event()
    paths = Paths(config.table_path("bronze", "web_events"), config.checkpoint(NAME))
    started = time.monotonic()

    def out_of_time() -> bool:
        return max_seconds is not None and time.monotonic() - started >= max_seconds

    while not delta.table_exists(spark, paths.bronze):
        if _available_now(trigger) or stop.is_set() or out_of_time():
            log.info("no bronze/web_events table yet: nothing to do")
            return
        stop.wait(1.0)
    query = start_query(spark, config, paths, trigger, run)
    log.info(
        "bronze/web_events -> gold windows and sessions (checkpoint %s, trigger %s)",
        paths.checkpoint,
        trigger,
    )
    observed = -1

    def observe() -> None:
        nonlocal observed
        for report in query.recentProgress if metrics is not None else []:
            batch = batch_progress(report)
            if batch is not None and batch.batch_id > observed:
                observed = batch.batch_id
                metrics.observe("web_events", "bronze/web_events", batch)

    try:
        while query.isActive:
            observe()
            if out_of_time() and not stop.is_set():
                log.info("ran for %.0fs (--max-seconds): stopping", time.monotonic() - started)
                stop.set()
            if stop.is_set():
                # Let the micro-batch in flight finish (it commits), then stop.
                deadline = time.monotonic() + 120
                while (
                    query.isActive
                    and query.status.get("isTriggerActive")
                    and time.monotonic() < deadline
                ):
                    time.sleep(0.1)
                query.stop()
                break
            stop.wait(0.2)
    finally:
        if query.isActive:
            query.stop()
        observe()
    if query.exception() is not None:
        raise RuntimeError(f"{NAME} failed: {query.exception()}")


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--trigger",
        help='"availableNow" (catch up, then stop) or an interval such as "1 second" (default: web_events.trigger)',
    )
    parser.add_argument("--max-seconds", type=float, help="stop gracefully after this many seconds")
    stream_metrics.port_argument(parser, METRICS_PORT)


def main(argv: list[str] | None = None) -> int:
    def body(spark: SparkSession, config: Config, run: JobRun, args: argparse.Namespace) -> int:
        stop = threading.Event()

        def on_signal(signum, _frame) -> None:
            log.info(
                "%s received: finishing the batch in flight, then stopping",
                signal.Signals(signum).name,
            )
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        with stream_metrics.job_endpoint(config, args.metrics_port, METRICS_PORT) as metrics:
            run_windows(spark, config, run, args.trigger or config.web_events.trigger, args.max_seconds, stop, metrics)
        return 0

    return run_job(
        "stream-windows",
        "Bronze web events -> gold 5-minute windows and sessions (Structured Streaming).",
        body,
        argv,
        arguments,
    )


if __name__ == "__main__":
    sys.exit(main())
