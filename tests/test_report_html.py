"""The HTML report builder: pure (tables + SVG -> HTML), escaped, self-contained and small."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest

from lakehouse import report_html

GENERATED = datetime(2024, 4, 1, 12, 0, tzinfo=UTC)
SECTION_KEYS = ["traffic", "status", "endpoints", "referrers", "countries", "browsers", "os", "devices",
                "bots", "products", "quarantine"]


def year_of_days(n: int = 365) -> pd.DataFrame:
    days = [date(2024, 1, 1) + timedelta(days=i) for i in range(n)]
    requests = [150_000 + 997 * (i % 53) for i in range(n)]
    return pd.DataFrame({
        "report_date": days,
        "requests": requests,
        "unique_visitors": [r // 7 for r in requests],
        "unique_ips": [r // 9 for r in requests],
        "bot_requests": [r // 5 for r in requests],
        "human_requests": [r - r // 5 for r in requests],
        "status_2xx": [r - 9000 for r in requests],
        "status_3xx": [5000] * n,
        "status_4xx": [3000] * n,
        "status_5xx": [1000] * n,
        "error_rate": [round(4000 / r, 4) for r in requests],
        "bytes": [r * 51_234 for r in requests],
    })


def top(label: str, value: str, n: int = 10, **extra) -> pd.DataFrame:
    return pd.DataFrame({label: [f"/a/rather/long/path/{i}" for i in range(n)],
                         value: [10_000 - i * 700 for i in range(n)], **extra})


def full_frames() -> dict[str, pd.DataFrame]:
    return {
        "traffic_by_day": year_of_days(),
        "top_endpoints": top("endpoint", "requests", status_4xx=3, status_5xx=1, error_rate=0.0004,
                             bytes=10**9, p50_ms=12.5, p95_ms=150.0, p99_ms=[None] * 10),
        "top_referrers": top("referrer_host", "requests", visitor_days=5),
        "top_countries": top("country", "requests", visitor_days=5),
        "browsers": top("browser", "requests", share=0.1),
        "os": top("os", "requests", share=0.1),
        "devices": top("device", "requests", share=0.1),
        "bots_vs_humans": pd.DataFrame({"kind": ["humans", "bots"], "requests": [80, 20], "share": [0.8, 0.2]}),
        "top_products": top("product_id", "views", visitor_days=3),
        "quarantine": pd.DataFrame({"dataset": ["access_logs"], "reason": ["truncated line"], "rows": [7]}),
    }


def page(frames: dict, **header) -> str:
    by_day = frames.get("traffic_by_day")
    head = report_html.Header("/data/warehouse", header.get("start"), header.get("end"), GENERATED,
                              totals=report_html.report_totals(by_day))
    return report_html.render_html(head, report_html.report_sections(frames))


@pytest.fixture(scope="module")
def year_page() -> str:
    return page(full_frames())


def test_a_year_of_days_stays_well_under_2_mb(year_page):
    size = len(year_page.encode())
    print(f"365-day page: {size / 1024:.0f} KiB")
    assert size < 1_000_000


def test_the_page_loads_nothing_and_runs_nothing(year_page):
    assert "<script" not in year_page.lower()
    assert not re.search(r'\b(src|href)="(https?:)?//', year_page)
    assert "default-src 'none'" in year_page


def test_every_section_has_one_chart_and_svg_ids_are_unique(year_page):
    assert re.findall(r'<div class="chart" data-chart="([^"]+)">', year_page) == SECTION_KEYS
    ids = re.findall(r'\bid="([^"]+)"', year_page)
    assert len(ids) == len(set(ids))


def test_without_any_table_every_section_says_no_data():
    html = page({})
    assert re.findall(r'<div class="chart" data-chart="([^"]+)">', html) == SECTION_KEYS
    assert html.count('class="empty" data-table=') == len(SECTION_KEYS)


def test_cells_carry_metric_raw_value_and_readable_text():
    frames = {"top_endpoints": pd.DataFrame({
        "endpoint": ["/cart"], "requests": [1234567], "status_4xx": [2], "status_5xx": [1],
        "error_rate": [0.1235], "bytes": [10], "p50_ms": [12.25], "p95_ms": [None], "p99_ms": [float("nan")],
    })}
    html = page(frames)
    row = re.search(r'<tr data-key="/cart">(.*?)</tr>', html).group(1)
    assert '<td data-metric="requests" data-value="1234567">1,234,567</td>' in row
    assert '<td data-metric="error_rate" data-value="0.1235">12.35%</td>' in row
    assert '<td data-metric="p50_ms" data-value="12.25">12.2</td>' in row
    assert '<td class=txt data-metric="endpoint" data-value="/cart">/cart</td>' in row
    assert '<td data-metric="p95_ms" data-value="">–</td>' in row
    assert '<td data-metric="p99_ms" data-value="">–</td>' in row


def test_every_value_is_escaped():
    evil = '<script>alert("x")</script>'
    html = page({"top_referrers": pd.DataFrame({"referrer_host": [evil], "requests": [1], "visitor_days": [1]})})
    assert evil not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html


def test_header_says_range_and_totals():
    html = page({"traffic_by_day": year_of_days(2)}, start=date(2024, 1, 1), end=date(2024, 1, 2))
    assert '<dd data-fact="range">2024-01-01 to 2024-01-02</dd>' in html
    assert '<dd data-fact="generated">2024-04-01 12:00:00 UTC</dd>' in html
    frame = year_of_days(2)
    assert f'data-metric="requests" data-value="{frame["requests"].sum()}"' in html


def test_long_day_tables_are_folded_short_ones_open(year_page):
    assert '<details><summary>365 rows</summary>' in year_page
    assert "<details>" not in page({"traffic_by_day": year_of_days(7)})
