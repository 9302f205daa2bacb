"""`lakehouse` console script: one subcommand per job (each also runs via spark-submit).

    lakehouse batch --access-logs PATH --product-views PATH --warehouse DIR
    lakehouse ingest --dataset access_logs --path PATH
    lakehouse ingest-mongo --database D --collection C [--uri URI] [--batch-size N]
    lakehouse mirror --from-bootstrap HOST:PORT --from-topic T [--security-protocol P --sasl-mechanism M --sasl-username U]
    lakehouse silver --dataset access_logs|product_views|web_events|api_ticks|ip_events
    lakehouse poll [--url URL] [--interval S] [--max-polls N]
    lakehouse stream-windows [--trigger "5 seconds"|availableNow]
    lakehouse gold [--report-date YYYY-MM-DD]
    lakehouse export [--all]
    lakehouse report
    lakehouse status [--json] [--days N]
    lakehouse check [--date D]
    lakehouse stream [--trigger "1 second"|availableNow] [--dataset D]
    lakehouse produce --dataset D (--file PATH | --synthetic N) [--rate R]
    lakehouse maintain [--layer L] [--vacuum-hours H]
    lakehouse serve [--host 127.0.0.1] [--port 8000]
    lakehouse supervise [--service NAME ...] [--list]
    lakehouse bench [--lines N]
"""

from __future__ import annotations

import sys
from importlib import import_module

from lakehouse.config import ConfigError
from lakehouse.feeds import FEEDS

# subcommand -> (module with main(argv), one-line help)
COMMANDS = {
    "batch": ("lakehouse.jobs.batch", "files -> bronze -> silver -> gold (-> export) in one go"),
    "ingest": ("lakehouse.jobs.ingest_files", "ingest access-log / product-view files into bronze"),
    "bronze": ("lakehouse.jobs.bronze_feed", "a feed's new records into bronze from where its producer lands them (web events, API ticks, IPs)"),
    "ingest-mongo": ("lakehouse.jobs.ingest_mongo", "backfill a MongoDB product-view collection into bronze (resumable, exactly once)"),
    "mirror": ("lakehouse.jobs.mirror", "mirror a remote Kafka topic (SASL) of product views into our product-views topic"),
    "silver": ("lakehouse.jobs.silver", "bronze -> silver + quarantine for one dataset (--dataset)"),
    **{feed.silver_command: (f"lakehouse.feeds.{name}.silver", f"bronze {name.replace('_', ' ')} -> silver")
       for name, feed in FEEDS.items()},  # fmt: skip
    "gold": ("lakehouse.jobs.gold_daily", "silver -> gold daily aggregates (touched dates only)"),
    "export": ("lakehouse.jobs.export_gold", "gold -> PostgreSQL/SQLite, one transaction per date"),
    "stream": ("lakehouse.jobs.stream_kafka", "Kafka topics -> bronze Delta tables (Structured Streaming)"),
    "stream-windows": ("lakehouse.jobs.stream_windows", "bronze web events -> gold 5-minute windows and sessions in real time"),
    "poll": ("lakehouse.jobs.poll", "poll a JSON HTTP endpoint into the api_ticks topic (or landing folder)"),
    "produce": ("lakehouse.jobs.produce", "replay a file / synthetic events into a Kafka topic"),
    "maintain": ("lakehouse.jobs.maintain", "OPTIMIZE (compact small files) and VACUUM the tables"),
    "report": ("lakehouse.jobs.report", "print top products, endpoints, error rate by day"),
    "check": ("lakehouse.jobs.check", "data-quality gate: the rules of conf/quality.yaml; exit 1 when a `fail` rule fails"),
    "status": ("lakehouse.jobs.status", "freshness of every table, last runs, quarantine, stream lag"),
    "serve": ("lakehouse.jobs.serve", "analytics API + Prometheus metrics over the exported gold tables (no Spark)"),
    "supervise": ("lakehouse.jobs.supervise", "keep the long-running sources (serve, poll, stream, mirror) running, restarted with back-off"),
    "bench": ("lakehouse_dev.bench", "benchmark the batch against the engine's text->Parquet ceiling"),
    "samples": ("lakehouse_dev.samples", "generate synthetic access logs / product views"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: lakehouse <command> [options]   (lakehouse <command> --help for more)", "", "commands:"]
    lines += [f"  {name.ljust(width)}  {text}" for name, (_m, text) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        print(f"lakehouse: unknown command {command!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = import_module(COMMANDS[command][0])
    try:
        return int(module.main(rest) or 0)
    except ConfigError as error:  # before anything was written: say what to fix, no trace
        print(f"lakehouse {command}: configuration error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
