"""MongoDB reads: the collection's `_id` range boundaries (driver) and the documents of a
range (executors), with `pymongo`.

The driver only ever asks for a few `_id`s (one per range): the server walks the `_id`
index to the n-th key (`skip`), which on MongoDB reads index keys, not documents. The
documents are read on the executors: each Spark task opens its own connection and reads
its own `(lo, hi]` range of `_id`s, so nothing whose size grows with the collection
passes through the driver.

Ranges are bounded by `_id` values, so they assume one BSON type of `_id` per collection
(ObjectId in seed 004): MongoDB compares `$gt`/`$lte` within one type only.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

from bson import json_util
from pyspark.sql import DataFrame, SparkSession

from lakehouse.transforms.mongo_docs import DOCUMENT_SCHEMA, document_row

DEFAULT_TIMEOUT_MS = 5000
# Documents per getMore of a range read, and rows per Arrow batch handed to Spark.
CURSOR_BATCH = 2000
ARROW_ROWS = 10_000


class MongoSourceError(RuntimeError):
    """The collection cannot be read: server unreachable, login refused, no such database or
    collection. The message names the server without credentials."""


@dataclass(frozen=True)
class MongoSource:
    """One collection to read: the connection URI (may hold a password: never printed) and where."""

    uri: str = field(repr=False)
    database: str
    collection: str
    timeout_ms: int = DEFAULT_TIMEOUT_MS

    @property
    def server(self) -> str:
        """The server part of the URI without credentials or options: `mongodb://host:port`."""
        return redact(self.uri)

    @property
    def name(self) -> str:
        """What bronze's `source_file` says: `mongodb://host:port/db.collection`."""
        return f"{self.server}/{self.database}.{self.collection}"

    def __repr__(self) -> str:  # the dataclass repr would only hide the uri: show where instead
        return f"MongoSource({self.name})"


def redact(uri: str) -> str:
    """`mongodb://user:secret@h1:27017,h2/db?opts` -> `mongodb://h1:27017,h2`.

    By hand rather than `pymongo.uri_parser.parse_uri`: that resolves `mongodb+srv://`
    names in DNS, and a message about an unreachable server must not need the network.
    """
    scheme, sep, rest = uri.partition("://")
    if not sep:
        return "<not a mongodb:// URI>"
    # Credentials end at the last `@`: a password may hold `/`, `?` or `@` unescaped (so the
    # first `/` or `?` is no safe end of them), a host name never holds `@`.
    hosts = rest.rpartition("@")[2]
    return f"{scheme}://{re.split(r'[/?]', hosts, maxsplit=1)[0]}"


def client(source: MongoSource) -> Any:
    """A pymongo client for `source`: timezone-aware UTC datetimes, out-of-range dates kept."""
    import pymongo
    from bson.codec_options import DatetimeConversion

    return pymongo.MongoClient(
        source.uri,
        serverSelectionTimeoutMS=source.timeout_ms,
        connectTimeoutMS=source.timeout_ms,
        tz_aware=True,
        tzinfo=UTC,
        # A date before year 1 or after 9999 comes back as DatetimeMS instead of failing the read.
        datetime_conversion=DatetimeConversion.DATETIME_AUTO,
        appname="lakehouse-ingest-mongo",
    )


def open_collection(source: MongoSource) -> Any:
    """The pymongo collection of `source`, after checking that the server answers and that
    the database and the collection exist (a MongoSourceError saying which does not)."""
    from pymongo.errors import (
        ConfigurationError,
        OperationFailure,
        PyMongoError,
        ServerSelectionTimeoutError,
    )

    try:
        mongo = client(source)
    except (ConfigurationError, ValueError) as error:
        raise MongoSourceError(f"invalid MongoDB URI for {source.server}: {error}") from None
    try:
        mongo.admin.command("ping")
        try:
            databases = mongo.list_database_names()
        except OperationFailure:  # no listDatabases right: ask the database itself
            databases = None
        if databases is not None and source.database not in databases:
            raise MongoSourceError(
                f"database {source.database!r} not found on {source.server} (it has: {', '.join(sorted(databases)) or 'none'})"
            )
        collections = mongo[source.database].list_collection_names()
    except ServerSelectionTimeoutError:
        mongo.close()
        raise MongoSourceError(
            f"MongoDB at {source.server} is unreachable (no answer within {source.timeout_ms} ms)"
        ) from None
    except OperationFailure as error:
        mongo.close()
        raise MongoSourceError(f"MongoDB at {source.server} refused the request: {error.details and error.details.get('errmsg') or error}") from None
    except PyMongoError as error:
        mongo.close()
        raise MongoSourceError(f"MongoDB at {source.server}: {type(error).__name__}: {error}") from None
    if source.collection not in collections:
        mongo.close()
        raise MongoSourceError(
            f"collection {source.collection!r} not found in database {source.database!r} on {source.server} "
            f"(it has: {', '.join(sorted(collections)) or 'none'})"
        )
    return mongo[source.database][source.collection]


