"""MongoDB documents -> bronze product-view rows (pure: no connection, no Spark session).

A seed-004 collection (`kafka_data_db.product_views_records`) holds one product view per
document. Each becomes one bronze row whose `value` is the JSON text silver's product-view
parser reads (`transforms.product_views`): the document's own fields, with the BSON types
JSON lacks written the way that parser expects them:

- `ObjectId` -> its 24-character hex string (so `_id` becomes the silver `event_id`),
- datetimes -> ISO-8601 UTC text (`2025-10-31T03:22:11Z`, milliseconds when present),
- everything else JSON has no word for (binary, decimals, regexes, ...) -> MongoDB's
  relaxed Extended JSON (`{"$numberDecimal": "1.5"}`), so nothing is dropped.

Fields silver does not model (extra ones) stay in the JSON: silver keeps them in `extra`.

A document's identity in bronze is its source and its `_id`: `source_file` names the
collection (`mongodb://host:port/db.collection`, never credentials), `source_file_id` is
a stable id of `db.collection`, `key` is the `_id` as text and `source_line` a number
derived from it, so reading the same document again gives the same identity.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from bson import json_util
from bson.datetime_ms import DatetimeMS
from bson.objectid import ObjectId
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.transforms.bronze import BRONZE_COLUMNS, with_ingest_columns

# What a reading task yields per document; `from_mongo_documents` adds the rest of bronze.
DOCUMENT_SCHEMA = T.StructType(
    [
        T.StructField("value", T.StringType()),
        T.StructField("key", T.StringType()),
        T.StructField("source_line", T.LongType()),
    ]
)


def source_id(database: str, collection: str) -> str:
    """The stable `source_file_id` of a collection: `0:mongodb:<database>.<collection>`.

    Written in the shape of a file fingerprint (`<bytes hashed>:<digest>`, see
    `transforms.file_identity`) with 0 bytes hashed: file ingest, which reads every
    `source_file_id` of bronze and matches files only on fingerprints of n > 0 bytes,
    never takes a collection for the start of a file (and does not choke on the id).
    Independent of the host: the same collection reached at another address (a replica,
    a moved server) is the same source.
    """
    return f"0:mongodb:{database}.{collection}"


def _to_json(value: Any) -> Any:
    """A BSON value as JSON-ready Python (see the module docstring for the mapping)."""
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, float):
        # JSON has no NaN/Infinity; relaxed Extended JSON writes {"$numberDouble": "NaN"}.
        return value if math.isfinite(value) else {"$numberDouble": repr(value).replace("inf", "Infinity").replace("nan", "NaN")}
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, DatetimeMS):
        # A date outside Python's datetime range (year 0 or > 9999): epoch milliseconds.
        return {"$date": {"$numberLong": str(int(value))}}
    if isinstance(value, Mapping):
        return {str(k): _to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_json(v) for v in value]
    # Binary, Decimal128, Regex, Timestamp, Code, MinKey/MaxKey, DBRef, UUID, Int64 (an
    # int subclass, handled above): pymongo's own Extended JSON writer knows them all.
    return json.loads(json_util.dumps(value, json_options=json_util.RELAXED_JSON_OPTIONS))


def iso_utc(value: datetime) -> str:
    """ISO-8601 UTC text of a BSON datetime (naive = UTC, as pymongo returns them by default)."""
    utc = value.astimezone(UTC) if value.tzinfo is not None else value
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:  # BSON dates carry milliseconds
        text += f".{utc.microsecond // 1000:03d}"
    return text + "Z"


def document_json(document: Mapping[str, Any]) -> str:
    """The document as one line of JSON in its own field order (`value` of its bronze row)."""
    return json.dumps(_to_json(document), ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def document_key(document_id: Any) -> str:
    """A document's `_id` as text (bronze `key`): the hex of an ObjectId, a string as it is,
    anything else as canonical Extended JSON (`{"$numberInt": "7"}`: 7 and "7" differ)."""
    if isinstance(document_id, ObjectId):
        return str(document_id)
    if isinstance(document_id, str):
        return document_id
    return json_util.dumps(document_id, json_options=json_util.CANONICAL_JSON_OPTIONS)


def document_line(key: str) -> int:
    """A stable, non-negative 63-bit number of a document (bronze `source_line`) from its key.

    A document has no line number: its `_id` is its place. Bronze readers order copies of
    a record by (`source_file_id`, `source_line`), so the number must be the same on every
    read of the document; 63 bits of the key's SHA-256 are (the key stays the identity).
    """
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") >> 1


def document_row(document: Mapping[str, Any]) -> tuple[str, str, int]:
    """(`value`, `key`, `source_line`) of one document: its row of `DOCUMENT_SCHEMA`."""
    key = document_key(document.get("_id"))
    return document_json(document), key, document_line(key)


# The file columns of a collection's rows. File ingest reads (size, mtime) of every
# `source_file` in bronze as numbers; a collection has neither, so both are fixed values
# (0 bytes, the epoch) rather than nulls it would fail on.
COLLECTION_SIZE = 0
COLLECTION_MTIME_SECONDS = 0


def from_mongo_documents(df: DataFrame, source_file: str, file_id: str, ingested_at: Column) -> DataFrame:
    """Rows of `DOCUMENT_SCHEMA` read from one collection -> bronze rows (`BRONZE_COLUMNS`)."""
    rows = df.select(
        F.col("value"),
        F.lit(None).cast("binary").alias("raw_value"),
        F.col("key"),
        F.lit(None).cast("string").alias("topic"),
        F.lit(None).cast("int").alias("partition"),
        F.lit(None).cast("bigint").alias("offset"),
        F.lit(None).cast("timestamp").alias("kafka_ts"),
        F.lit(source_file).alias("source_file"),
        F.lit(COLLECTION_SIZE).cast("bigint").alias("source_file_size"),
        F.timestamp_seconds(F.lit(COLLECTION_MTIME_SECONDS)).alias("source_file_mtime"),
        F.lit(file_id).alias("source_file_id"),
        F.col("source_line").cast("bigint"),
    ).transform(lambda d: with_ingest_columns(d, ingested_at))
    return rows.select(*BRONZE_COLUMNS)
