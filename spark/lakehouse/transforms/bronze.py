"""The bronze shape: raw records + source metadata, the same columns whatever the source.

Files give `value` per line, `source_file*` and the line's place (`source_file_id`,
`source_line`); Kafka gives `value` per message and `topic`/`partition`/`offset`/
`kafka_ts`/`key`. One rule for bytes that are not valid UTF-8, whatever the source: the
record is stored with `value` made valid (bad bytes replaced by U+FFFD) AND its exact
bytes in `raw_value`, so bronze keeps it untouched (silver quarantines it, bytes and
all); `raw_value` is null otherwise, which keeps bronze small for the normal case.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

BRONZE_SCHEMA = T.StructType(
    [
        T.StructField("value", T.StringType()),
        T.StructField("raw_value", T.BinaryType()),
        T.StructField("key", T.StringType()),
        T.StructField("topic", T.StringType()),
        T.StructField("partition", T.IntegerType()),
        T.StructField("offset", T.LongType()),
        T.StructField("kafka_ts", T.TimestampType()),
        T.StructField("source_file", T.StringType()),
        T.StructField("source_file_size", T.LongType()),
        T.StructField("source_file_mtime", T.TimestampType()),
        T.StructField("source_file_id", T.StringType()),
        T.StructField("source_line", T.LongType()),
        T.StructField("ingested_at", T.TimestampType()),
        T.StructField("ingest_date", T.DateType()),
    ]
)
BRONZE_COLUMNS = tuple(BRONZE_SCHEMA.fieldNames())

# Delta table properties of every bronze table. File statistics only on the columns
# readers select by (a record's place): min/max of `value` (every record's text) would
# cost CPU on every write and nothing filters on it. A checkpoint every 100 commits: the
# stream commits a micro-batch a second, and each checkpoint rewrites the table's state.
BRONZE_PROPERTIES = {
    "delta.checkpointInterval": "100",
    "delta.dataSkippingStatsColumns": "partition,offset,kafka_ts,source_file_id,source_line,ingested_at",
}


def with_ingest_columns(df: DataFrame, ingested_at: Column) -> DataFrame:
    """Stamp rows with `ingested_at` (the job's clock, given) and `ingest_date` (the bronze partition)."""
    return df.withColumn("ingested_at", ingested_at.cast("timestamp")).withColumn(
        "ingest_date", F.to_date(F.col("ingested_at"))
    )


def _text_and_bytes(raw: Column) -> tuple[Column, Column]:
    """(`value`, `raw_value`) of a record read as `raw` (string or binary)."""
    # The repair (a copy of the text) only for the few records that need it.
    valid = F.is_valid_utf8(raw)
    text = F.when(valid, raw.cast("string")).otherwise(F.make_valid_utf8(raw))
    return text.alias("value"), F.when(~valid, raw.cast("binary")).alias("raw_value")


def from_file_lines(df: DataFrame, ingested_at: Column) -> DataFrame:
    """Numbered file lines (`value`, `source_file*`, `source_file_id`, `source_line`) -> bronze rows."""
    return df.select(
        *_text_and_bytes(F.col("value")),
        F.lit(None).cast("string").alias("key"),
        F.lit(None).cast("string").alias("topic"),
        F.lit(None).cast("int").alias("partition"),
        F.lit(None).cast("bigint").alias("offset"),
        F.lit(None).cast("timestamp").alias("kafka_ts"),
        F.col("source_file"),
        F.col("source_file_size").cast("bigint"),
        F.col("source_file_mtime").cast("timestamp"),
        F.col("source_file_id"),
        F.col("source_line").cast("bigint"),
    ).transform(lambda d: with_ingest_columns(d, ingested_at))


def from_kafka(df: DataFrame, ingested_at: Column) -> DataFrame:
    """Rows of Spark's Kafka source -> bronze rows (nothing dropped, nothing reinterpreted)."""
    return df.select(
        *_text_and_bytes(F.col("value")),
        F.make_valid_utf8(F.col("key")).alias("key"),
        F.col("topic"),
        F.col("partition"),
        F.col("offset"),
        F.col("timestamp").alias("kafka_ts"),
        F.lit(None).cast("string").alias("source_file"),
        F.lit(None).cast("bigint").alias("source_file_size"),
        F.lit(None).cast("timestamp").alias("source_file_mtime"),
        F.lit(None).cast("string").alias("source_file_id"),
        F.lit(None).cast("bigint").alias("source_line"),
    ).transform(lambda d: with_ingest_columns(d, ingested_at))
