"""What an operator looks at first: how fresh each table is, what ran, what failed.

    lakehouse status                 # human-readable
    lakehouse status --json          # for scripts
    lakehouse status --days 7        # quarantine reasons over the last 7 days (default)

Per table of the warehouse: rows, newest event (event time for silver, report date for
gold, ingestion time for bronze), last write and its operation, files and size. Then the
last run of each job (`_meta/job_runs`: status, counts, duration), quarantine counts by
reason over the last days, files that could not be read (`_meta/ingest_errors`), the
quality rules that failed in the last `lakehouse check` (`_meta/quality_results`), and,
when Kafka is configured and reachable, the stream's lag per topic partition (the topic's
end offsets against the stream checkpoint).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from lakehouse.config import Config
from lakehouse.feeds import NAMES
from lakehouse.io import delta, kafka
from lakehouse.jobs.runtime import JobRun, run_job

LAYERS = ("bronze", "silver", "gold", "quarantine")
# At most this many unreadable files are listed (newest first).
MAX_LISTED = 50
# The column that says how fresh a table of each layer is.
NEWEST = {"bronze": "ingested_at", "silver": "event_ts", "gold": "report_date", "quarantine": "quarantined_at"}


def _text(value) -> str | None:
    return None if value is None else str(value)


def tables(spark: SparkSession, config: Config) -> list[dict]:
    """One entry per Delta table of the warehouse's layers."""
    found = []
    for layer in LAYERS:
        for path in delta.tables_under(spark, config.table_path(layer, "x").rsplit("/", 1)[0]):
            df = delta.read_table(spark, path)
            column = NEWEST[layer] if NEWEST[layer] in df.columns else None
            row = df.agg(F.count(F.lit(1)).alias("rows"), *([F.max(column).alias("newest")] if column else [])).first()
            detail = delta.detail(spark, path)
            found.append(
                {
                    "table": f"{layer}/{path.rstrip('/').rsplit('/', 1)[-1]}",
                    "rows": int(row["rows"]),
                    "newest": _text(row["newest"]) if column else None,
                    "last_write": _text(detail["last_write"]),
                    "operation": detail["operation"],
                    "files": detail["files"],
                    "bytes": detail["bytes"],
                }
            )
    return found


def last_runs(spark: SparkSession, config: Config) -> list[dict]:
    """The latest run of each job, newest first."""
    path = config.table_path("_meta", "job_runs")
    if not delta.table_exists(spark, path):
        return []
    runs = delta.read_table(spark, path)
    status = F.col("status") if "status" in runs.columns else F.lit(None).cast("string")
    latest = runs.groupBy("job").agg(F.max_by(F.struct("finished_at", "seconds", "counts", status.alias("status")), "finished_at").alias("r"))
    return [
        {
            "job": r["job"],
            "finished_at": _text(r["r"]["finished_at"]),
            "status": r["r"]["status"] or "ok",
            "seconds": round(r["r"]["seconds"], 1),
            "counts": dict(sorted((r["r"]["counts"] or {}).items())),
        }
        for r in sorted(latest.collect(), key=lambda r: r["r"]["finished_at"], reverse=True)
    ]


def quarantine_reasons(spark: SparkSession, config: Config, since: datetime) -> list[dict]:
    """Quarantined records by dataset and reason (its text before the first colon) since `since`."""
    found = []
    for dataset in NAMES:
        path = config.table_path("quarantine", dataset)
        if not delta.table_exists(spark, path):
            continue
        reasons = (
            delta.read_table(spark, path)
            .where(F.col("quarantined_at") >= F.lit(since))
            .groupBy(F.substring_index("reason", ":", 1).alias("reason"))
            .count()
            .collect()
        )
        found += [{"dataset": dataset, "reason": r["reason"], "records": int(r["count"])} for r in reasons]
    return sorted(found, key=lambda r: (r["dataset"], -r["records"], r["reason"]))


def unreadable_files(spark: SparkSession, config: Config, since: datetime) -> list[dict]:
    """Files the ingest could not read since `since` (latest report per path; the newest
    MAX_LISTED of them)."""
    path = config.table_path("_meta", "ingest_errors")
    if not delta.table_exists(spark, path):
        return []
    rows = (
        delta.read_table(spark, path)
        .where(F.col("detected_at") >= F.lit(since))
        .groupBy("dataset", "path")
        .agg(F.max_by("reason", "detected_at").alias("reason"), F.max("detected_at").alias("detected_at"))
        .orderBy(F.desc("detected_at"), "dataset", "path")
        # The newest ones: a landing folder full of broken files must not fill the driver.
        .limit(MAX_LISTED)
        .collect()
    )
    return [{"dataset": r["dataset"], "path": r["path"], "reason": r["reason"], "detected_at": _text(r["detected_at"])} for r in rows]


