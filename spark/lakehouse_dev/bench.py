"""Benchmark: the batch on N synthetic access-log lines, next to the engine's own ceiling.

    make bench                      # 1M and 2M lines, both cardinality cases
    python -m lakehouse_dev.bench --lines 1000000 [--lines 2000000] [--case low|high]

Two cases per size: "low" (distinct client IPs about 3 % of the lines, a few
hundred agents) and "high" (about 90 % of the lines from an IP of their own: a busy
site's long tail). Prints, per case, in one session on this machine:
- the ceiling: Spark reading the text file and writing it as Parquet (same settings),
- the silver access-log stage (bronze -> silver) in lines/s and as a ratio of the ceiling,
- the floor under any silver stage on the same bronze: the JVM parse alone (Spark's noop
  sink), and that parse written as a Delta table partitioned by event_date, with none of
  silver's other work (fallback, quarantine, dedupe, user-agent and GeoIP enrichment),
- the whole `lakehouse batch` (files -> bronze -> silver -> gold -> SQLite export),
- GoAccess on the same file when it is installed (`apt-get install goaccess`),
- the driver JVM's peak memory (RSS) during the batch, and the gold stage's time.
Figures are measured, not asserted: speed targets live here, not in timed tests.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from pyspark.sql import functions as F

from lakehouse.config import load_config
from lakehouse_dev.samples import write_access_log


def _jvm_peak_rss_mb(spark) -> float | None:
    pid = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _goaccess_seconds(path: Path) -> float | None:
    binary = shutil.which("goaccess")
    if binary is None:
        return None
    start = time.time()
    subprocess.run(
        [binary, str(path), "--log-format=COMBINED", "--no-global-config", "-o", str(path.with_suffix(".goaccess.json"))],
        check=True,
        capture_output=True,
    )
    return time.time() - start


def _silver_floor(spark, config, work: Path) -> tuple[float, float]:
    """Seconds for the least a silver stage must do on `config`'s bronze access logs.

    (parse -> noop sink, parse -> Delta partitioned by event_date): the fast-path parse of
    the silver job itself, so the gap between these and the silver stage is the cost of
    silver's own work (quarantine, dedupe, enrichment, fallback, staging).
    """
    from lakehouse.feeds.access_logs.parse import SILVER_COLUMNS
    from lakehouse.feeds.access_logs.silver import GEO_COLUMNS, make_parse
    from lakehouse.transforms.enrich import UA_SCHEMA

    _, parse = make_parse(config)
    parsed = parse(spark.read.format("delta").load(config.table_path("bronze", "access_logs")), with_apachelogs=False)
    # Every parsed column silver stores, minus the enrichment (not known without the dimensions).
    enriched = {*UA_SCHEMA.fieldNames(), *GEO_COLUMNS} - {"user_agent"}
    rows = parsed.select(*[c for c in SILVER_COLUMNS if c not in enriched])
    started = time.time()
    rows.write.format("noop").mode("overwrite").save()
    parse_s = time.time() - started
    out = work / "floor_delta"
    shutil.rmtree(out, ignore_errors=True)
    started = time.time()
    # No filter on `reason` here: a filter over the parsed columns is pushed below the
    # projections and re-runs the regex per reference (silver filters its staged copy).
    rows.write.format("delta").partitionBy("event_date").save(str(out))
    write_s = time.time() - started
    shutil.rmtree(out, ignore_errors=True)
    return parse_s, write_s


def _reset_peak_rss(spark) -> None:
    """Start the driver JVM's peak RSS (VmHWM) afresh (Linux: `5` into /proc/<pid>/clear_refs)."""
    pid = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


# name -> share of lines that come from an IP of their own (None: ~3 % of lines are distinct IPs)
CASES = {"low": None, "high": 0.9}


def _data(work: Path, lines: int, seed: int, share: float | None) -> Path:
    suffix = "" if share is None else f"_ips{int(share * 100)}"
    data = work / f"access_{lines}_{seed}{suffix}.log"
    if not data.exists():
        print(f"bench: generating {lines:,} lines -> {data}", flush=True)
        started = time.time()
        tmp = data.with_suffix(".tmp")
        # In a child process: the generator's memory must not count as the driver's.
        child = multiprocessing.get_context("fork").Process(
            target=write_access_log, args=(tmp, lines), kwargs={"seed": seed, "days": 7, "distinct_ip_share": share}
        )
        child.start()
        child.join()
        if child.exitcode != 0:
            raise RuntimeError(f"generating {data} failed (exit code {child.exitcode})")
        tmp.rename(data)
        print(f"bench: generated in {time.time() - started:.1f}s ({data.stat().st_size / 1e6:.0f} MB)", flush=True)
    return data


def _distinct_ip_share(spark, data: Path) -> float:
    lines = spark.read.text(str(data)).select(F.substring_index("value", " ", 1).alias("ip"))
    row = lines.agg(F.count_distinct("ip").alias("ips"), F.count(F.lit(1)).alias("n")).first()
    return row["ips"] / row["n"]


