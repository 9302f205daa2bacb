"""The metric names the monitoring files ask for: every PromQL expression of the alert rules
(conf/prometheus/alerts.yml) and of the Grafana dashboard (conf/grafana/dashboards/)."""

from __future__ import annotations

import json
import re

import yaml

from lakehouse.config import project_root

# Series Prometheus makes itself, not a scrape.
BUILT_IN = frozenset({"up"})
# PromQL words that are not metrics: functions, aggregations, keywords.
WORDS = frozenset({
    "sum", "max", "min", "avg", "count", "rate", "increase", "time", "histogram_quantile", "by", "on",
    "ignoring", "group_left", "group_right", "or", "and", "unless", "without", "bool", "le",
})  # fmt: skip


def expressions() -> list[str]:
    root = project_root()
    rules = yaml.safe_load((root / "conf" / "prometheus" / "alerts.yml").read_text())
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    for path in sorted((root / "conf" / "grafana" / "dashboards").glob("*.json")):
        exprs += [t["expr"] for panel in json.loads(path.read_text())["panels"] for t in panel["targets"]]
    return exprs


def metric_names(expr: str) -> set[str]:
    """The metric names of one expression (label names and values, durations and words left out)."""
    text = re.sub(r'\{[^}]*\}|\[[^\]]*\]|"[^"]*"', " ", expr)  # selectors' labels, ranges, strings
    text = re.sub(r"\b(by|on|ignoring|without|group_left|group_right)\s*\([^)]*\)", " ", text)
    return {m for m in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", text) if m not in WORDS and not m[0].isdigit()}


def referenced() -> set[str]:
    """Every metric the rules and the dashboard name, Prometheus's own series left out."""
    return set().union(*(metric_names(e) for e in expressions())) - BUILT_IN
