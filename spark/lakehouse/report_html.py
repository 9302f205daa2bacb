"""The HTML report page: small pandas tables + their charts -> one self-contained HTML string.

Pure (no Spark, no files): `lakehouse report --html` hands it the aggregates of
`transforms/report.py`, already collected. The page has no script and loads nothing: the
charts are inline SVG (`charts.py`), the styles inline, and its Content-Security-Policy
forbids anything else. Every chart sits in a `class="chart"` element next to a table of
its exact numbers; each number cell carries `data-metric` (its column) and `data-value`
(the raw value), each row `data-key` (its label), for tests and scrapers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from html import escape

import pandas as pd
from matplotlib.figure import Figure

from lakehouse import charts

# How a column's values are shown; a column not listed is text (or a number with separators).
PERCENT = {"error_rate", "share"}
MILLIS = {"p50_ms", "p95_ms", "p99_ms"}
HEADERS = {
    "report_date": "day",
    "requests": "requests",
    "unique_visitors": "unique visitors",
    "unique_ips": "unique IPs",
    "bot_requests": "bot requests",
    "human_requests": "human requests",
    "status_2xx": "2xx",
    "status_3xx": "3xx",
    "status_4xx": "4xx",
    "status_5xx": "5xx",
    "error_rate": "error rate",
    "bytes": "bytes",
    "p50_ms": "p50 ms",
    "p95_ms": "p95 ms",
    "p99_ms": "p99 ms",
    "referrer_host": "referrer",
    "visitor_days": "visitor-days",
    "product_id": "product",
    "kind": "kind",
}
# Day tables longer than this start folded: a year is 365 rows.
OPEN_DAY_ROWS = 31


@dataclass(frozen=True)
class Section:
    """One block of the page: a title, a chart (inline SVG) and the table of its numbers."""

    key: str
    title: str
    svg: str
    table: pd.DataFrame | None
    note: str = ""
    fold: bool = False


@dataclass(frozen=True)
class Header:
    """What the page says about itself: which warehouse, which dates, when."""

    warehouse: str
    start: date | None
    end: date | None
    generated: datetime
    first_day: date | None = None
    last_day: date | None = None
    totals: dict[str, object] = field(default_factory=dict)


def section(key: str, title: str, table: pd.DataFrame | None, chart: Callable[[pd.DataFrame], Figure],
            note: str = "", fold: bool = False) -> Section:
    """A Section whose chart is `chart(table)` (an empty table when there is none)."""
    frame = table if table is not None else pd.DataFrame()
    return Section(key, title, charts.figure_svg(chart(frame), prefix=f"{key}-"), table, note, fold)


def _missing(value: object) -> bool:
    return value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value))


def raw_value(value: object) -> str:
    """The exact value for `data-value`: ints as ints, dates ISO, floats as Python prints them."""
    if _missing(value):
        return ""
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    if isinstance(value, datetime | pd.Timestamp):
        return value.date().isoformat() if value == value.normalize() else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return str(value)


def shown_value(column: str, value: object) -> str:
    """The value as a reader sees it: separators for counts, % for rates, ms with one decimal."""
    if _missing(value):
        return "–"
    if hasattr(value, "item"):
        value = value.item()
    if column in PERCENT and isinstance(value, int | float):
        return f"{value * 100:.2f}%"
    if column in MILLIS and isinstance(value, int | float):
        return f"{value:,.1f}"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return f"{int(value):,}"
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, datetime | pd.Timestamp | date):
        return raw_value(value)
    return str(value)


def _is_number(series: pd.Series) -> bool:
    """Numbers (right-aligned), also a column of nulls only (a percentile without `%D`)."""
    if pd.api.types.is_bool_dtype(series):
        return False
    return pd.api.types.is_numeric_dtype(series) or all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in series.dropna()
    )


def table_html(key: str, table: pd.DataFrame) -> str:
    """`table` as an HTML table: first column the row's key, numbers right-aligned."""
    columns = list(table.columns)
    numeric = {c for c in columns if _is_number(table[c])}
    # Cells are right-aligned numbers unless marked `txt`: a year of days is ~5,000 cells.
    head = "".join(
        f'<th{"" if c in numeric else " class=txt"} scope="col">{escape(HEADERS.get(c, c.replace("_", " ")))}</th>'
        for c in columns
    )
    rows = []
    for record in table.itertuples(index=False, name=None):
        cells = "".join(
            f'<td{"" if c in numeric else " class=txt"} data-metric="{escape(c)}" '
            f'data-value="{escape(raw_value(v))}">{escape(shown_value(c, v))}</td>'
            for c, v in zip(columns, record, strict=True)
        )
        rows.append(f'<tr data-key="{escape(raw_value(record[0]))}">{cells}</tr>')
    body = "\n".join(rows) if rows else f'<tr><td colspan="{max(len(columns), 1)}" class="empty">no data</td></tr>'
    return f'<table class="numbers" data-table="{escape(key)}">\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>'


