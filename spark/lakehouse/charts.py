"""Charts of the report aggregates: each takes a small pandas DataFrame, returns a matplotlib Figure.

The HTML report (`lakehouse report --html`) inlines them as SVG (`figure_svg`); notebooks
show the same figures directly. Figures are made with `matplotlib.figure.Figure`, not
pyplot, so nothing is kept in pyplot's global registry and no GUI backend is needed.
Every function copes with an empty frame (a figure saying "no data") and with a year
of days (dates are thinned by matplotlib's concise date axis, dense bars become areas).
"""

from __future__ import annotations

import functools
import io
import re

import matplotlib
import matplotlib.dates as mdates
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, PercentFormatter

STATUS_CLASSES = ("status_2xx", "status_3xx", "status_4xx", "status_5xx")
STATUS_COLORS = {"status_2xx": "#4c9a2a", "status_3xx": "#5b8def", "status_4xx": "#f0a202", "status_5xx": "#d1342f"}
TRAFFIC_COLORS = {"requests": "#3465a4", "unique_visitors": "#c4551b"}
BAR_COLOR = "#3465a4"
SHARE_COLORS = ("#3465a4", "#c4551b", "#4c9a2a", "#8f5bb5", "#f0a202", "#7a7a7a")
# More days than this are drawn as areas: a bar per day and class would make a year's
# status chart ~1,500 SVG elements.
MAX_DAILY_BARS = 62
MAX_LABEL_CHARS = 42
WIDTH_IN = 8.0

STYLE = {
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Liberation Sans", "Arial", "Helvetica"],
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    # Text stays text: a fraction of the size of glyph outlines, and searchable.
    "svg.fonttype": "none",
    # Same figure, same bytes: ids are hashes of this salt, not random.
    "svg.hashsalt": "lakehouse-report",
}


def _figure(height: float = 3.2) -> Figure:
    with matplotlib.rc_context(STYLE):
        return Figure(figsize=(WIDTH_IN, height), layout="constrained")


def _with_style(make):
    """Run a chart function with the report's rc settings (fonts, spines, SVG text)."""

    @functools.wraps(make)
    def wrapped(*args, **kwargs) -> Figure:
        with matplotlib.rc_context(STYLE):
            return make(*args, **kwargs)

    return wrapped


def no_data(title: str) -> Figure:
    """A small figure with `title` and the words "no data"."""
    fig = _figure(height=1.2)
    ax = fig.add_subplot()
    ax.set_title(title)
    ax.text(0.5, 0.4, "no data", ha="center", va="center", fontsize=12, color="#777777", transform=ax.transAxes)
    ax.set_axis_off()
    return fig


def _thousands(value: float, _pos=None) -> str:
    if abs(value) >= 1_000_000:
        return f"{value / 1_000_000:g}M"
    if abs(value) >= 1_000:
        return f"{value / 1_000:g}k"
    return f"{value:g}"


def _date_axis(ax, dates: pd.Series) -> None:
    # Daily data: never hour ticks between days, whatever the width of the range.
    span = (pd.Timestamp(dates.max()) - pd.Timestamp(dates.min())).days
    locator = mdates.DayLocator() if span <= 14 else mdates.AutoDateLocator(minticks=3, maxticks=10)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    if len(dates) == 1:  # one day: give the axis a width to centre it in
        day = pd.Timestamp(dates.iloc[0])
        ax.set_xlim(day - pd.Timedelta(days=1), day + pd.Timedelta(days=1))


def _days(by_day: pd.DataFrame) -> pd.Series:
    return pd.to_datetime(by_day["report_date"])


def _short(label: object) -> str:
    text = "(none)" if label is None or (isinstance(label, float) and pd.isna(label)) else str(label)
    return text if len(text) <= MAX_LABEL_CHARS else text[: MAX_LABEL_CHARS - 1] + "…"


def _daily_axes(by_day: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series, Figure, object]:
    """The rows in date order, their days, and a figure with one axes to draw them on."""
    by_day = by_day.sort_values("report_date")
    fig = _figure()
    return by_day, _days(by_day), fig, fig.add_subplot()


@_with_style
def traffic_chart(by_day: pd.DataFrame) -> Figure:
    """Requests and unique visitors (distinct IPs) per day, as lines."""
    title = "Requests and unique visitors per day"
    if by_day is None or by_day.empty:
        return no_data(title)
    by_day, days, fig, ax = _daily_axes(by_day)
    marker = "o" if len(by_day) <= 31 else None
    for column, label in (("requests", "requests"), ("unique_visitors", "unique visitors")):
        ax.plot(days, by_day[column], marker=marker, markersize=4, linewidth=1.6,
                color=TRAFFIC_COLORS[column], label=label)
    ax.set_title(title)
    ax.set_ylim(bottom=0)
    ax.yaxis.set_major_formatter(FuncFormatter(_thousands))
    ax.grid(axis="y", color="#e5e5e5")
    ax.legend(loc="lower right", bbox_to_anchor=(1, 1), frameon=False, ncols=2)
    _date_axis(ax, days)
    return fig


