"""A short readable report from gold: top products, top endpoints, error rate by day.

    lakehouse report [--warehouse DIR] [--top 5]
"""

from __future__ import annotations

import argparse
import sys

from pyspark.sql import DataFrame, SparkSession

from lakehouse.config import Config
from lakehouse.io import delta
from lakehouse.jobs.runtime import JobRun, run_job
from lakehouse.transforms import report as summaries


def _table(rows: list, headers: list[str]) -> str:
    cells = [[("" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))) for v in r] for r in rows]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(lines)


def _show(title: str, df: DataFrame | None, top: int) -> str:
    if df is None:
        return f"\n{title}\n(no data yet)"
    rows = df.limit(top).collect()
    return f"\n{title}\n" + _table([list(r) for r in rows], df.columns)


def build_report(spark: SparkSession, config: Config, top: int = 5) -> str:
    """The report text (top products, top endpoints, error rate by day)."""

    def gold(name: str) -> DataFrame | None:
        path = config.table_path("gold", name)
        return delta.read_table(spark, path) if delta.table_exists(spark, path) else None

    products = gold("product_views_daily")
    endpoints = gold("endpoint_daily")
    parts = [f"Lakehouse report - warehouse {config.warehouse}"]
    parts.append(_show("Top products (all days)", products and summaries.top_products(products), top))
    parts.append(_show("Top endpoints (all days)", endpoints and summaries.top_endpoints(endpoints), top))
    parts.append(_show("Error rate by day (4xx+5xx / requests)", endpoints and summaries.error_rate_by_day(endpoints), 366))
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    def body(spark: SparkSession, config: Config, _run: JobRun, args: argparse.Namespace) -> None:
        print(build_report(spark, config, args.top), flush=True)

    return run_job(
        "report",
        "Print top products, top endpoints and error rate by day.",
        body,
        argv,
        lambda parser: parser.add_argument("--top", type=int, default=5),
        record=False,
    )


if __name__ == "__main__":
    sys.exit(main())