def failing_rules(spark: SparkSession, config: Config) -> list[dict]:
    """The rules that failed in the latest `lakehouse check` run."""
    path = config.table_path("_meta", "quality_results")
    if not delta.table_exists(spark, path):
        return []
    results = delta.read_table(spark, path)
    latest = results.orderBy(F.desc("checked_at")).select("run_id").first()
    rows = results.where((F.col("run_id") == latest[0]) & ~F.col("passed")).orderBy("rule").collect()
    return [
        {"rule": r["rule"], "table": r["table"], "action": r["action"], "rows_failing": r["rows_failing"],
         "rows_checked": r["rows_checked"], "checked_at": _text(r["checked_at"]), "samples": list(r["samples"])}
        for r in rows
    ]


def stream_lag(spark: SparkSession, config: Config) -> list[dict] | str:
    """Per topic partition: the topic's end offset, where the stream checkpoint is, the lag.

    A string saying why when Kafka cannot be asked (not configured, not reachable).
    """
    if not kafka.answers(config.kafka.bootstrap_servers, timeout=3):
        return f"Kafka at {config.kafka.bootstrap_servers} not reachable"
    found = []
    topics = kafka.list_topics(config.kafka.bootstrap_servers)
    for dataset in NAMES:
        topic = config.kafka.topics[dataset]
        if topic not in topics:
            continue
        end = kafka.latest_offsets(config.kafka.bootstrap_servers, topic)
        at = kafka.checkpoint_offsets(spark, config.checkpoint(f"bronze_{dataset}"), topic) or {}
        found += [
            {"topic": topic, "partition": p, "end_offset": e, "stream_offset": at.get(p), "lag": e - at.get(p, 0)}
            for p, e in sorted(end.items())
        ]
    return found


def collect_status(spark: SparkSession, config: Config, days: int, now: datetime | None = None) -> dict:
    """Everything `lakehouse status` shows, as plain data."""
    since = (now or datetime.now(UTC)) - timedelta(days=days)
    return {
        "warehouse": config.warehouse,
        "tables": tables(spark, config),
        "last_runs": last_runs(spark, config),
        "quarantine_since": _text(since.replace(microsecond=0, tzinfo=None)),
        "quarantine": quarantine_reasons(spark, config, since),
        "unreadable_files": unreadable_files(spark, config, since),
        "quality_failing": failing_rules(spark, config),
        "stream_lag": stream_lag(spark, config),
    }


def _table(rows: list[dict], columns: list[str]) -> list[str]:
    cells = [[("" if r.get(c) is None else str(r[c])) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    out = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    out += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return ["  " + line.rstrip() for line in out]


def render(status: dict) -> str:
    """The human-readable form."""
    lines = [f"warehouse {status['warehouse']}", "", "tables"]
    lines += _table(status["tables"], ["table", "rows", "newest", "last_write", "operation", "files", "bytes"]) if status["tables"] else ["  (none yet)"]
    lines += ["", "last run of each job"]
    runs = [dict(r, counts=", ".join(f"{k}={v:,}" for k, v in r["counts"].items())) for r in status["last_runs"]]
    lines += _table(runs, ["job", "finished_at", "status", "seconds", "counts"]) if runs else ["  (no runs recorded)"]
    lines += ["", f"quarantined since {status['quarantine_since']}"]
    lines += _table(status["quarantine"], ["dataset", "reason", "records"]) if status["quarantine"] else ["  (nothing)"]
    if status["unreadable_files"]:
        lines += ["", "files that could not be read"] + _table(status["unreadable_files"], ["dataset", "path", "reason", "detected_at"])
    if status["quality_failing"]:
        lines += ["", "quality rules failing (last `lakehouse check`)"]
        lines += _table(status["quality_failing"], ["rule", "table", "action", "rows_failing", "rows_checked", "checked_at"])
    lines += ["", "stream lag"]
    lag = status["stream_lag"]
    lines += [f"  {lag}"] if isinstance(lag, str) else (_table(lag, ["topic", "partition", "end_offset", "stream_offset", "lag"]) if lag else ["  (no topics)"])
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    def arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
        parser.add_argument("--days", type=int, default=7, help="quarantine and unreadable files of the last N days (default 7)")

    def body(spark: SparkSession, config: Config, _run: JobRun, args: argparse.Namespace) -> None:
        status = collect_status(spark, config, args.days)
        print(json.dumps(status, indent=2) if args.json else render(status), flush=True)

    return run_job("status", "Freshness of every table, last runs, quarantine, stream lag.", body, argv, arguments, record=False)


if __name__ == "__main__":
    sys.exit(main())
