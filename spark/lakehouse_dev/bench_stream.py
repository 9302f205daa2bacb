"""Streaming benchmark: Kafka -> bronze Delta on MinIO, against Kafka's own consumer.

    make bench                                   # runs this after the batch benchmark
    python -m lakehouse_dev.bench_stream --events 1000000 [--rate 2000 --seconds 30]

Starts its own Kafka, MinIO and PostgreSQL (under `.data/bench-stack`, ports 39092/39000/39432), then prints:
- the ceiling: Kafka's ConsumerPerformance reading the topic (messages/s),
- Spark's Kafka source alone on the same topic (read and discarded): the engine's own
  limit before any sink,
- the floor under the stream: the same records, read with the stream's options, written in
  bronze's shape to a Delta table on MinIO by one batch job (no streaming),
- the stream's sustained ingest rate into bronze on MinIO (events/s over the
  `maxOffsetsPerTrigger`-sized batches after the first, which also creates the table and
  warms the JVM; the all-batches figure is printed too) and its ratio to the ceiling,
- end-to-end latency at a steady `--rate` events/s (Kafka's ProducerPerformance) with a
  1 s trigger, after `--warmup` seconds of the same load: the time from the producer's
  send (Kafka CreateTime) to the moment the Delta commit that holds the record became
  visible (the commit file's modification time on MinIO), p50 / p95 / max;
- a closed 5-minute window in PostgreSQL (its own server under `.data/bench-stack`, port
  39432): web events -> bronze -> `stream-windows` (1 s triggers each, live export), per
  round 20 events in a new window and then a closer that moves the watermark past its
  end; seconds from the closer's bronze commit (where the windows stream's watermark
  passes the window's end) to its row in PostgreSQL (polled with psql every 0.1 s), next to
  the goal of 15 s, and from Kafka's acknowledgement of the closer.
Figures are measured, not asserted.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

from pyspark.sql import functions as F

from lakehouse.config import load_config, project_root

KAFKA_PORT, KAFKA_CONTROLLER_PORT, MINIO_PORT, MINIO_CONSOLE_PORT = 39092, 39093, 39000, 39001
POSTGRES_PORT = 39432
WINDOW_GOAL_S = 15  # a closed window in PostgreSQL within 15 s of the watermark passing its end


def _with_commit_time(spark, table: str, *columns):
    """The rows' `columns` of the Delta table, each with `visible_at`: when the commit that
    added its file became visible (the commit file's modification time on MinIO)."""
    log = (
        spark.read.json(f"{table}/_delta_log/*.json")
        .where(F.col("add").isNotNull())
        .select(
            F.col("add.path").alias("path"),
            F.col("_metadata.file_modification_time").alias("visible_at"),
        )
    )
    rows = spark.read.format("delta").load(table).select(
        *columns, F.regexp_extract(F.col("_metadata.file_path"), r"(ingest_date=[^/]+/[^/]+)$", 1).alias("path")
    )
    return rows.join(log, "path")


def commit_latencies(spark, table: str):
    """Per bronze row: seconds from Kafka CreateTime to its Delta commit being visible."""
    latency = (F.unix_micros("visible_at") - F.unix_micros("kafka_ts")) / 1e6
    return _with_commit_time(spark, table, "kafka_ts").select(F.col("kafka_ts").alias("sent_at"), latency.alias("s"))


def closer_times(spark, table: str, closers: list[bytes]) -> dict[bytes, float]:
    """Per closer record (its value): epoch seconds its bronze Delta commit became visible.
    One row per closer reaches the driver (each value is sent once, `--window-rounds` of them)."""
    found = (
        _with_commit_time(spark, table, F.col("value").cast("string").alias("value"))
        .where(F.col("value").isin([c.decode() for c in closers]))
        .select("value", F.unix_micros("visible_at").alias("us"))
        .collect()
    )
    return {r["value"].encode(): r["us"] / 1e6 for r in found}


def window_to_sql(spark, overrides: dict, env: dict, broker, base: Path, rounds: int) -> list[tuple[float, float]]:
    """(seconds from the closer's bronze commit, from Kafka's ack of it) to the closed window's
    row in PostgreSQL, per round (see the module's docstring)."""
    import json
    from datetime import UTC, datetime, timedelta

    from lakehouse.io import kafka as kafka_io
    from lakehouse.jobs import stream_windows
    from lakehouse.jobs.runtime import JobRun
    from lakehouse.jobs.stream_kafka import StreamOptions, run_streams
    from lakehouse_dev.services import kafka, postgres

    pg = postgres.start(base / "postgres", port=POSTGRES_PORT, password="bench-windows")
    overrides = overrides | {
        "warehouse": "s3a://lakehouse/bench_windows",
        "kafka": overrides["kafka"] | {"topics": {"web_events": "bench.web"}},
        "export": {"url": pg.jdbc_url, "user": pg.user},
        "web_events": {"lateness_seconds": 60, "live_export": True, "processed_events_topic": None},
    }
    config = load_config(profile="services", overrides=overrides, environ=env | {"LAKEHOUSE_EXPORT_PASSWORD": pg.password})
    kafka.create_topics(broker, {"bench.web": 2})
    stop = threading.Event()
    bronze = threading.Thread(
        target=run_streams,
        args=(spark, config, StreamOptions(("web_events",), "1 second", None), JobRun("bronze"), stop),
        daemon=True,
    )
    windows = threading.Thread(
        target=stream_windows.run_windows, args=(spark, config, JobRun("windows"), "1 second"),
        kwargs={"stop": stop}, daemon=True,
    )
    bronze.start()
    windows.start()
    time.sleep(8)  # both queries up and idle

    def send(values: list[bytes]) -> float:
        stats = kafka_io.send_paced(config.kafka.bootstrap_servers, "bench.web", ((None, v) for v in values), None)
        if stats.acknowledged != len(values):
            raise RuntimeError(f"bench.web: {stats.acknowledged} of {len(values)} acknowledged")
        return time.time()

    def event(ts: datetime, ip: str) -> bytes:
        return json.dumps({"ip": ip, "host": "shop.example", "url": "/", "referrer": None,
                           "user_agent": "Mozilla/5.0", "event_time": ts.strftime("%Y-%m-%dT%H:%M:%SZ")}).encode()

    acked, seen, closers, day = [], [], [], datetime(2024, 3, 1, 10, tzinfo=UTC)
    try:
        for r in range(rounds):
            start = day + timedelta(minutes=10 * r)
            send([event(start + timedelta(seconds=3 * s), f"10.1.{r}.{s % 4}") for s in range(20)])
            time.sleep(6)  # the round's events in, the window still open (watermark 60 s behind)
            closers.append(event(start + timedelta(minutes=6), f"10.9.{r}.1"))
            acked.append(send([closers[-1]]))
            query = f"SELECT count(*) FROM traffic_5min WHERE window_start = '{start:%Y-%m-%d %H:%M:%S}'"
            deadline = time.time() + 120
            while pg.psql(query).strip() in ("", "0"):
                if time.time() > deadline or not windows.is_alive():
                    raise RuntimeError(f"round {r}: the closed window never reached PostgreSQL")
                time.sleep(0.1)
            seen.append(time.time())
    finally:
        stop.set()
        bronze.join(120)
        windows.join(120)
        postgres.stop(base / "postgres")
    landed = closer_times(spark, config.table_path("bronze", "web_events"), closers)
    return [(t - landed[c], t - a) for c, a, t in zip(closers, acked, seen, strict=True)]


def stream_batches(stream) -> list[tuple[int, int, float]]:
    """(batch id, rows, seconds) of each micro-batch the stream's query ran."""
    from lakehouse.jobs.stream_progress import batch_progress

    batches = (batch_progress(p) for p in stream.query.recentProgress)
    return [(b.batch_id, b.rows, b.seconds) for b in batches if b is not None]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lakehouse bench-stream", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3_000_000, help="events preloaded for the ingest test")
    parser.add_argument("--batch", type=int, default=None, help="maxOffsetsPerTrigger of the ingest test (default: the config's)")
    parser.add_argument("--rate", type=float, default=2000, help="events/s of the latency test")
    parser.add_argument("--seconds", type=float, default=30, help="length of the latency test (measured part)")
    parser.add_argument("--warmup", type=float, default=20, help="seconds of load before the latency measurement starts")
    parser.add_argument("--window-rounds", type=int, default=5, help="closed windows timed into PostgreSQL")
    args = parser.parse_args(argv)

    from lakehouse.io import kafka as kafka_io
    from lakehouse.jobs import produce
    from lakehouse.jobs.runtime import JobRun, setup_logging
    from lakehouse.jobs.stream_kafka import StreamOptions, run_streams
    from lakehouse.session import get_spark
    from lakehouse.transforms import bronze
    from lakehouse_dev.services import kafka, minio

    setup_logging()
    base = project_root() / ".data" / "bench-stack"
    shutil.rmtree(base, ignore_errors=True)
    broker = kafka.start(base / "kafka", port=KAFKA_PORT, controller_port=KAFKA_CONTROLLER_PORT)
    store = minio.start(base / "minio", port=MINIO_PORT, console_port=MINIO_CONSOLE_PORT, buckets=("lakehouse",))
    try:
        env = {
            "LAKEHOUSE_S3_ACCESS_KEY": store.access_key,
            "LAKEHOUSE_S3_SECRET_KEY": store.secret_key,
        }
        overrides = {
            "warehouse": "s3a://lakehouse/bench",
            "kafka": {"bootstrap_servers": broker.bootstrap, "topics": {"access_logs": "bench.ingest", "product_views": "bench.latency"}},
            "s3": {"endpoint": store.endpoint},
        }
        config = load_config(profile="services", overrides=overrides, environ=env)
        kafka.create_topics(broker, {"bench.ingest": 2, "bench.latency": 2})
        spark = get_spark(config, app_name="lakehouse-bench-stream")

        # 1. Preload the ingest topic.
        with tempfile.TemporaryDirectory(prefix="lakehouse-bench-") as tmp:
            data = produce.synthesize("access_logs", args.events, Path(tmp), seed=7)
            started = time.time()
            sent = produce.produce_file(spark, config, "access_logs", str(data), "bench.ingest", None, JobRun("produce"))
            produce_s = time.time() - started

        # 2. Kafka's own consumer on the same topic: the ceiling.
        perf = kafka.consumer_perf(broker.bootstrap, "bench.ingest", sent, timeout=600)
        ceiling = float(perf["msgs_per_s"])
        # And Spark's Kafka source alone on it (read, discard): what any Spark sink starts from.
        def topic(**options: str):
            return (
                spark.read.format("kafka").option("kafka.bootstrap.servers", broker.bootstrap)
                .option("subscribe", "bench.ingest").options(**options).load()
            )

        source = topic()
        source.write.format("noop").mode("overwrite").save()  # warm-up pass
        started = time.time()
        source.write.format("noop").mode("overwrite").save()
        spark_read_rate = sent / (time.time() - started)
        # The floor under the stream: the same records, read with the stream's options, in
        # bronze's shape and appended to a Delta table on MinIO by one batch job (no offset or
        # commit logs, one commit). The second of two runs: the first warms the write path.
        tuned = topic(**kafka_io.FETCH_OPTIONS)
        for attempt in range(2):
            started = time.time()
            bronze.from_kafka(tuned, F.current_timestamp()).write.format("delta").partitionBy("ingest_date").mode("append").save(
                f"{config.warehouse}/_floor_{attempt}"
            )
            floor_rate = sent / (time.time() - started)

        # 3. The stream: catch up on the whole topic into bronze on MinIO.
        run = JobRun("stream")
        started = time.time()
        batch = args.batch or config.kafka.max_offsets_per_trigger or None
        streams = run_streams(spark, config, StreamOptions(("access_logs",), "availableNow", batch), run)
        wall_s = time.time() - started
        stream = streams["access_logs"]
        batches = stream_batches(stream)
        batch_s = sum(b[2] for b in batches)
        ingest_rate = stream.rows / batch_s if batch_s else float("nan")

        # 4. Latency at a steady rate with a 1 s trigger. The load comes from Kafka's own
        # ProducerPerformance (its own JVM, throttled to --rate), not from this process:
        # a py4j call per record would eat a core of the machine under test. The first
        # --warmup seconds (JIT, first Delta checkpoint of the JVM) are not measured.
        stop = threading.Event()
        latency_run = JobRun("latency")
        runner = threading.Thread(
            target=run_streams,
            args=(spark, config, StreamOptions(("product_views",), "1 second", None), latency_run, stop),
            daemon=True,
        )
        runner.start()
        time.sleep(8)  # the query is up and idle before the load starts
        load_started = time.time()
        n = int(args.rate * (args.warmup + args.seconds))
        sent_stats = kafka.producer_perf(broker, "bench.latency", n, record_size=220, throughput=int(args.rate), timeout=600)
        time.sleep(5)  # let the last trigger commit
        stop.set()
        runner.join(120)
        measured_from = load_started + args.warmup
        lat = commit_latencies(spark, config.table_path("bronze", "product_views"))
        total = lat.count()
        p50, p95, pmax, count = (
            lat.where(F.col("sent_at") >= F.lit(measured_from).cast("timestamp"))
            .agg(F.percentile("s", 0.5), F.percentile("s", 0.95), F.max("s"), F.count("s"))
            .first()
        )
        # 5. Closed windows into PostgreSQL.
        window_sql = window_to_sql(spark, overrides, env, broker, base, args.window_rounds)
        from_bronze, from_ack = sorted(w[0] for w in window_sql), sorted(w[1] for w in window_sql)

        warm = [b for b in batches if b[0] > 0]
        warm_rows, warm_s = sum(b[1] for b in warm), sum(b[2] for b in warm)
        warm_rate = warm_rows / warm_s if warm_s else float("nan")

        print("\n".join([
            "",
            f"lakehouse bench-stream: {sent:,} events preloaded ({sent / produce_s:,.0f} events/s produced by Spark's Kafka writer)",
            f"  ceiling   Kafka ConsumerPerformance      {ceiling:12,.0f} events/s ({perf.get('mb_per_s', float('nan')):.1f} MB/s)",
            f"  source    Spark's Kafka source, no sink  {spark_read_rate:12,.0f} events/s  ratio to ceiling {spark_read_rate / ceiling:.2f}",
            f"  floor     batch job -> bronze on MinIO   {floor_rate:12,.0f} events/s  ratio to ceiling {floor_rate / ceiling:.2f}"
            "  (same records, no streaming)",
            f"  ingest    stream -> bronze on MinIO      {warm_rate:12,.0f} events/s sustained (batches 1..{len(warm)}, "
            f"{warm_rows:,} events in {warm_s:.1f} s)  ratio to ceiling {warm_rate / ceiling:.2f}",
            f"            all {stream.batches} batches incl. the first (table creation, JIT): {ingest_rate:,.0f} events/s "
            f"({batch_s:.1f} s in batches, {wall_s:.1f} s wall incl. start)",
            f"  latency   {args.rate:,.0f} events/s, 1 s trigger, {args.seconds:.0f} s measured after {args.warmup:.0f} s warm-up: "
            f"{count:,} events  p50 {p50:.2f} s  p95 {p95:.2f} s  max {pmax:.2f} s",
            f"            every event landed: {total:,} of {int(sent_stats['records']):,} sent "
            f"(producer at {sent_stats['records_per_s']:,.0f} events/s)",
            f"  window    closed 5-min window -> PostgreSQL, {len(window_sql)} rounds, from the closer in bronze: "
            f"median {from_bronze[len(from_bronze) // 2]:.1f} s  max {from_bronze[-1]:.1f} s  goal {WINDOW_GOAL_S} s",
            f"            from Kafka's ack of the closer (the bronze landing added): "
            f"median {from_ack[len(from_ack) // 2]:.1f} s  max {from_ack[-1]:.1f} s",
        ]), flush=True)
        spark.stop()
    finally:
        kafka.stop(base / "kafka")
        minio.stop(base / "minio")
    return 0


if __name__ == "__main__":
    sys.exit(main())
