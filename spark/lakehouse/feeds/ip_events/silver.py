"""Silver IP events: check, canonicalise and locate the IP sightings not yet processed.

    lakehouse silver --dataset ip_events
    spark-submit spark/lakehouse/feeds/ip_events/silver.py [--warehouse DIR]

Reads `bronze/ip_events` incrementally (what the IP collector of `lakehouse serve` put in
Kafka or its landing folder), writes `silver/ip_events` (canonical IP, UTC `event_ts`,
request id, GeoIP country, city, latitude and longitude, each distinct IP located once
through `silver/dim_ip_geo`; deduped on event_id, the record's place in its source) and
`quarantine/ip_events` (invalid JSON, missing or invalid ip, missing or unparseable
received_at, with the reason).
"""

from __future__ import annotations

import sys

from pyspark.sql import SparkSession

from lakehouse.config import Config
from lakehouse.feeds.ip_events.parse import GEO_COLUMNS, SILVER_COLUMNS, ip_event_rows
from lakehouse.feeds.web_events.silver import WINNER_ORDER
from lakehouse.jobs.runtime import JobRun
from lakehouse.jobs.silver import SilverSpec, run_silver, silver_main


def run(spark: SparkSession, config: Config, run_log: JobRun) -> None:
    """Process every bronze IP event not yet seen by this job."""
    quality = config.quality
    spec = SilverSpec(
        dataset="ip_events",
        parse=lambda batch: ip_event_rows(batch, quality.min_event_date, quality.max_future_hours),
        silver_columns=SILVER_COLUMNS,
        ip_column="ip",
        geo_columns=GEO_COLUMNS,
        winner_order=WINNER_ORDER,
        # event_id is the record's place: the same place always holds the same time.
        dedupe_scope="date",
    )
    run_silver(spark, config, spec, run_log)


def main(argv: list[str] | None = None) -> int:
    return silver_main("ip_events", run, argv)


if __name__ == "__main__":
    sys.exit(main())