def _case(spark, cfg, work: Path, data: Path, n: int, name: str) -> tuple[list[str], dict]:
    """The case's report lines, and its figures for the summary."""
    from lakehouse.jobs.batch import run_batch

    warehouse = work / "warehouse"
    shutil.rmtree(warehouse, ignore_errors=True)
    cfg = cfg.with_warehouse(str(warehouse))
    ceiling_out = work / "ceiling.parquet"
    shutil.rmtree(ceiling_out, ignore_errors=True)
    started = time.time()
    spark.read.text(str(data)).write.mode("overwrite").parquet(str(ceiling_out))
    ceiling_s = time.time() - started
    shutil.rmtree(ceiling_out, ignore_errors=True)

    _reset_peak_rss(spark)
    started = time.time()
    stages = run_batch(spark, cfg, str(data), None, export=True)
    batch_s = time.time() - started
    silver_s = stages["2/4 silver access_logs"].seconds or float("nan")
    bronze_s = stages["1/4 bronze"].seconds or float("nan")
    gold_s = stages["3/4 gold"].seconds or float("nan")
    # Peak memory of the pipeline itself, before the floor measurements below run.
    jvm_mb = _jvm_peak_rss_mb(spark)
    floor_parse_s, floor_delta_s = _silver_floor(spark, cfg, work)
    goaccess_s = _goaccess_seconds(data)
    share = _distinct_ip_share(spark, data)
    lines = [
        "",
        f"case {name}: {n:,} lines, distinct IPs {share:.1%} of lines",
        f"  ceiling   text -> Parquet        {ceiling_s:8.1f} s  {n / ceiling_s:12,.0f} lines/s",
        f"  bronze    files -> bronze Delta  {bronze_s:8.1f} s  {n / bronze_s:12,.0f} lines/s",
        f"  floor     parse -> noop sink     {floor_parse_s:8.1f} s  {n / floor_parse_s:12,.0f} lines/s  ratio to ceiling {ceiling_s / floor_parse_s:.2f}",
        f"  floor     parse -> Delta by date {floor_delta_s:8.1f} s  {n / floor_delta_s:12,.0f} lines/s  ratio to ceiling {ceiling_s / floor_delta_s:.2f}",
        f"  silver    bronze -> silver       {silver_s:8.1f} s  {n / silver_s:12,.0f} lines/s  ratio to ceiling {ceiling_s / silver_s:.2f}"
        f"  silver/floor time {silver_s / floor_delta_s:.2f}",
        f"  gold      silver -> gold         {gold_s:8.1f} s  ({stages['3/4 gold'].counts.get('access_logs_dates_refreshed', 0)} dates)",
        f"  batch     files -> ... -> export {batch_s:8.1f} s  {n / batch_s:12,.0f} lines/s  ratio to ceiling {ceiling_s / batch_s:.2f}",
    ]
    if goaccess_s is not None:
        lines.append(f"  goaccess  same file, JSON report  {goaccess_s:8.1f} s  {n / goaccess_s:12,.0f} lines/s  batch/goaccess time {batch_s / goaccess_s:.2f}")
    else:
        lines.append("  goaccess  not installed (apt-get install goaccess) - comparison skipped")
    lines.append(f"  peak RSS  driver JVM {jvm_mb or float('nan'):,.0f} MB during the batch")
    shutil.rmtree(warehouse, ignore_errors=True)
    return lines, {"silver": silver_s, "floor": floor_delta_s, "gold": gold_s, "batch": batch_s, "goaccess": goaccess_s}


def _summary(figures: dict) -> list[str]:
    """One line per size and case: the issue's table (silver/floor, high/low, gold, batch/GoAccess)."""
    lines = ["", "summary              silver/floor  high/low silver  gold s  batch s  batch/goaccess"]
    for (n, name), f in figures.items():
        low = figures.get((n, "low"))
        high_low = f"{f['silver'] / low['silver']:.2f}" if name != "low" and low else "-"
        versus = f"{f['batch'] / f['goaccess']:.2f}" if f["goaccess"] else "-"
        lines.append(
            f"  {n / 1e6:g}M {name:<5}        {f['silver'] / f['floor']:10.2f}  {high_low:>15}  {f['gold']:6.1f}  {f['batch']:7.1f}  {versus:>14}"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lakehouse bench", description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, action="append", help="lines per case (repeatable; default: 1M and 2M)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--case", action="append", choices=sorted(CASES), help="cardinality case (repeatable; default: all)")
    parser.add_argument("--dir", default=None, help="work folder (default <project>/bench_data)")
    args = parser.parse_args(argv)

    from lakehouse.jobs.batch import run_batch
    from lakehouse.jobs.runtime import setup_logging
    from lakehouse.session import get_spark

    setup_logging()
    config = load_config()
    work = Path(args.dir) if args.dir else config.root / "bench_data"
    work.mkdir(parents=True, exist_ok=True)
    cases = args.case or list(CASES)
    sizes = args.lines or [1_000_000, 2_000_000]
    inputs = {(n, name): _data(work, n, args.seed, CASES[name]) for n in sizes for name in cases}
    tiny = _data(work, 2000, 1, None)  # before the session: a forked child must not hold its gateway
    spark = get_spark(config.with_warehouse(str(work / "warehouse")), app_name="lakehouse-bench")

    # Warm-up on a tiny file so JIT and Python workers are not billed to either side.
    run_batch(spark, config.with_warehouse(str(work / "warmup_wh")), str(tiny), None, export=False)
    shutil.rmtree(work / "warmup_wh", ignore_errors=True)

    report = [f"lakehouse bench: {os.cpu_count()} cores, {spark.sparkContext.master}"]
    figures: dict = {}
    for (n, name), data in inputs.items():
        lines, figures[(n, name)] = _case(spark, config, work, data, n, name)
        report += lines
        print("\n".join(report), flush=True)
    report += _summary(figures)
    py_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report.append(f"\npeak RSS of the Python driver over all cases: {py_mb:,.0f} MB")
    print("\n".join(["", "=" * 60, *report]), flush=True)
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
