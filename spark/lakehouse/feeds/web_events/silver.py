"""Silver web events: parse, type, enrich and dedupe the bronze web events not yet processed.

    lakehouse silver --dataset web_events
    spark-submit spark/lakehouse/feeds/web_events/silver.py [--warehouse DIR]

Reads `bronze/web_events` incrementally, writes `silver/web_events` (UTC `event_ts`, host
lower-cased, url path, referrer host, GeoIP country/region/city, user-agent class; deduped
on event_id, the record's place in its source, so the same source ingested again adds
nothing) and `quarantine/web_events` (invalid JSON, missing or over-long host or ip,
missing, unparseable or absurd event_time, with the reason).
"""

from __future__ import annotations

import logging
import sys

from pyspark.sql import SparkSession

from lakehouse.config import Config
from lakehouse.feeds.web_events.parse import SILVER_COLUMNS, web_event_rows
from lakehouse.jobs.runtime import JobRun
from lakehouse.jobs.silver import SilverSpec, run_silver, silver_main

log = logging.getLogger("lakehouse.silver.web_events")

# Among copies of one event_id in a batch (one record read twice), the first ingested
# wins, then the first in source order.
WINNER_ORDER = ("ingested_at", "source_file_id", "source_line", "topic", "partition", "offset")


def run(spark: SparkSession, config: Config, run_log: JobRun) -> None:
    """Process every bronze web event not yet seen by this job."""
    quality = config.quality
    spec = SilverSpec(
        dataset="web_events",
        parse=lambda batch: web_event_rows(batch, quality.min_event_date, quality.max_future_hours),
        silver_columns=SILVER_COLUMNS,
        ip_column="ip",
        geo_columns=("country", "region", "city"),
        winner_order=WINNER_ORDER,
        # event_id is the record's place: the same place always holds the same event time.
        dedupe_scope="date",
    )
    run_silver(spark, config, spec, run_log)


def main(argv: list[str] | None = None) -> int:
    return silver_main("web_events", run, argv)


if __name__ == "__main__":
    sys.exit(main())
