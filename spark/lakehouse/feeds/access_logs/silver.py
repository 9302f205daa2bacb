"""Silver access logs: parse, type, enrich and dedupe the bronze lines not yet processed.

    lakehouse silver --dataset access_logs
    spark-submit spark/lakehouse/feeds/access_logs/silver.py [--warehouse DIR]

Reads `bronze/access_logs` incrementally (checkpointed streaming read, availableNow),
writes `silver/access_logs` (partitioned by event_date; `event_id` is the line's place in
its source, so two identical lines are two requests, and a place read twice is one)
and `quarantine/access_logs` (every rejected line with its reason). Blank lines are
counted and skipped. Each micro-batch commits with its id in the commit metadata
(`delta.append_once`), so a replay after a crash writes nothing twice.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from pyspark.sql import DataFrame, SparkSession

from lakehouse.config import Config
from lakehouse.feeds.access_logs.log_format import CompiledFormat, compile_log_format
from lakehouse.feeds.access_logs.parse import SILVER_COLUMNS, access_log_rows
from lakehouse.jobs.runtime import JobRun
from lakehouse.jobs.silver import SilverSpec, run_silver, silver_main

log = logging.getLogger("lakehouse.silver.access_logs")

GEO_COLUMNS = ("country", "city", "latitude", "longitude")
# Two copies of one event_id are two reads of one place (a bronze table written twice):
# the first ingested wins, then the first in source order.
WINNER_ORDER = ("ingested_at", "source_file_id", "source_line", "topic", "partition", "offset")


def make_parse(config: Config) -> tuple[CompiledFormat, Callable[..., DataFrame]]:
    """The configured format, compiled, and `parse(bronze_rows, with_apachelogs)` with the quality rules.

    `with_apachelogs` defaults to True only when the format has no regex (apachelogs parses all).
    """
    settings, quality = config.access_logs, config.quality
    compiled = compile_log_format(settings.log_format, settings.also_accept_common)

    def parse(batch: DataFrame, with_apachelogs: bool = compiled.regex is None) -> DataFrame:
        return access_log_rows(
            batch, compiled, settings.also_accept_common, quality.min_event_date, quality.max_future_hours, with_apachelogs
        )

    return compiled, parse


def run(spark: SparkSession, config: Config, run_log: JobRun) -> None:
    """Process every bronze access-log line not yet seen by this job."""
    compiled, parse = make_parse(config)
    if compiled.regex is None:
        log.warning("log format %r has directives the fast parser does not model: every line goes through apachelogs", compiled.log_format)
    # The regex runs in the JVM over every line; apachelogs (Python) only sees the lines it
    # rejected, in a second pass over those alone. Without a regex, apachelogs parses all.
    fast_only = compiled.regex is not None

    spec = SilverSpec(
        dataset="access_logs",
        parse=parse,
        silver_columns=SILVER_COLUMNS,
        ip_column="ip",
        geo_columns=GEO_COLUMNS,
        winner_order=WINNER_ORDER,
        # The id is the record's place, and one place always holds the same line (the
        # same date): only the batch's dates of silver are searched for it.
        dedupe_scope="date",
        reparse=(lambda flagged: parse(flagged, with_apachelogs=True)) if fast_only else None,
    )
    run_silver(spark, config, spec, run_log)


def main(argv: list[str] | None = None) -> int:
    return silver_main("access_logs", run, argv)


if __name__ == "__main__":
    sys.exit(main())
