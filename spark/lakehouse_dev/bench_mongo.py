"""Benchmark: the MongoDB backfill (`lakehouse ingest-mongo`) in documents/s, next to the
source's own ceiling.

    python -m lakehouse_dev.bench_mongo [--docs 200000] [--batch-size 100000] [--uri URI]

Without `--uri`, starts a throwaway FerretDB (services.ferretdb, built on first use) in a
temp folder and fills a collection with `--docs` small seed-004 documents; with `--uri`,
reads the given server's `bench.product_views_records` (filled the same way if empty).
Prints, in one Spark session on this machine:
- the backfill into a fresh warehouse: documents/s end to end (planning, reading on the
  executors, bronze commits, progress records),
- the ceiling: one pymongo cursor reading the whole collection, documents/s, so the ratio
  says how much the backfill adds to what the server can deliver.
FerretDB's SQLite backend pushes no `_id` range or sort down to SQLite: each range read
and each boundary query scans the collection there, where MongoDB walks its `_id` index.
Figures are measured, not asserted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

DATABASE = "bench"
COLLECTION = "product_views_records"


def _fill(uri: str, docs: int) -> int:
    """Insert `docs` small seed-shaped documents unless the collection holds some; its count."""
    import pymongo

    with pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000) as client:
        views = client[DATABASE][COLLECTION]
        have = views.estimated_document_count()
        if have:
            return have
        start = datetime(2025, 10, 31, tzinfo=UTC)
        for first in range(0, docs, 10_000):
            views.insert_many(
                [
                    {
                        "product_id": str(i % 5000),
                        "device_id": f"device-{i % 20_000}",
                        "store_id": ("US", "VN", "DE", "FR")[i % 4],
                        "referrer_url": f"https://google.com/search?q={i % 100}",
                        "local_time": (start + timedelta(seconds=i)).strftime("%Y-%m-%d %H:%M:%S"),
                        "remote_ip": f"10.{i % 200}.{i % 250}.{i % 251}",
                        "timestamp": start + timedelta(seconds=i),
                    }
                    for i in range(first, min(first + 10_000, docs))
                ],
                ordered=False,
            )
        return docs


def _cursor_docs_per_s(uri: str) -> tuple[int, float]:
    """(documents, seconds) of one pymongo cursor over the whole collection."""
    import pymongo

    with pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000) as client:
        started = time.monotonic()
        n = sum(1 for _ in client[DATABASE][COLLECTION].find().batch_size(2000))
        return n, time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lakehouse_dev.bench_mongo", description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=200_000)
    parser.add_argument("--batch-size", type=int, default=100_000, help="documents per committed chunk")
    parser.add_argument("--uri", help="a MongoDB server to use instead of a throwaway FerretDB")
    parser.add_argument("--dir", help="work folder (default: a temp folder, removed at the end)")
    args = parser.parse_args(argv)

    from lakehouse.config import load_config
    from lakehouse.io.mongo import MongoSource
    from lakehouse.jobs.ingest_mongo import ingest
    from lakehouse.jobs.runtime import JobRun, setup_logging
    from lakehouse.session import get_spark
    from lakehouse_dev.services import ferretdb
    from lakehouse_dev.services.process import free_ports

    setup_logging()
    work = Path(args.dir or tempfile.mkdtemp(prefix="bench-mongo-"))
    server_dir = work / "ferretdb"
    try:
        uri = args.uri
        if uri is None:
            uri = ferretdb.start(server_dir, port=free_ports()[0]).uri
        started = time.monotonic()
        docs = _fill(uri, args.docs)
        print(f"collection: {docs:,} documents ({time.monotonic() - started:.0f}s to insert or count)", flush=True)

        config = load_config()
        spark = get_spark(config.with_warehouse(str(work / "warehouse")), app_name="lakehouse-bench-mongo")
        source = MongoSource(uri, DATABASE, COLLECTION)
        run = JobRun("ingest-mongo")
        started = time.monotonic()
        written = ingest(spark, config.with_warehouse(str(work / "warehouse")), source, args.batch_size, run)
        seconds = time.monotonic() - started
        n, scan = _cursor_docs_per_s(uri)
        rate, ceiling = written / seconds, n / scan
        print(
            f"lakehouse bench-mongo: {os.cpu_count()} cores, {spark.sparkContext.master}, {source.server}\n"
            f"  backfill: {written:,} docs in {seconds:.1f}s = {rate:,.0f} docs/s (chunks of {args.batch_size:,})\n"
            f"  ceiling:  one pymongo cursor, {n:,} docs in {scan:.1f}s = {ceiling:,.0f} docs/s\n"
            f"  ratio:    {rate / ceiling:.2f}",
            flush=True,
        )
    finally:
        if args.uri is None:
            ferretdb.stop(server_dir, kill=True)
        if args.dir is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
