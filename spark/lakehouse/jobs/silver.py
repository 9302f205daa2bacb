"""Silver, for any registered feed: `lakehouse silver --dataset D` (what the DAGs submit,
`spark-submit spark/lakehouse/jobs/silver.py --dataset D`) runs the feed's silver step
(`lakehouse.feeds.<D>.silver`), and this module is what those steps share: the incremental
read of bronze and the per-batch write.

Per bronze micro-batch: parse once into scratch Parquet (`reparse`, the slow parser, redoes only
the lines the fast one flagged), quarantine the rejected rows, look the batch's distinct
user agents and IPs up in the dimension tables (classifying new ones on the executors),
drop the rows whose `event_id` silver holds already or that repeat within the batch,
and append the rest, enriched, to silver.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from importlib import import_module

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.config import Config
from lakehouse.feeds import NAMES
from lakehouse.io import delta, dimensions, geoip, staging
from lakehouse.jobs.check import load_rules
from lakehouse.jobs.runtime import JobRun, run_job, timed
from lakehouse.transforms import enrich, quality
from lakehouse.transforms import privacy as privacy_transform
from lakehouse.transforms import silver as transform
from lakehouse.transforms.bronze import BRONZE_COLUMNS
from lakehouse.transforms.quality import Rule
from lakehouse.transforms.records import DISTINCT, QUARANTINE_COLUMNS, batch_facts

log = logging.getLogger("lakehouse.silver")

# Staged beside the silver and quarantine columns: what counting, dedupe and the reparse read.
STAGE_FLAGS = ("_row", "is_blank", "reason", "event_id", "event_date", "needs_reparse")
# Wide and only needed for rejected rows (quarantine keeps them; `reparse` parses them again).
RECORD_COLUMNS = ("value", "raw_value")
# File statistics on event_ts only: readers select silver by event_date (the partition),
# and min/max of every column cost about a third of the silver write.
SILVER_PROPERTIES = {"delta.dataSkippingStatsColumns": "event_ts"}


@dataclass(frozen=True)
class SilverSpec:
    """How one dataset becomes silver: its parser and what its silver rows hold.

    `dedupe_scope`: "date" when an event_id always comes with the same event date (a
    record's place in its source: the same place always holds the same bytes), so only
    those dates of silver are searched for it; "all" when the same id may come back with
    another time (a product view's own id), so all of silver is.
    """

    dataset: str
    parse: Callable[[DataFrame], DataFrame]
    silver_columns: tuple[str, ...]
    ip_column: str
    geo_columns: tuple[str, ...]
    winner_order: tuple[str, ...]
    dedupe_scope: str
    reparse: Callable[[DataFrame], DataFrame] | None = None


def _staged(rows: DataFrame, keep: set[str]) -> DataFrame:
    """The columns later steps read; the raw line only where quarantine or `reparse` needs it."""
    rejected = F.col("reason").isNotNull()
    return rows.select(
        *[F.when(rejected, F.col(c)).alias(c) if c in RECORD_COLUMNS else F.col(c) for c in rows.columns if c in keep]
    )


@dataclass
class StagedBatch:
    """A batch parsed into scratch Parquet, with its counts, dates and distinct lookup values."""

    rows: DataFrame
    counts: dict[str, int]  # read, skipped_blank, quarantined, valid
    dates: set[date]  # event_date of the valid rows
    values: dict[str, DataFrame]  # distinct values of each lookup column among the valid rows


def _facts(rows: DataFrame, lookups: dict[str, str], path: str) -> tuple[dict[str, int], set[date], dict[str, DataFrame]]:
    """Counts by kind, valid dates (small: collected) and lookup values (staged, never collected)."""
    staged = staging.write(batch_facts(rows, tuple(lookups.values())), path)
    counts: dict[str, int] = {}
    dates: set[date] = set()
    for fact, _column, value, count in staged.where(F.col("fact") != DISTINCT).collect():
        counts[fact] = counts.get(fact, 0) + count
        if fact == "valid" and value is not None:
            dates.add(date.fromisoformat(value))
    values = {
        name: staged.where((F.col("fact") == DISTINCT) & (F.col("column") == column)).select(F.col("value").alias(name))
        for name, column in lookups.items()
    }
    return counts, dates, values


def stage_parsed_rows(spec: SilverSpec, batch: DataFrame, staging_path: str, rules: tuple[Rule, ...] = ()) -> StagedBatch:
    """Parse the batch once into scratch Parquet; every later step reads that, never bronze.

    With `reparse`, the rows `parse` flagged `needs_reparse` are parsed again by it
    (on their bronze columns) and stored beside the others, replacing them.
    """
    # Every bronze column too: `reparse` parses flagged rows from their bronze columns.
    keep = {*BRONZE_COLUMNS, *spec.silver_columns, *QUARANTINE_COLUMNS, *spec.winner_order, *STAGE_FLAGS}
    lookups = {"ip": spec.ip_column}
    if "user_agent" in spec.silver_columns:  # IP sightings carry no user agent
        lookups["user_agent"] = "user_agent"
    table = f"silver/{spec.dataset}"
    parsed = quality.flag_rows(spec.parse(batch), list(rules), table).withColumn("_row", F.monotonically_increasing_id())
    with timed(log, "parse + stage"):
        staged = staging.write(_staged(parsed, keep), f"{staging_path}/rows")
    with timed(log, "facts"):
        counts, dates, values = _facts(staged, lookups, f"{staging_path}/facts")
    read = sum(counts.values())
    if spec.reparse is not None and counts.get("flagged"):
        flagged = staged.where(F.col("needs_reparse")).select(*BRONZE_COLUMNS, "_row")
        redone = quality.flag_rows(spec.reparse(flagged), list(rules), table).withColumn("needs_reparse", F.lit(False))
        with timed(log, "reparse of flagged rows"):
            redone = staging.write(_staged(redone, keep).select(*staged.columns), f"{staging_path}/reparsed")
            more_counts, more_dates, more_values = _facts(redone, lookups, f"{staging_path}/reparsed_facts")
        for kind, n in more_counts.items():
            counts[kind] = counts.get(kind, 0) + n
        dates |= more_dates
        values = {name: values[name].unionByName(more_values[name]) for name in values}
        staged = staged.where(~F.col("needs_reparse")).unionByName(redone)
    kinds = ("skipped_blank", "quarantined", "valid")
    return StagedBatch(staged, {"read": read, **{k: counts.get(k, 0) for k in kinds}}, dates, values)


def dimension_tables(spark: SparkSession, config: Config) -> tuple[dimensions.Dimension, dimensions.Dimension]:
    """The user-agent and GeoIP dimensions of this warehouse, with today's classifiers."""
    database = geoip.database_path(config.geoip_database)
    ua_classifier = enrich.user_agent_classifier()
    geo_classifier = geoip.build_of(database)
    opener = geoip.ship(spark, database)
    return (
        dimensions.Dimension(
            config.table_path("silver", "dim_user_agents"),
            "user_agent",
            ua_classifier,
            lambda values: enrich.classify_user_agents(values, ua_classifier),
        ),
        dimensions.Dimension(
            config.table_path("silver", "dim_ip_geo"),
            "ip",
            geo_classifier,
            lambda values: enrich.locate_ips(values, opener, geo_classifier),
        ),
    )


def write_silver_batch(
    spark: SparkSession,
    config: Config,
    spec: SilverSpec,
    batch: StagedBatch,
    txn: tuple[str, int],
    staging_path: str,
) -> dict[str, int]:
    """Write one staged batch: quarantine rows, then new deduped, enriched silver rows. Returns counts."""
    silver_path = config.table_path("silver", spec.dataset)
    counts = {k: batch.counts[k] for k in ("read", "skipped_blank", "quarantined")}
    now = F.lit(datetime.now(UTC))
    if counts["quarantined"]:
        with timed(log, "quarantine"):
            delta.append_once(transform.quarantine_rows(batch.rows, now), config.table_path("quarantine", spec.dataset), *txn)
    written = 0
    if batch.counts["valid"]:
        # Extract: the dimension rows of the batch's values (classifying new ones), silver's ids.
        agents_dim, ips_dim = dimension_tables(spark, config)
        agents, new_agents = None, 0
        if "user_agent" in batch.values:
            with timed(log, "user-agent dimension"):
                agents, new_agents = dimensions.lookup(spark, agents_dim, batch.values["user_agent"], f"{staging_path}/dim_ua")
        privacy = config.privacy
        if privacy.anonymises:
            # Located here and kept nowhere: the GeoIP dimension is keyed by the address.
            with timed(log, "GeoIP lookup"):
                places = staging.write(ips_dim.classify(batch.values["ip"]), f"{staging_path}/located")
            new_ips = 0
        else:
            with timed(log, "GeoIP dimension"):
                places, new_ips = dimensions.lookup(spark, ips_dim, batch.values["ip"], f"{staging_path}/dim_ip")
        counts.update(user_agents_classified=new_agents, ips_located=new_ips)
        by_date = spec.dedupe_scope == "date"
        seen = None
        if delta.table_exists(spark, silver_path):
            seen = delta.read_table(spark, silver_path)
            if by_date:
                seen = seen.where(F.col("event_date").isin(sorted(batch.dates)))
        # Transform.
        rows = transform.new_silver_rows(
            batch.rows,
            agents,
            places,
            seen,
            ip_column=spec.ip_column,
            geo_columns=spec.geo_columns,
            winner_order=spec.winner_order,
            silver_columns=spec.silver_columns,
            seen_by_date=by_date,
        )
        rows = privacy_transform.with_anonymised_ip(rows, spec.ip_column, privacy.ip_anonymisation, privacy.ip_hash_key)
        # Load.
        with timed(log, "dedupe + enrich + silver append"):
            delta.append_once(rows, silver_path, *txn, partition_by=("event_date",), properties=SILVER_PROPERTIES)
        written = int(delta.last_commit_metrics(spark, silver_path).get("numOutputRows", 0))
    counts["written"] = written
    counts["duplicates"] = batch.counts["valid"] - written
    return counts


BATCHES_SCHEMA = T.StructType(
    [T.StructField("dataset", T.StringType()), T.StructField("app_id", T.StringType()), T.StructField("batch_id", T.LongType())]
    + [T.StructField(k, T.LongType()) for k in ("read", "skipped_blank", "quarantined", "written", "duplicates")]
    + [T.StructField("recorded_at", T.TimestampType())]
)


def record_batch(spark: SparkSession, config: Config, dataset: str, counts: dict[str, int], txn: tuple[str, int]) -> None:
    """One row per silver micro-batch in `_meta/silver_batches` (what the reconciliation rule
    sums: blank lines skipped and duplicates dropped are rows no table keeps). Written with
    the batch's own id (`delta.append_once`), so a replayed batch is not counted twice."""
    row = (dataset, txn[0], txn[1], *(int(counts.get(k, 0)) for k in ("read", "skipped_blank", "quarantined", "written", "duplicates")),
           datetime.now(UTC).replace(tzinfo=None))
    delta.append_once(spark.createDataFrame([row], BATCHES_SCHEMA), config.table_path("_meta", "silver_batches"), *txn)


def run_silver(spark: SparkSession, config: Config, spec: SilverSpec, run_log: JobRun) -> None:
    """Parse, enrich and write every bronze/<dataset> row this job has not seen yet."""
    dataset = spec.dataset
    bronze = config.table_path("bronze", dataset)
    if not delta.table_exists(spark, bronze):
        log.info("no bronze/%s table yet: nothing to do", dataset)
        return

    parallelism = spark.sparkContext.defaultParallelism
    rules = tuple(load_rules(config))

    def handle(batch: DataFrame, batch_id: int, app_id: str) -> None:
        # One big bronze file (a gzip, or a compacted table) is one partition: spread it
        # over the cores, or parsing runs on one of them.
        if batch.rdd.getNumPartitions() < parallelism:
            batch = batch.repartition(parallelism)
        staging_path = f"{config.checkpoint(f'silver_{dataset}_staging')}/batch_{batch_id}"
        try:
            staged = stage_parsed_rows(spec, batch, staging_path, rules)
            counts = write_silver_batch(spark, config, spec, staged, (app_id, batch_id), staging_path)
            record_batch(spark, config, dataset, counts, (app_id, batch_id))
        finally:
            staging.remove(spark, staging_path)
        run_log.add(**counts)
        log.info("%s batch %d: %s", dataset, batch_id, ", ".join(f"{k}={v:,}" for k, v in counts.items()))

    delta.process_new_rows(spark, bronze, config.checkpoint(f"silver_{dataset}"), f"silver_{dataset}", handle)


def silver_main(dataset: str, run: Callable[[SparkSession, Config, JobRun], None], argv: list[str] | None) -> int:
    """The command line of a silver job."""
    name = f"silver-{dataset.replace('_', '-')}"

    def body(spark: SparkSession, config: Config, run_log: JobRun, _args) -> None:
        run_log.job = f"silver {dataset}"
        run(spark, config, run_log)

    return run_job(name, f"Bronze {dataset} -> silver + quarantine.", body, argv)


def main(argv: list[str] | None = None) -> int:
    """`--dataset D [the feed's options]`: the silver step of feed D."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "--dataset" not in args or args.index("--dataset") + 1 >= len(args):
        print(f"lakehouse silver: --dataset {'|'.join(NAMES)} is required", file=sys.stderr)
        return 2
    i = args.index("--dataset")
    dataset, rest = args[i + 1], args[:i] + args[i + 2 :]
    if dataset not in NAMES:
        print(f"lakehouse silver: unknown dataset {dataset!r}: expected one of {', '.join(NAMES)}", file=sys.stderr)
        return 2
    return import_module(f"lakehouse.feeds.{dataset}.silver").main(rest)


if __name__ == "__main__":
    sys.exit(main())