@_with_style
def status_chart(by_day: pd.DataFrame) -> Figure:
    """Requests per status class (2xx/3xx/4xx/5xx) per day, stacked."""
    title = "Status classes per day"
    if by_day is None or by_day.empty:
        return no_data(title)
    by_day, days, fig, ax = _daily_axes(by_day)
    labels = [c.removeprefix("status_") for c in STATUS_CLASSES]
    colors = [STATUS_COLORS[c] for c in STATUS_CLASSES]
    values = [by_day[c].fillna(0).astype("int64").to_numpy() for c in STATUS_CLASSES]
    if len(by_day) <= MAX_DAILY_BARS:
        bottom = 0
        for value, label, color in zip(values, labels, colors, strict=True):
            ax.bar(days, value, bottom=bottom, width=0.8, color=color, label=label)
            bottom = bottom + value
    else:
        ax.stackplot(days, *values, labels=labels, colors=colors, linewidth=0)
    ax.set_title(title)
    ax.yaxis.set_major_formatter(FuncFormatter(_thousands))
    ax.grid(axis="y", color="#e5e5e5")
    ax.set_axisbelow(True)
    ax.legend(loc="lower right", bbox_to_anchor=(1, 1), frameon=False, ncols=4)
    _date_axis(ax, days)
    return fig


@_with_style
def bar_chart(df: pd.DataFrame, label: str, value: str, title: str) -> Figure:
    """Horizontal bars of `value` per `label`, biggest on top (the frame's rows, in any order)."""
    if df is None or df.empty:
        return no_data(title)
    rows = df.sort_values(value, ascending=False, kind="stable")
    fig = _figure(height=0.9 + 0.28 * len(rows))
    ax = fig.add_subplot()
    positions = range(len(rows))
    numbers = rows[value].fillna(0).to_numpy()
    bars = ax.barh(list(positions), numbers, color=BAR_COLOR, height=0.7)
    ax.set_yticks(list(positions), [_short(v) for v in rows[label]])
    ax.invert_yaxis()
    ax.bar_label(bars, labels=[f"{v:,.0f}" if float(v).is_integer() else f"{v:,.2f}" for v in numbers],
                 padding=3, fontsize=8)
    ax.set_title(title)
    ax.xaxis.set_major_formatter(FuncFormatter(_thousands))
    ax.margins(x=0.12)
    ax.tick_params(axis="y", length=0)
    return fig


@_with_style
def share_chart(df: pd.DataFrame, label: str, value: str, title: str) -> Figure:
    """Each `label`'s share of the total `value`, as one stacked 100% bar with percentages."""
    if df is None or df.empty or float(df[value].fillna(0).sum()) <= 0:
        return no_data(title)
    rows = df.sort_values(value, ascending=False, kind="stable")
    total = float(rows[value].sum())
    fig = _figure(height=1.6)
    ax = fig.add_subplot()
    left = 0.0
    for i, (name, amount) in enumerate(zip(rows[label], rows[value], strict=True)):
        share = float(amount) / total
        bar = ax.barh([0], [share], left=left, height=0.6, color=SHARE_COLORS[i % len(SHARE_COLORS)],
                      label=f"{_short(name)} ({share:.1%})")
        if share >= 0.08:
            ax.bar_label(bar, labels=[f"{share:.1%}"], label_type="center", color="white", fontsize=9)
        left += share
    ax.set_xlim(0, 1)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_yticks([])
    ax.spines["left"].set_visible(False)
    ax.set_title(title)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.35), frameon=False, ncols=min(len(rows), 4))
    return fig


@_with_style
def quarantine_chart(df: pd.DataFrame) -> Figure:
    """Quarantined rows per (dataset, reason), biggest on top."""
    title = "Quarantined rows by reason"
    if df is None or df.empty:
        return no_data(title)
    labelled = df.assign(label=[f"{d}: {r}" for d, r in zip(df["dataset"], df["reason"], strict=True)])
    return bar_chart(labelled, "label", "rows", title)


def figure_svg(fig: Figure, prefix: str = "") -> str:
    """`fig` as an inline `<svg>` element (no XML prologue), its ids prefixed with `prefix`.

    Several SVGs in one HTML page share one id space: matplotlib names clip paths and
    markers by hashes that repeat from chart to chart, so each chart's ids get its prefix.
    """
    buf = io.StringIO()
    with matplotlib.rc_context(STYLE):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"<!--.*?-->", "", svg, flags=re.S)
    svg = re.sub(r"\n\s*", "\n", svg)
    if prefix:
        svg = re.sub(r'\bid="([^"]+)"', rf'id="{prefix}\1"', svg)
        svg = re.sub(r'(xlink:href|href)="#([^"]+)"', rf'\1="#{prefix}\2"', svg)
        svg = re.sub(r"url\(#([^)]+)\)", rf"url(#{prefix}\1)", svg)
    return svg.strip()
