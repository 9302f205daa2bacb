"""Silver product views: parse, type, enrich and dedupe the bronze events not yet processed.

    lakehouse silver --dataset product_views
    spark-submit spark/lakehouse/jobs/silver_product_views.py [--warehouse DIR]

Reads `bronze/product_views` incrementally, writes `silver/product_views` (deduped on
event_id across runs; the earliest ingested copy wins) and `quarantine/product_views`
(invalid JSON, missing product_id, unparseable or absurd time, with the reason).
"""

from __future__ import annotations

import logging
import sys

from pyspark.sql import SparkSession

from lakehouse.config import Config
from lakehouse.jobs.common import JobRun
from lakehouse.jobs.silver_common import run_silver, silver_main
from lakehouse.transforms.enrich import with_dimensions
from lakehouse.transforms.product_views import SILVER_COLUMNS, product_view_rows

log = logging.getLogger("lakehouse.silver.product_views")

# Among copies of one event_id, the first ingested wins (then source order).
WINNER_ORDER = ("ingested_at", "source_file", "topic", "partition", "offset", "line")


# The columns whose distinct values (among valid rows) the enrichment is built from.
LOOKUPS = ("user_agent", "remote_ip")


def run(spark: SparkSession, config: Config, run_log: JobRun) -> None:
    """Process every bronze product-view event not yet seen by this job."""
    quality = config.quality
    run_silver(
        spark,
        config,
        "product_views",
        lambda batch: product_view_rows(batch, quality.min_event_date, quality.max_future_hours),
        lambda valid, values: with_dimensions(valid, values, "remote_ip", ("country",), config.geoip_database),
        SILVER_COLUMNS,
        run_log,
        order_by=WINNER_ORDER,
        lookups=LOOKUPS,
    )


def main(argv: list[str] | None = None) -> int:
    return silver_main("product_views", run, argv)


if __name__ == "__main__":
    sys.exit(main())