def section_html(part: Section) -> str:
    table = (
        table_html(part.key, part.table)
        if part.table is not None and not part.table.empty
        else f'<p class="empty" data-table="{escape(part.key)}">no data</p>'
    )
    if part.fold and part.table is not None and len(part.table) > OPEN_DAY_ROWS:
        table = f"<details><summary>{len(part.table)} rows</summary>\n{table}\n</details>"
    note = f'<p class="note">{escape(part.note)}</p>' if part.note else ""
    return (
        f'<section id="{escape(part.key)}">\n<h2>{escape(part.title)}</h2>\n{note}\n'
        f'<div class="pair">\n<div class="chart" data-chart="{escape(part.key)}">\n{part.svg}\n</div>\n'
        f'<div class="table">\n{table}\n</div>\n</div>\n</section>'
    )


def _range_text(start: date | None, end: date | None) -> str:
    if start is None and end is None:
        return "all dates"
    return f"{start.isoformat() if start else 'first day'} to {end.isoformat() if end else 'last day'}"


def header_html(header: Header) -> str:
    days = (
        f"{header.first_day.isoformat()} to {header.last_day.isoformat()}"
        if header.first_day and header.last_day
        else "no traffic in range"
    )
    facts = [
        ("warehouse", "warehouse", header.warehouse),
        ("range", "range", _range_text(header.start, header.end)),
        ("days", "days with traffic", days),
        ("generated", "generated", header.generated.strftime("%Y-%m-%d %H:%M:%S UTC")),
    ]
    items = "".join(f'<dt>{escape(label)}</dt><dd data-fact="{name}">{escape(text)}</dd>' for name, label, text in facts)
    totals = "".join(
        f'<div class="kpi"><span class="kpi-value" data-metric="{escape(name)}" data-value="{escape(raw_value(v))}">'
        f"{escape(shown_value(name, v))}</span><span class=\"kpi-label\">{escape(HEADERS.get(name, name))}</span></div>"
        for name, v in header.totals.items()
    )
    return f'<header>\n<h1>Web traffic report</h1>\n<dl class="facts">{items}</dl>\n<div class="kpis">{totals}</div>\n</header>'


STYLE = """
:root { color-scheme: light; }
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; margin: 0 auto;
       max-width: 1400px; padding: 0 24px 48px; color: #1f2328; background: #fff; }
h1 { font-size: 22px; margin: 24px 0 8px; }
h2 { font-size: 17px; margin: 0 0 8px; }
nav { margin: 8px 0 16px; font-size: 13px; }
nav a { margin-right: 12px; color: #3465a4; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 0 0 12px; color: #555; }
dl.facts dt { font-weight: 600; } dl.facts dd { margin: 0; }
.kpis { display: flex; flex-wrap: wrap; gap: 12px; margin-bottom: 8px; }
.kpi { border: 1px solid #d8dee4; border-radius: 6px; padding: 8px 14px; min-width: 120px; }
.kpi-value { display: block; font-size: 20px; font-weight: 600; }
.kpi-label { color: #57606a; font-size: 12px; }
section { border-top: 1px solid #d8dee4; padding: 20px 0; }
.pair { display: flex; flex-wrap: wrap; gap: 24px; align-items: flex-start; }
.chart { flex: 1 1 560px; max-width: 780px; }
.chart svg { width: 100%; height: auto; }
.table { flex: 1 1 380px; overflow-x: auto; }
table.numbers { border-collapse: collapse; font-size: 13px; }
table.numbers th, table.numbers td { padding: 3px 8px; border-bottom: 1px solid #eaeef2; }
table.numbers th { text-align: right; background: #f6f8fa; position: sticky; top: 0; }
table.numbers td { text-align: right; font-variant-numeric: tabular-nums; }
table.numbers .txt { text-align: left; }
table.numbers td { white-space: nowrap; }
table.numbers td.txt { white-space: normal; min-width: 12ch; max-width: 420px; overflow-wrap: anywhere; }
.note { color: #57606a; font-size: 12px; margin: 0 0 8px; }
.empty { color: #777; }
summary { cursor: pointer; color: #3465a4; }
"""


