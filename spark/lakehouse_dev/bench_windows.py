"""Benchmark: the web-event windows and sessions (`feeds.web_events.windows`) on N generated events.

    python -m lakehouse_dev.bench_windows                 # 2,000,000 events
    python -m lakehouse_dev.bench_windows -n 200000 --keep

Generates N web events (`samples.write_web_events`, no bad records) into `.data/bench_windows`,
parses them once into silver-like Parquet (event_ts, event_date, ip, host, referrer_host;
not timed), then times, each into Spark's noop sink: `traffic_5min`,
`traffic_5min_referrer` and `sessions` (the work of the daily recompute and of each
`stream-windows` micro-batch), and prints events/s next to the engine's ceiling on the
same rows (the Parquet read and rewrite), so the ratio stays readable on a noisy machine.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse.config import load_config, project_root
from lakehouse.feeds.web_events import windows as web_windows
from lakehouse.transforms.records import url_host
from lakehouse_dev import samples


def _timed(label: str, df: DataFrame, n: int) -> float:
    started = time.time()
    df.write.format("noop").mode("overwrite").save()
    seconds = time.time() - started
    print(f"  {label:<24} {seconds:7.2f}s  {n / seconds:>12,.0f} events/s", flush=True)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lakehouse_dev.bench_windows", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "-n", "--events", type=int, default=2_000_000, help="events to generate (default 2,000,000)"
    )
    parser.add_argument(
        "--gap", type=int, help="session gap in seconds (default: web_events.session_gap_seconds)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    args = parser.parse_args(argv)

    from lakehouse.session import get_spark

    config = load_config()
    gap = args.gap or config.web_events.session_gap_seconds
    work = project_root() / ".data" / "bench_windows"
    work.mkdir(parents=True, exist_ok=True)
    data = work / f"web_events_{args.events}.jsonl"
    if not data.exists():
        print(f"generating {args.events:,} events -> {data}", flush=True)
        samples.write_web_events(data, args.events, bad_records=False)
    spark = get_spark(config, app_name="lakehouse-bench-windows")
    try:
        fields = "ip string, host string, referrer string, event_time string"
        event = F.from_json(F.col("value"), fields)
        parsed = (
            spark.read.text(str(data))
            .select(
                F.to_timestamp(event.event_time).alias("event_ts"),
                F.trim(event.ip).alias("ip"),
                F.lower(F.trim(event.host)).alias("host"),
                url_host(F.when(~F.trim(event.referrer).isin("", "-"), event.referrer)).alias(
                    "referrer_host"
                ),
            )
            .withColumn("event_date", F.to_date("event_ts"))
        )
        rows_path = str(work / "silver_like.parquet")
        parsed.write.mode("overwrite").parquet(rows_path)
        events = spark.read.parquet(rows_path)
        n = events.count()
        print(
            f"{n:,} events, session gap {gap}s, {spark.sparkContext.defaultParallelism} cores",
            flush=True,
        )

        started = time.time()
        events.write.mode("overwrite").parquet(str(work / "ceiling.parquet"))
        ceiling = time.time() - started
        print(
            f"  {'ceiling (parquet copy)':<24} {ceiling:7.2f}s  {n / ceiling:>12,.0f} events/s",
            flush=True,
        )
        total = sum(
            _timed(label, df, n)
            for label, df in (
                ("traffic_5min", web_windows.traffic_5min(events)),
                ("traffic_5min_referrer", web_windows.traffic_5min_referrer(events)),
                ("sessions", web_windows.sessions(events, gap)),
            )
        )
        print(
            f"windows + sessions: {total:.2f}s, {n / total:,.0f} events/s "
            f"({ceiling / total:.2f} x the engine's ceiling)",
            flush=True,
        )
    finally:
        spark.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
