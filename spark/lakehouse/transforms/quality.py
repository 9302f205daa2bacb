"""Data-quality rules: what conf/quality.yaml declares, and the pure checks behind them.

`jobs/check.py` reads the tables and writes `_meta/quality_results`; silver applies the
row-level rules whose action is `quarantine` (`flag_rows`). Nothing here reads or writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from functools import reduce
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.config import ConfigError

ROW_KINDS = ("not_null", "range", "allowed")
TABLE_KINDS = ("reconciliation", "gold_totals", "freshness")
ACTIONS = ("warn", "quarantine", "fail")
# How many failing values a result row keeps, to show what went wrong.
SAMPLES = 5

RESULTS_SCHEMA = T.StructType(
    [
        T.StructField("run_id", T.StringType()),
        T.StructField("checked_at", T.TimestampType()),
        T.StructField("report_date", T.DateType()),
        T.StructField("table", T.StringType()),
        T.StructField("rule", T.StringType()),
        T.StructField("kind", T.StringType()),
        T.StructField("action", T.StringType()),
        T.StructField("rows_checked", T.LongType()),
        T.StructField("rows_failing", T.LongType()),
        T.StructField("samples", T.ArrayType(T.StringType())),
        T.StructField("passed", T.BooleanType()),
    ]
)


@dataclass(frozen=True)
class Rule:
    """One named expectation on one table (`layer/name`), and what to do when it fails."""

    name: str
    table: str
    kind: str
    action: str
    columns: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None
    values: tuple[str, ...] = ()
    dataset: str | None = None
    source: str | None = None
    max_age_hours: float | None = None
    # Which `lakehouse check` runs it: `daily` (the daily DAGs' gate before export) or another
    # group run on its own (`--group sources`: the long-running sources' freshness).
    group: str = "daily"

    @property
    def column(self) -> str:
        return self.columns[0]


@dataclass(frozen=True)
class Outcome:
    """What checking one rule found."""

    rule: Rule
    rows_checked: int
    rows_failing: int
    samples: tuple[str, ...] = field(default=())

    @property
    def passed(self) -> bool:
        return self.rows_failing == 0


def rules_from(doc: Any, source: str = "conf/quality.yaml") -> list[Rule]:
    """The rules of a parsed quality.yaml, checked: a wrong rule fails here, before any check runs."""
    entries = (doc or {}).get("rules") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        raise ConfigError(f"{source}: expected a `rules:` list")
    rules, names = [], set()
    for i, entry in enumerate(entries):
        where = f"{source}: rule {i + 1}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: expected a mapping, got {entry!r}")
        name, kind, action, table = (entry.get(k) for k in ("name", "kind", "action", "table"))
        if not name or name in names:
            raise ConfigError(f"{where}: needs a unique `name` (got {name!r})")
        where = f"{source}: rule {name!r}"
        names.add(name)
        if kind not in ROW_KINDS + TABLE_KINDS:
            raise ConfigError(f"{where}: kind {kind!r} is not one of {', '.join(ROW_KINDS + TABLE_KINDS)}")
        if action not in ACTIONS:
            raise ConfigError(f"{where}: action {action!r} is not one of {', '.join(ACTIONS)}")
        if action == "quarantine" and (kind not in ROW_KINDS or not str(table).startswith("silver/")):
            raise ConfigError(f"{where}: action quarantine is for row-level rules on silver tables")
        if not isinstance(table, str) or "/" not in table:
            raise ConfigError(f"{where}: `table` must be <layer>/<name>, got {table!r}")
        group = entry.get("group", "daily")
        if not isinstance(group, str) or not group.isidentifier():
            raise ConfigError(f"{where}: `group` must be a name such as daily or sources, got {group!r}")
        columns = entry.get("columns") or ([entry["column"]] if entry.get("column") else [])
        needs = {
            "not_null": columns,
            "range": columns and (entry.get("min") is not None or entry.get("max") is not None),
            "allowed": columns and entry.get("values"),
            "reconciliation": entry.get("dataset"),
            "gold_totals": columns and entry.get("source"),
            "freshness": columns and entry.get("max_age_hours") is not None,
        }[kind]
        if not needs:
            raise ConfigError(f"{where}: a {kind} rule needs " + {
                "not_null": "`columns`", "range": "`column` and `min` or `max`", "allowed": "`column` and `values`",
                "reconciliation": "`dataset`", "gold_totals": "`column` and `source`",
                "freshness": "`column` and `max_age_hours`",
            }[kind])
        rules.append(Rule(
            name=str(name), table=table, kind=kind, action=action, columns=tuple(str(c) for c in columns),
            min=entry.get("min"), max=entry.get("max"), values=tuple(str(v) for v in entry.get("values") or ()),
            dataset=entry.get("dataset"), source=entry.get("source"), max_age_hours=entry.get("max_age_hours"),
            group=group,
        ))
    return rules


def failing(rule: Rule) -> Column:
    """True for the rows a row-level rule rejects (nulls fail only `not_null`)."""
    if rule.kind == "not_null":
        return reduce(lambda a, b: a | b, [F.col(c).isNull() for c in rule.columns])
    col = F.col(rule.column)
    if rule.kind == "range":
        out = F.lit(False)
        if rule.min is not None:
            out = out | (col < F.lit(rule.min))
        if rule.max is not None:
            out = out | (col > F.lit(rule.max))
        return F.coalesce(out, F.lit(False))
    if rule.kind == "allowed":
        return F.coalesce(~col.cast("string").isin(list(rule.values)), F.lit(False))
    raise ValueError(f"{rule.name}: {rule.kind} is not a row-level rule")


def flag_rows(parsed: DataFrame, rules: list[Rule], table: str) -> DataFrame:
    """Give valid rows of `table` that fail a `quarantine` rule the reason `rule <name>`.

    Rows already rejected or blank keep what they have; the first failing rule names the reason.
    """
    applicable = [r for r in rules if r.action == "quarantine" and r.table == table and r.kind in ROW_KINDS]
    if not applicable:
        return parsed
    reason = F.col("reason")
    for rule in applicable:
        reason = F.when(reason.isNull() & ~F.col("is_blank") & failing(rule), F.lit(f"rule {rule.name}")).otherwise(reason)
    return parsed.withColumn("reason", reason)


def row_rule_facts(rows: DataFrame, rule: Rule) -> DataFrame:
    """(rows_checked, rows_failing) of a row-level rule, one aggregation."""
    return rows.agg(
        F.count(F.lit(1)).alias("rows_checked"),
        F.coalesce(F.sum(F.when(failing(rule), 1).otherwise(0)), F.lit(0)).alias("rows_failing"),
    )


def failing_samples(rows: DataFrame, rule: Rule) -> DataFrame:
    """Up to SAMPLES distinct failing values (the rule's columns joined by `|`)."""
    shown = F.concat_ws("|", *[F.coalesce(F.col(c).cast("string"), F.lit("null")) for c in rule.columns])
    return rows.where(failing(rule)).select(shown.alias("sample")).distinct().limit(SAMPLES)


def gold_totals_mismatch(gold: DataFrame, silver: DataFrame, column: str) -> DataFrame:
    """(report_date, gold_total, silver_rows) for each date where sum(gold.column) differs
    from the silver rows of that date; a date present on one side only counts as 0 on the other."""
    g = gold.groupBy("report_date").agg(F.sum(column).cast("long").alias("gold_total"))
    s = silver.groupBy(F.col("event_date").alias("report_date")).agg(F.count(F.lit(1)).alias("silver_rows"))
    return (
        g.join(s, "report_date", "full")
        .select("report_date", F.coalesce("gold_total", F.lit(0)).alias("gold_total"),
                F.coalesce("silver_rows", F.lit(0)).alias("silver_rows"))
        .where(F.col("gold_total") != F.col("silver_rows"))
    )


def reconcile(bronze_rows: int, silver_rows: int, quarantine_rows: int, blank: int, duplicates: int) -> tuple[int, int, tuple[str, ...]]:
    """(rows checked, rows unaccounted for, the figures) of a reconciliation."""
    accounted = silver_rows + quarantine_rows + blank + duplicates
    figures = (f"bronze={bronze_rows}", f"silver={silver_rows}", f"quarantine={quarantine_rows}",
               f"blank={blank}", f"duplicates={duplicates}")
    return bronze_rows, abs(bronze_rows - accounted), figures


def stale_by(newest: datetime | None, now: datetime, max_age_hours: float) -> float | None:
    """Hours by which the newest value is older than allowed (None: fresh enough). No value at all is stale."""
    if newest is None:
        return float("inf")
    age = (now - newest).total_seconds() / 3600
    return age - max_age_hours if age > max_age_hours else None


def result_rows(run_id: str, checked_at: datetime, report_date: date | None, outcomes: list[Outcome]) -> list[tuple]:
    """`_meta/quality_results` rows, one per rule."""
    return [
        (run_id, checked_at, report_date, o.rule.table, o.rule.name, o.rule.kind, o.rule.action,
         int(o.rows_checked), int(o.rows_failing), list(o.samples[:SAMPLES]), o.passed)
        for o in outcomes
    ]
