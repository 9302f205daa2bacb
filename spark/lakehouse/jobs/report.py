"""A short readable report from gold: top products, top endpoints, error rate by day.

    lakehouse report [--warehouse DIR] [--top 5]
"""

from __future__ import annotations

import sys

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse.config import Config
from lakehouse.io import delta
from lakehouse.jobs.common import base_parser, config_from_args, get_session, setup_logging


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
    parts.append(
        _show(
            "Top products (all days)",
            products
            and products.groupBy("product_id")
            .agg(F.sum("view_count").alias("views"), F.sum("unique_visitors").alias("visitor_days"))
            .orderBy(F.desc("views"), "product_id"),
            top,
        )
    )
    parts.append(
        _show(
            "Top endpoints (all days)",
            endpoints
            and endpoints.groupBy("endpoint")
            .agg(F.sum("requests").alias("requests"), F.sum("status_5xx").alias("errors_5xx"), F.sum("bytes").alias("bytes"))
            .orderBy(F.desc("requests"), "endpoint"),
            top,
        )
    )
    parts.append(
        _show(
            "Error rate by day (4xx+5xx / requests)",
            endpoints
            and endpoints.groupBy("report_date")
            .agg(
                F.sum("requests").alias("requests"),
                F.round((F.sum("status_4xx") + F.sum("status_5xx")) / F.sum("requests"), 4).alias("error_rate"),
                F.max("p95_ms").alias("max_p95_ms"),
            )
            .orderBy("report_date"),
            366,
        )
    )
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = base_parser("lakehouse report", "Print top products, top endpoints and error rate by day.")
    parser.add_argument("--top", type=int, default=5)
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    config = config_from_args(args)
    spark = get_session(config, "report")
    print(build_report(spark, config, args.top), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
