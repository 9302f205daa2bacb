"""Data-quality gate: run the table-level rules of conf/quality.yaml, record every result.

    lakehouse check                     # every date
    lakehouse check --date 2024-03-02   # row rules and gold totals of one date

One row per rule goes to `_meta/quality_results` (run id, table, rule, action, rows checked,
rows failing, a few failing values, passed). Exit 0 when no `fail` rule failed (warnings
are logged), 1 otherwise: the daily DAG runs this between gold and export, so data that
breaks a `fail` rule never reaches PostgreSQL. Row-level rules with action `quarantine`
are applied by silver; here they are checked like the others (silver should hold no row
failing them).
"""

from __future__ import annotations

import argparse
import logging
from datetime import UTC, date, datetime
from pathlib import Path

import yaml
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse.config import Config
from lakehouse.io import delta
from lakehouse.jobs.runtime import JobRun, run_job
from lakehouse.transforms import quality
from lakehouse.transforms.quality import Outcome, Rule

log = logging.getLogger("lakehouse.check")


def load_rules(config: Config) -> list[Rule]:
    """The rules of `quality.rules` (none when it is not set)."""
    path: Path | None = config.quality.rules_file
    if path is None:
        return []
    return quality.rules_from(yaml.safe_load(path.read_text()), str(path))


def _rows(spark: SparkSession, config: Config, table: str, report_date: date | None) -> DataFrame | None:
    layer, name = table.split("/", 1)
    path = config.table_path(layer, name)
    if not delta.table_exists(spark, path):
        return None
    df = delta.read_table(spark, path)
    for column in ("event_date", "report_date"):
        if report_date is not None and column in df.columns:
            return df.where(F.col(column) == F.lit(report_date))
    return df


def _row_rule(spark: SparkSession, config: Config, rule: Rule, report_date: date | None) -> Outcome:
    rows = _rows(spark, config, rule.table, report_date)
    if rows is None:
        return Outcome(rule, 0, 0)
    facts = quality.row_rule_facts(rows, rule).first()
    samples = tuple(r[0] for r in quality.failing_samples(rows, rule).collect()) if facts["rows_failing"] else ()
    return Outcome(rule, facts["rows_checked"], facts["rows_failing"], samples)


def _reconciliation(spark: SparkSession, config: Config, rule: Rule) -> Outcome:
    dataset = rule.dataset
    processed = delta.processed_version(spark, config.checkpoint(f"silver_{dataset}"))
    bronze = delta.count_at(spark, config.table_path("bronze", dataset), -1 if processed is None else processed)

    def count(layer: str) -> int:
        path = config.table_path(layer, dataset)
        return delta.read_table(spark, path).count() if delta.table_exists(spark, path) else 0

    batches_path = config.table_path("_meta", "silver_batches")
    blank = duplicates = 0
    if delta.table_exists(spark, batches_path):
        sums = (
            delta.read_table(spark, batches_path).where(F.col("dataset") == dataset)
            .agg(F.sum("skipped_blank"), F.sum("duplicates")).first()
        )
        blank, duplicates = int(sums[0] or 0), int(sums[1] or 0)
    checked, off, figures = quality.reconcile(bronze, count("silver"), count("quarantine"), blank, duplicates)
    return Outcome(rule, checked, off, figures)


def _gold_totals(spark: SparkSession, config: Config, rule: Rule, report_date: date | None) -> Outcome:
    gold = _rows(spark, config, rule.table, report_date)
    silver = _rows(spark, config, rule.source, report_date)
    if gold is None or silver is None:
        return Outcome(rule, 0, 0)
    wrong = quality.gold_totals_mismatch(gold, silver, rule.column).orderBy("report_date")
    dates = gold.select("report_date").distinct().count()
    samples = tuple(f"{r.report_date}: gold={r.gold_total} silver={r.silver_rows}" for r in wrong.limit(quality.SAMPLES).collect())
    return Outcome(rule, dates, wrong.count() if samples else 0, samples)


def _freshness(spark: SparkSession, config: Config, rule: Rule, now: datetime) -> Outcome:
    rows = _rows(spark, config, rule.table, None)
    newest = rows.agg(F.max(rule.column)).first()[0] if rows is not None else None
    late = quality.stale_by(newest, now, rule.max_age_hours)
    return Outcome(rule, 1, 0 if late is None else 1, () if late is None else (f"newest {rule.column}: {newest}",))


def evaluate(spark: SparkSession, config: Config, rule: Rule, report_date: date | None, now: datetime) -> Outcome:
    if rule.kind in quality.ROW_KINDS:
        return _row_rule(spark, config, rule, report_date)
    if rule.kind == "reconciliation":
        return _reconciliation(spark, config, rule)
    if rule.kind == "gold_totals":
        return _gold_totals(spark, config, rule, report_date)
    return _freshness(spark, config, rule, now)


def run(spark: SparkSession, config: Config, run_log: JobRun, report_date: date | None = None,
        now: datetime | None = None, group: str = "daily") -> int:
    """Check every rule of `group`, record the results; 1 when a `fail` rule failed, else 0.

    `now` is the clock freshness is measured against (default: the real one).
    """
    checked_at = datetime.now(UTC).replace(tzinfo=None)
    now = now or checked_at
    outcomes = []
    rules = [rule for rule in load_rules(config) if rule.group == group]
    if not rules:
        log.warning("no quality rule in group %s", group)
    for rule in rules:
        outcome = evaluate(spark, config, rule, report_date, now)
        outcomes.append(outcome)
        verdict = "ok" if outcome.passed else ("FAILED" if rule.action == "fail" else "warning")
        detail = f" ({'; '.join(outcome.samples)})" if outcome.samples and not outcome.passed else ""
        log.info("%-8s %s on %s: %d of %d failing%s", verdict, rule.name, rule.table, outcome.rows_failing,
                 outcome.rows_checked, detail)
    if outcomes:
        rows = quality.result_rows(run_log.run_id, checked_at, report_date, outcomes)
        delta.append(spark.createDataFrame(rows, quality.RESULTS_SCHEMA), config.table_path("_meta", "quality_results"))
    failed = [o.rule.name for o in outcomes if not o.passed and o.rule.action == "fail"]
    run_log.add(rules=len(outcomes), failed=len(failed), warnings=sum(1 for o in outcomes if not o.passed) - len(failed))
    if failed:
        log.error("quality gate failed: %s", ", ".join(failed))
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    def arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--date", type=date.fromisoformat, help="check the rows of this date only (row rules, gold totals)")
        parser.add_argument("--group", default="daily",
                            help="the rules of this group (default daily; `sources`: the long-running sources' freshness)")

    return run_job(
        "check",
        "Data-quality gate: the rules of conf/quality.yaml -> _meta/quality_results; exit 1 when a `fail` rule fails.",
        lambda spark, config, run_log, args: run(spark, config, run_log, args.date, group=args.group),
        argv,
        arguments,
    )


if __name__ == "__main__":
    raise SystemExit(main())
