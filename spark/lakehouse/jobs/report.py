"""A report from gold for people: printed as text, or written as one self-contained HTML page.

    lakehouse report [--warehouse DIR] [--top 5]                      # text: top products, endpoints, error rate by day
    lakehouse report --html report.html [--from 2024-03-01] [--to 2024-03-31] [--top 10]

The HTML page (traffic and visitors per day, status classes, top endpoints with latency,
referrers, countries, browsers/OS/devices, bots vs humans, top products, quarantine by
reason) opens offline: charts are inline SVG, nothing is loaded from anywhere. It is built
from gold aggregates only (never silver rows), so a year of data stays a small page.
`--from/--to` select report dates (inclusive); the default is every date.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
from pyspark.sql import DataFrame, SparkSession

from lakehouse.config import Config
from lakehouse.feeds import NAMES
from lakehouse.io import delta, local
from lakehouse.jobs.runtime import JobRun, run_job
from lakehouse.transforms import report as summaries

TEXT_TOP = 5
HTML_TOP = 10


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


def _reader(spark: SparkSession, config: Config):
    def table(layer: str, name: str) -> DataFrame | None:
        path = config.table_path(layer, name)
        return delta.read_table(spark, path) if delta.table_exists(spark, path) else None

    return table


def build_report(spark: SparkSession, config: Config, top: int = TEXT_TOP,
                 start: date | None = None, end: date | None = None) -> str:
    """The report text (top products, top endpoints, error rate by day) for the dates given."""
    table = _reader(spark, config)

    def gold(name: str) -> DataFrame | None:
        df = table("gold", name)
        return None if df is None else summaries.in_range(df, start, end)

    products = gold("product_views_daily")
    endpoints = gold("endpoint_daily")
    span = "all days" if start is None and end is None else f"{start or '...'} to {end or '...'}"
    parts = [f"Lakehouse report - warehouse {config.warehouse}"]
    parts.append(_show(f"Top products ({span})", products and summaries.top_products(products), top))
    parts.append(_show(f"Top endpoints ({span})", endpoints and summaries.top_endpoints(endpoints), top))
    parts.append(_show("Error rate by day (4xx+5xx / requests)", endpoints and summaries.error_rate_by_day(endpoints), 366))
    return "\n".join(parts)


def report_frames(spark: SparkSession, config: Config, start: date | None, end: date | None,
                  top: int) -> dict[str, pd.DataFrame | None]:
    """The HTML report's aggregates, collected (each a row per day or the top `top` rows;
    None where the gold table does not exist yet)."""
    table = _reader(spark, config)

    def gold(name: str) -> DataFrame | None:
        df = table("gold", name)
        return None if df is None else summaries.in_range(df, start, end)

    def small(df: DataFrame | None, limit: int | None = top) -> pd.DataFrame | None:
        if df is None:
            return None
        # Bounded whatever the input: a top-N summary, or (limit=None) a row per report date.
        return (df.limit(limit) if limit else df).toPandas()

    traffic, endpoints, agents = gold("traffic_daily"), gold("endpoint_daily"), gold("agent_daily")
    referrers, countries = gold("request_referrer_daily"), gold("request_country_daily")
    products = gold("product_views_daily")
    quarantined = []
    for dataset in NAMES:
        rows = table("quarantine", dataset)
        if rows is not None:
            dated = summaries.with_quarantine_date(rows)
            quarantined.append(summaries.quarantine_by_reason(
                summaries.in_range(dated, start, end, column="quarantine_date"), dataset))
    quarantine = None
    if quarantined:
        union = quarantined[0]
        for more in quarantined[1:]:
            union = union.unionByName(more)
        quarantine = union.orderBy(union["rows"].desc(), "dataset", "reason")
    return {
        # One row per day: a year is 365 small rows.
        "traffic_by_day": small(traffic and summaries.traffic_by_day(traffic), limit=None),
        "top_endpoints": small(endpoints and summaries.top_endpoints(endpoints)),
        "top_referrers": small(referrers and summaries.top_referrers(referrers)),
        "top_countries": small(countries and summaries.top_countries(countries)),
        "browsers": small(agents and summaries.agent_share(agents, "browser")),
        "os": small(agents and summaries.agent_share(agents, "os")),
        "devices": small(agents and summaries.agent_share(agents, "device")),
        "bots_vs_humans": small(agents and summaries.bots_vs_humans(agents)),
        "top_products": small(products and summaries.top_products(products)),
        "quarantine": small(quarantine),
    }


def write_html_report(spark: SparkSession, config: Config, path: str, start: date | None = None,
                      end: date | None = None, top: int = HTML_TOP) -> tuple[Path, int]:
    """Collect the aggregates, build the page, write it to `path`: (absolute path, bytes)."""
    from lakehouse import report_html  # matplotlib: only the HTML report needs it

    frames = report_frames(spark, config, start, end, top)
    by_day = frames["traffic_by_day"]
    has_days = by_day is not None and not by_day.empty
    header = report_html.Header(
        warehouse=config.warehouse,
        start=start,
        end=end,
        generated=datetime.now(UTC),
        first_day=by_day["report_date"].min() if has_days else None,
        last_day=by_day["report_date"].max() if has_days else None,
        totals=report_html.report_totals(by_day),
    )
    page = report_html.render_html(header, report_html.report_sections(frames))
    target = Path(path).expanduser().resolve()
    return target, local.write_text_atomically(target, page)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--top", type=int, help=f"rows per top-N table (default {TEXT_TOP}, {HTML_TOP} with --html)")
    parser.add_argument("--html", metavar="PATH", help="write a self-contained HTML report to PATH instead of printing")
    parser.add_argument("--from", dest="start", type=_day, metavar="YYYY-MM-DD", help="first report date (default: the first)")
    parser.add_argument("--to", dest="end", type=_day, metavar="YYYY-MM-DD", help="last report date (default: the last)")


def _check(args: argparse.Namespace) -> str | None:
    if args.start and args.end and args.start > args.end:
        return f"--from {args.start} is after --to {args.end}"
    if args.top is not None and args.top < 1:
        return f"--top must be at least 1, not {args.top}"
    return None


def main(argv: list[str] | None = None) -> int:
    def body(spark: SparkSession, config: Config, _run: JobRun, args: argparse.Namespace) -> None:
        if args.html:
            path, size = write_html_report(spark, config, args.html, args.start, args.end, args.top or HTML_TOP)
            print(f"HTML report: {path} ({size / 1024:,.1f} KiB)", flush=True)
        else:
            print(build_report(spark, config, args.top or TEXT_TOP, args.start, args.end), flush=True)

    return run_job(
        "report",
        "Print top products, top endpoints and error rate by day, or write the HTML report (--html).",
        body,
        argv,
        _arguments,
        _check,
        record=False,
    )


if __name__ == "__main__":
    sys.exit(main())