def report_sections(frames: dict[str, pd.DataFrame | None]) -> list[Section]:
    """The page's sections from the report aggregates (keys as `lakehouse report` collects
    them; a missing or None frame is a section saying "no data")."""

    def frame(name: str, columns: list[str] | None = None) -> pd.DataFrame | None:
        df = frames.get(name)
        if df is None:
            return None
        return df[[c for c in columns if c in df.columns]] if columns else df

    by_day = frame("traffic_by_day")
    traffic_columns = ["report_date", "requests", "unique_visitors", "unique_ips", "bot_requests",
                       "human_requests", "error_rate", "bytes"]
    status_columns = ["report_date", *charts.STATUS_CLASSES]
    quarantine = frame("quarantine")
    return [
        Section("traffic", "Requests and unique visitors per day",
                charts.figure_svg(charts.traffic_chart(_or_empty(by_day)), "traffic-"),
                frame("traffic_by_day", traffic_columns),
                "A visitor is a distinct (IP, user agent) pair of the day.", fold=True),
        Section("status", "Status classes per day",
                charts.figure_svg(charts.status_chart(_or_empty(by_day)), "status-"),
                frame("traffic_by_day", status_columns), fold=True),
        _bars("endpoints", "Top endpoints", frame("top_endpoints"), "endpoint", "requests",
              "Latency: the worst daily percentile in the range (exact for a single day)."),
        _bars("referrers", "Top referrers", frame("top_referrers"), "referrer_host", "requests",
              "Visitor-days: distinct IPs per day, summed over the days."),
        _bars("countries", "Countries", frame("top_countries"), "country", "requests",
              "GeoIP country of the client IP; visitor-days as above."),
        _bars("browsers", "Browsers", frame("browsers"), "browser", "requests"),
        _bars("os", "Operating systems", frame("os"), "os", "requests"),
        _bars("devices", "Devices", frame("devices"), "device", "requests"),
        section("bots", "Bots vs humans", frame("bots_vs_humans"),
                lambda df: charts.share_chart(df, "kind", "requests", "Bots vs humans (requests)")),
        _bars("products", "Top products", frame("top_products"), "product_id", "views",
              "Visitor-days: distinct devices per day, summed over the days."),
        section("quarantine", "Quarantined records by reason", quarantine, charts.quarantine_chart,
                "Rows rejected by silver, by the day they were quarantined."),
    ]


def _or_empty(df: pd.DataFrame | None) -> pd.DataFrame:
    return df if df is not None else pd.DataFrame()


def _bars(key: str, title: str, table: pd.DataFrame | None, label: str, value: str, note: str = "") -> Section:
    return section(key, title, table, lambda df: charts.bar_chart(df, label, value, f"{title} ({value})"), note)


def report_totals(by_day: pd.DataFrame | None) -> dict[str, object]:
    """The headline numbers of the range: requests, visitor-days, error rate, bot share, bytes."""
    if by_day is None or by_day.empty:
        return {}
    requests = int(by_day["requests"].sum())
    errors = int(by_day["status_4xx"].sum() + by_day["status_5xx"].sum())
    return {
        "requests": requests,
        "visitor_days": int(by_day["unique_visitors"].sum()),
        "error_rate": round(errors / requests, 4) if requests else None,
        "bot_requests": int(by_day["bot_requests"].sum()),
        "bytes": int(by_day["bytes"].sum()),
    }


def render_html(header: Header, sections: list[Section]) -> str:
    """The whole page: header with the range and totals, a link bar, then each section."""
    nav = " ".join(f'<a href="#{escape(s.key)}">{escape(s.title)}</a>' for s in sections)
    body = "\n".join(section_html(s) for s in sections)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>Web traffic report – {escape(_range_text(header.start, header.end))}</title>
<style>{STYLE}</style>
</head>
<body>
{header_html(header)}
<nav>{nav}</nav>
{body}
</body>
</html>
"""
