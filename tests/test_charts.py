"""The report charts: every function copes with no rows, one day and a year of days."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pandas as pd
import pytest
from matplotlib.figure import Figure

from lakehouse import charts


def days_frame(n: int) -> pd.DataFrame:
    days = [date(2024, 1, 1) + timedelta(days=i) for i in range(n)]
    requests = [1000 + 37 * (i % 11) for i in range(n)]
    return pd.DataFrame({
        "report_date": days,
        "requests": requests,
        "unique_visitors": [r // 4 for r in requests],
        "status_2xx": [r - 30 for r in requests],
        "status_3xx": [20] * n,
        "status_4xx": [7] * n,
        "status_5xx": [3] * n,
    })


def texts(fig: Figure) -> list[str]:
    return [t.get_text() for t in fig.findobj(lambda o: hasattr(o, "get_text")) if t.get_text()]


EMPTY_CALLS = [
    lambda df: charts.traffic_chart(df),
    lambda df: charts.status_chart(df),
    lambda df: charts.bar_chart(df, "endpoint", "requests", "Top endpoints"),
    lambda df: charts.share_chart(df, "kind", "requests", "Bots vs humans"),
    lambda df: charts.quarantine_chart(df),
]


@pytest.mark.parametrize("make", EMPTY_CALLS, ids=["traffic", "status", "bar", "share", "quarantine"])
def test_an_empty_frame_gives_a_figure_saying_no_data(make):
    fig = make(pd.DataFrame())
    assert isinstance(fig, Figure)
    assert "no data" in texts(fig)


def test_share_of_nothing_is_no_data():
    fig = charts.share_chart(pd.DataFrame({"kind": ["bots", "humans"], "requests": [0, 0]}), "kind", "requests", "x")
    assert "no data" in texts(fig)


@pytest.mark.parametrize("n", [1, 7, 365])
def test_day_charts_keep_a_readable_date_axis(n):
    for make in (charts.traffic_chart, charts.status_chart):
        fig = make(days_frame(n))
        fig.canvas.draw()
        ax = fig.axes[0]
        labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
        assert 1 <= len(labels) <= 13, labels
        # No two labels on top of each other.
        boxes = [t.get_window_extent() for t in ax.get_xticklabels() if t.get_text()]
        assert all(not a.overlaps(b) for a, b in zip(boxes, boxes[1:], strict=False))


def test_a_year_of_status_is_drawn_as_areas_not_1460_bars():
    svg = charts.figure_svg(charts.status_chart(days_frame(365)))
    assert svg.count("<path") < 200
    assert len(svg) < 150_000


def test_bars_put_the_biggest_on_top_whatever_the_input_order():
    df = pd.DataFrame({"endpoint": ["/b", "/a", "/c"], "requests": [5, 9, 1]})
    fig = charts.bar_chart(df, "endpoint", "requests", "Top endpoints")
    fig.canvas.draw()
    ax = fig.axes[0]
    by_height = sorted(ax.get_yticklabels(), key=lambda t: -t.get_window_extent().y0)
    assert [t.get_text() for t in by_height] == ["/a", "/b", "/c"]


def test_long_labels_are_shortened_in_the_chart():
    df = pd.DataFrame({"referrer_host": ["x" * 200], "requests": [3]})
    fig = charts.bar_chart(df, "referrer_host", "requests", "Top referrers")
    label = fig.axes[0].get_yticklabels()[0].get_text()
    assert len(label) == charts.MAX_LABEL_CHARS and label.endswith("…")


def test_shares_show_percentages():
    df = pd.DataFrame({"kind": ["humans", "bots"], "requests": [3, 1]})
    assert {"75.0%", "25.0%"} <= set(texts(charts.share_chart(df, "kind", "requests", "Bots vs humans")))


def test_quarantine_labels_name_dataset_and_reason():
    df = pd.DataFrame({"dataset": ["access_logs"], "reason": ["truncated line"], "rows": [4]})
    assert "access_logs: truncated line" in texts(charts.quarantine_chart(df))


def test_svg_is_inline_ready_with_prefixed_ids():
    svg = charts.figure_svg(charts.traffic_chart(days_frame(3)), prefix="traffic-")
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "<?xml" not in svg and "<!DOCTYPE" not in svg
    ids = re.findall(r'\bid="([^"]+)"', svg)
    assert ids and all(i.startswith("traffic-") for i in ids)
    refs = re.findall(r'url\(#([^)]+)\)|href="#([^"]+)"', svg)
    assert all((a or b) in ids for a, b in refs)


def test_same_figure_same_svg():
    assert charts.figure_svg(charts.traffic_chart(days_frame(5))) == charts.figure_svg(charts.traffic_chart(days_frame(5)))
