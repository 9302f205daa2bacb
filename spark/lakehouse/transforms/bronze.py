"""The bronze shape: raw records + source metadata, the same columns whatever the source.

Files give `value` per line and `source_file*`; Kafka gives `value` per message and
`topic`/`partition`/`offset`/`kafka_ts`/`key`. A Kafka message that is not valid UTF-8
is stored with `value` made valid (bad bytes replaced by U+FFFD) AND its exact bytes in
`raw_value`, so bronze keeps the message untouched; `raw_value` is null otherwise, which
keeps bronze small for the normal case.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

BRONZE_COLUMNS = (
    "value",
    "raw_value",
    "key",
    "topic",
    "partition",
    "offset",
    "kafka_ts",
    "source_file",
    "source_file_size",
    "source_file_mtime",
    "ingested_at",
    "ingest_date",
)


def with_ingest_columns(df: DataFrame) -> DataFrame:
    """Stamp rows with `ingested_at` and `ingest_date` (the bronze partition)."""
    return df.withColumn("ingested_at", F.current_timestamp()).withColumn(
        "ingest_date", F.to_date(F.col("ingested_at"))
    )


def from_kafka(df: DataFrame) -> DataFrame:
    """Rows of Spark's Kafka source -> bronze rows (nothing dropped, nothing reinterpreted)."""
    raw = F.col("value")
    valid = F.is_valid_utf8(raw)
    return df.select(
        F.make_valid_utf8(raw).alias("value"),
        F.when(~valid, raw).alias("raw_value"),
        F.make_valid_utf8(F.col("key")).alias("key"),
        F.col("topic"),
        F.col("partition"),
        F.col("offset"),
        F.col("timestamp").alias("kafka_ts"),
        F.lit(None).cast("string").alias("source_file"),
        F.lit(None).cast("bigint").alias("source_file_size"),
        F.lit(None).cast("timestamp").alias("source_file_mtime"),
    ).transform(with_ingest_columns)