# --- _id bounds -------------------------------------------------------------------------
# A bound is kept as canonical Extended JSON text (`{"$oid": "..."}`): it survives a round
# trip through a Delta table and a Spark task unchanged, whatever the _id's BSON type.


def encode_id(value: Any) -> str:
    return json_util.dumps(value, json_options=json_util.CANONICAL_JSON_OPTIONS)


def decode_id(text: str) -> Any:
    return json_util.loads(text)


def id_filter(after: Any | None, upto: Any | None) -> dict:
    """The query of the `_id` range (after, upto]; an open end where a bound is None."""
    condition = {}
    if after is not None:
        condition["$gt"] = after
    if upto is not None:
        condition["$lte"] = upto
    return {"_id": condition} if condition else {}


def nth_id_after(collection: Any, after: Any | None, n: int) -> Any | None:
    """The `n`-th `_id` (in `_id` order) after `after` (from the start when None), or None
    when fewer than `n` documents follow it."""
    cursor = collection.find(id_filter(after, None), {"_id": 1}).sort("_id", 1).skip(n - 1).limit(1)
    found = next(iter(cursor), None)
    return None if found is None else found["_id"]


def last_id_after(collection: Any, after: Any | None) -> Any | None:
    """The highest `_id` after `after`, or None when no document follows it."""
    found = collection.find_one(id_filter(after, None), {"_id": 1}, sort=[("_id", -1)])
    return None if found is None else found["_id"]


def plan_bounds(collection: Any, after: Any | None, sizes: list[int]) -> tuple[list[Any], bool]:
    """Upper `_id` bounds of consecutive ranges of `sizes[i]` documents after `after`, and
    whether the collection ended inside them. The ranges are (after, b0], (b0, b1], ...;
    when the collection ends first there are fewer, the last one shorter (it ends at the
    highest `_id`). No bounds when no document follows `after`."""
    bounds: list[Any] = []
    lo = after
    for size in sizes:
        bound = nth_id_after(collection, lo, size)
        if bound is None:
            last = last_id_after(collection, lo)
            if last is not None:
                bounds.append(last)
            return bounds, True
        bounds.append(bound)
        lo = bound
    return bounds, False


def estimated_count(collection: Any) -> int:
    """The collection's document count from its metadata (cheap; may lag a live collection)."""
    return int(collection.estimated_document_count())


# --- reading on the executors -----------------------------------------------------------


def _read_ranges(source: MongoSource, ranges: list[tuple[str | None, str]], batches: Iterator[Any]) -> Iterator[Any]:
    """mapInArrow body: for each range index of the incoming batches, that range's documents
    as Arrow batches of `DOCUMENT_SCHEMA` rows. Runs in a Spark task, with its own client."""
    import pyarrow as pa

    schema = pa.schema([("value", pa.string()), ("key", pa.string()), ("source_line", pa.int64())])
    mongo = client(source)
    try:
        collection = mongo[source.database][source.collection]
        for batch in batches:
            for index in batch.column(0).to_pylist():
                after, upto = ranges[index]
                query = id_filter(None if after is None else decode_id(after), decode_id(upto))
                values: list[str] = []
                keys: list[str] = []
                lines: list[int] = []
                for document in collection.find(query).batch_size(CURSOR_BATCH):
                    value, key, line = document_row(document)
                    values.append(value)
                    keys.append(key)
                    lines.append(line)
                    if len(values) >= ARROW_ROWS:
                        yield pa.RecordBatch.from_arrays([pa.array(values), pa.array(keys), pa.array(lines, pa.int64())], schema=schema)
                        values, keys, lines = [], [], []
                if values:
                    yield pa.RecordBatch.from_arrays([pa.array(values), pa.array(keys), pa.array(lines, pa.int64())], schema=schema)
    finally:
        mongo.close()


def read_documents(spark: SparkSession, source: MongoSource, ranges: list[tuple[str | None, str]]) -> DataFrame:
    """The documents of the given `_id` ranges ((after, upto] as Extended JSON text) as rows of
    `DOCUMENT_SCHEMA`: one Spark task per range, each reading its range from MongoDB."""
    # One partition per range: task i reads range i.
    indexes = spark.range(0, len(ranges), 1, max(len(ranges), 1))
    return indexes.mapInArrow(functools.partial(_read_ranges, source, list(ranges)), DOCUMENT_SCHEMA)
