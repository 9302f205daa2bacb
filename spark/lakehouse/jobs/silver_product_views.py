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

from pyspark.sql import DataFrame, SparkSession

from lakehouse.config import Config
from lakehouse.io import delta
from lakehouse.jobs.common import JobRun, base_parser, config_from_args, get_session, setup_logging
from lakehouse.jobs.silver_access_logs import write_silver_batch
from lakehouse.transforms.enrich import (
    ip_geo_dimension,
    user_agent_dimension,
    with_geo,
    with_user_agent,
)
from lakehouse.transforms.product_views import SILVER_COLUMNS, product_view_rows

log = logging.getLogger("lakehouse.silver.product_views")

# Among copies of one event_id, the first ingested wins (then source order).
WINNER_ORDER = ("ingested_at", "source_file", "topic", "partition", "offset", "line")


def enrich_views(rows: DataFrame, geoip_database: str | None) -> DataFrame:
    """Valid events + user-agent and GeoIP country, computed per distinct value."""
    agents = user_agent_dimension(rows, "user_agent")
    places = ip_geo_dimension(rows, "remote_ip", geoip_database)
    return rows.transform(lambda d: with_user_agent(d, agents)).transform(
        lambda d: with_geo(d, places, "remote_ip", ("country",))
    )


def run(spark: SparkSession, config: Config, run_log: JobRun) -> None:
    """Process every bronze product-view event not yet seen by this job."""
    bronze = config.table_path("bronze", "product_views")
    if not delta.table_exists(spark, bronze):
        log.info("no bronze/product_views table yet: nothing to do")
        return
    quality = config.quality

    def handle(batch: DataFrame, batch_id: int, app_id: str) -> None:
        rows = product_view_rows(batch, quality.min_event_date, quality.max_future_hours)
        counts = write_silver_batch(
            spark,
            rows,
            config.table_path("silver", "product_views"),
            config.table_path("quarantine", "product_views"),
            SILVER_COLUMNS,
            (app_id, batch_id),
            lambda valid: enrich_views(valid, config.geoip_database),
            order_by=WINNER_ORDER,
        )
        run_log.add(**counts)
        log.info("batch %d: %s", batch_id, ", ".join(f"{k}={v:,}" for k, v in counts.items()))

    delta.process_new_rows(spark, bronze, config.checkpoint("silver_product_views"), "silver_product_views", handle)


def main(argv: list[str] | None = None) -> int:
    args = base_parser("lakehouse silver-product-views", "Bronze product views -> silver + quarantine.").parse_args(argv)
    setup_logging(args.verbose)
    config = config_from_args(args)
    spark = get_session(config, "silver-product-views")
    run_log = JobRun("silver product_views")
    run(spark, config, run_log)
    run_log.record(spark, config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
