"""MongoDB documents -> bronze rows (lakehouse.transforms.mongo_docs): pure, no server."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

from bson import Decimal128, ObjectId
from bson.datetime_ms import DatetimeMS
from pyspark.sql import functions as F

from lakehouse.transforms.bronze import BRONZE_COLUMNS
from lakehouse.transforms.mongo_docs import (
    DOCUMENT_SCHEMA,
    document_json,
    document_key,
    document_line,
    document_row,
    from_mongo_documents,
    iso_utc,
    source_id,
)

SEED_DOC = {
    "_id": ObjectId("6543a1b2c3d4e5f601234567"),
    "product_id": "12345",
    "device_id": "device-abc-123",
    "store_id": "US",
    "referrer_url": "https://google.com",
    "local_time": "2025-10-31 03:22:11",
    "remote_ip": "192.168.1.1",
    "timestamp": "2025-10-31T03:22:11Z",
}


def test_a_seed_document_keeps_its_fields_in_order_with_the_object_id_as_hex():
    assert document_json(SEED_DOC) == (
        '{"_id":"6543a1b2c3d4e5f601234567","product_id":"12345","device_id":"device-abc-123",'
        '"store_id":"US","referrer_url":"https://google.com","local_time":"2025-10-31 03:22:11",'
        '"remote_ip":"192.168.1.1","timestamp":"2025-10-31T03:22:11Z"}'
    )


def test_datetimes_become_iso_utc_whatever_their_zone():
    assert iso_utc(datetime(2025, 10, 31, 3, 22, 11, tzinfo=UTC)) == "2025-10-31T03:22:11Z"
    assert iso_utc(datetime(2025, 10, 31, 5, 22, 11, 123000, tzinfo=timezone(timedelta(hours=2)))) == "2025-10-31T03:22:11.123Z"
    assert iso_utc(datetime(2025, 10, 31, 3, 22, 11)) == "2025-10-31T03:22:11Z"  # naive: pymongo's UTC


def test_nested_and_non_json_bson_values_are_kept():
    doc = {
        "_id": ObjectId("6543a1b2c3d4e5f601234567"),
        "timestamp": datetime(2025, 10, 31, 3, 22, 11, tzinfo=UTC),
        "option": [{"id": ObjectId("6543a1b2c3d4e5f6012345ff"), "at": datetime(2025, 1, 2, tzinfo=UTC)}],
        "price": Decimal128("19.99"),
        "ratio": float("nan"),
        "far": DatetimeMS(253402300800000),  # year 10000: no Python datetime
        "name": "café ☕",
        "n": 7,
        "none": None,
    }
    assert json.loads(document_json(doc)) == {
        "_id": "6543a1b2c3d4e5f601234567",
        "timestamp": "2025-10-31T03:22:11Z",
        "option": [{"id": "6543a1b2c3d4e5f6012345ff", "at": "2025-01-02T00:00:00Z"}],
        "price": {"$numberDecimal": "19.99"},
        "ratio": {"$numberDouble": "NaN"},
        "far": {"$date": {"$numberLong": "253402300800000"}},
        "name": "café ☕",
        "n": 7,
        "none": None,
    }
    assert "café ☕" in document_json(doc)  # text kept as UTF-8, not \\u escapes


def test_keys_tell_id_types_apart_and_lines_are_stable():
    assert document_key(ObjectId("6543a1b2c3d4e5f601234567")) == "6543a1b2c3d4e5f601234567"
    assert document_key("abc") == "abc"
    assert document_key(7) == '{"$numberInt": "7"}'
    assert document_key(7) != document_key("7")
    # sha-256("abc") starts 0xba7816bf8f01cfea; shifted right by one bit: 63 bits, never negative.
    assert document_line("abc") == 0xBA7816BF8F01CFEA >> 1
    assert document_row(SEED_DOC)[1:] == ("6543a1b2c3d4e5f601234567", document_line("6543a1b2c3d4e5f601234567"))


def test_source_id_is_the_collection_not_the_server():
    assert source_id("kafka_data_db", "product_views_records") == "0:mongodb:kafka_data_db.product_views_records"


def test_from_mongo_documents_gives_bronze_rows(spark):
    docs = spark.createDataFrame([('{"_id":"a"}', "a", 5)], DOCUMENT_SCHEMA)
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    out = from_mongo_documents(docs, "mongodb://h:1/db.c", "0:mongodb:db.c", F.lit(at))
    assert tuple(out.columns) == BRONZE_COLUMNS
    row = out.first().asDict()
    assert row == {
        "value": '{"_id":"a"}',
        "raw_value": None,
        "key": "a",
        "topic": None,
        "partition": None,
        "offset": None,
        "kafka_ts": None,
        "source_file": "mongodb://h:1/db.c",
        "source_file_size": 0,
        "source_file_mtime": datetime(1970, 1, 1),
        "source_file_id": "0:mongodb:db.c",
        "source_line": 5,
        "ingested_at": datetime(2026, 1, 2, 3, 4, 5),
        "ingest_date": at.date(),
    }
