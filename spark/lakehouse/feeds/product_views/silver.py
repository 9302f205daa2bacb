"""Silver product views: parse, type, enrich and dedupe the bronze events not yet processed.

    lakehouse silver --dataset product_views
    spark-submit spark/lakehouse/feeds/product_views/silver.py [--warehouse DIR]

Reads `bronze/product_views` incrementally, writes `silver/product_views` (deduped on
event_id across runs and dates: the copy silver saw first wins) and `quarantine/product_views`
(invalid JSON, missing product_id, unparseable or absurd time, with the reason).
"""

from __future__ import annotations

import logging
import sys

from pyspark.sql import SparkSession

from lakehouse.config import Config
from lakehouse.feeds.product_views.parse import SILVER_COLUMNS, product_view_rows
from lakehouse.jobs.runtime import JobRun
from lakehouse.jobs.silver import SilverSpec, run_silver, silver_main

log = logging.getLogger("lakehouse.silver.product_views")

# Among copies of one event_id in a batch, the first ingested wins, then the first in
# source order (file id and line, or topic, partition and offset); a copy arriving in a
# later batch loses to the one silver already holds, whatever its date.
WINNER_ORDER = ("ingested_at", "source_file_id", "source_line", "topic", "partition", "offset")


def run(spark: SparkSession, config: Config, run_log: JobRun) -> None:
    """Process every bronze product-view event not yet seen by this job."""
    quality = config.quality
    spec = SilverSpec(
        dataset="product_views",
        parse=lambda batch: product_view_rows(batch, quality.min_event_date, quality.max_future_hours),
        silver_columns=SILVER_COLUMNS,
        ip_column="remote_ip",
        geo_columns=("country",),
        winner_order=WINNER_ORDER,
        # An event's own id may come back with another time: all of silver is searched.
        dedupe_scope="all",
    )
    run_silver(spark, config, spec, run_log)


def main(argv: list[str] | None = None) -> int:
    return silver_main("product_views", run, argv)


if __name__ == "__main__":
    sys.exit(main())
