"""MongoDB -> bronze (lakehouse ingest-mongo) against a real MongoDB-wire server (FerretDB).

The run's FerretDB (tests/stack.py); each test writes its own database and gets its own
warehouse, so no test depends on another.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime
from pathlib import Path

import pymongo
import pytest
from bson import ObjectId
from pyspark.sql import functions as F

from lakehouse.feeds.product_views import silver as silver_product_views
from lakehouse.io import delta, mongo
from lakehouse.io.mongo import MongoSource, MongoSourceError
from lakehouse.jobs import ingest_mongo
from lakehouse.jobs.ingest_files import ingest as ingest_files
from lakehouse.jobs.runtime import JobRun
from tests.conftest import free_ports

pytestmark = pytest.mark.services

COLLECTION = "product_views_records"
SOURCE_ID = "0:mongodb:{db}.product_views_records"


def oid(n: int) -> ObjectId:
    return ObjectId(f"65f0000000000000000000{n:02x}")


# Seed 004's documents: ObjectId ids, ISO `timestamp` (text or BSON date), epoch
# `time_stamp`, a numeric product_id, extra fields, one without product_id.
DOCS = [
    {"_id": oid(1), "product_id": "12345", "device_id": "device-abc-123", "store_id": "US", "referrer_url": "https://google.com",
     "local_time": "2025-10-31 03:22:11", "remote_ip": "192.168.1.1", "timestamp": "2025-10-31T03:22:11Z"},
    {"_id": oid(2), "product_id": "p-2", "device_id": "d-2", "store_id": "VN", "referrer_url": "https://www.Example.com/page?q=1",
     "timestamp": datetime(2025, 10, 31, 3, 0, 0, 500000, tzinfo=UTC), "campaign": "autumn", "tags": ["a", "b"]},
    {"_id": oid(3), "product_id": 42, "device_id": "d-3", "time_stamp": 1761876000},
    {"_id": oid(4), "device_id": "d-4", "timestamp": "2025-10-31T04:00:00Z"},
    {"_id": oid(5), "product_id": "p-5", "device_id": "d-5", "timestamp": "2025-10-31T07:30:00+02:00",
     "cart": {"items": 2, "coupon": oid(0xAA)}},
    {"_id": oid(6), "product_id": "p-6", "device_id": "d-6", "timestamp": "2025-11-01T00:00:01Z"},
]

# (key, value) of each document's bronze row: ObjectIds as hex, the BSON date as ISO UTC.
VALUES = [
    ("65f000000000000000000001", '{"_id":"65f000000000000000000001","product_id":"12345","device_id":"device-abc-123",'
     '"store_id":"US","referrer_url":"https://google.com","local_time":"2025-10-31 03:22:11","remote_ip":"192.168.1.1",'
     '"timestamp":"2025-10-31T03:22:11Z"}'),
    ("65f000000000000000000002", '{"_id":"65f000000000000000000002","product_id":"p-2","device_id":"d-2","store_id":"VN",'
     '"referrer_url":"https://www.Example.com/page?q=1","timestamp":"2025-10-31T03:00:00.500Z","campaign":"autumn",'
     '"tags":["a","b"]}'),
    ("65f000000000000000000003", '{"_id":"65f000000000000000000003","product_id":42,"device_id":"d-3","time_stamp":1761876000}'),
    ("65f000000000000000000004", '{"_id":"65f000000000000000000004","device_id":"d-4","timestamp":"2025-10-31T04:00:00Z"}'),
    ("65f000000000000000000005", '{"_id":"65f000000000000000000005","product_id":"p-5","device_id":"d-5",'
     '"timestamp":"2025-10-31T07:30:00+02:00","cart":{"items":2,"coupon":"65f0000000000000000000aa"}}'),
    ("65f000000000000000000006", '{"_id":"65f000000000000000000006","product_id":"p-6","device_id":"d-6",'
     '"timestamp":"2025-11-01T00:00:01Z"}'),
]

_databases = itertools.count()


@pytest.fixture
def server(stack):
    return stack.ferretdb


@pytest.fixture
def source(server):
    """A fresh database holding DOCS (inserted out of order: the backfill goes by _id)."""
    database = f"shop_{next(_databases)}"
    with pymongo.MongoClient(server.uri, serverSelectionTimeoutMS=5000) as client:
        client[database][COLLECTION].insert_many([DOCS[i] for i in (3, 0, 5, 1, 4, 2)])
    return MongoSource(server.uri, database, COLLECTION)


def insert(source: MongoSource, docs: list[dict]) -> None:
    with pymongo.MongoClient(source.uri, serverSelectionTimeoutMS=5000) as client:
        client[source.database][source.collection].insert_many(docs)


def backfill(spark, config, source, batch_size=2) -> JobRun:
    run = JobRun("ingest-mongo")
    ingest_mongo.ingest(spark, config, source, batch_size, run, cores=2)
    return run


def bronze(spark, config):
    return delta.read_table(spark, config.table_path("bronze", "product_views"))


def versions(spark, config) -> tuple[int | None, int | None]:
    return (
        delta.table_version(spark, config.table_path("bronze", "product_views")),
        delta.table_version(spark, config.table_path("_meta", "mongo_ingest_chunks")),
    )


def test_each_document_lands_once_as_a_row_silver_parses(spark, warehouse_config, source, server):
    run = backfill(spark, warehouse_config, source)
    # 6 documents, chunks of 2 (one per range, two ranges per chunk): 3 commits.
    assert run.counts == {"mongo_chunks": 3, "product_views_docs": 6, "mongo_docs_in_collection": 6, "mongo_docs_in_bronze": 6}
    name = f"mongodb://127.0.0.1:{server.port}/{source.database}.{COLLECTION}"
    rows = bronze(spark, warehouse_config).orderBy("key").collect()
    assert [(r.key, r.value) for r in rows] == VALUES
    assert {(r.source_file, r.source_file_id, r.source_file_size, r.topic, r.raw_value) for r in rows} == {
        (name, SOURCE_ID.format(db=source.database), 0, None, None)
    }
    # The number derived from the _id: 63 bits of sha-256 of the key, the same on every read.
    assert rows[0].source_line == 0x0233BA21FE40F86A >> 1
    assert len({r.source_line for r in rows}) == 6

    silver_product_views.run(spark, warehouse_config, JobRun("silver"))
    silver = (
        delta.read_table(spark, warehouse_config.table_path("silver", "product_views"))
        .select("event_id", "product_id", "device_id", "store_id", "referrer_host", "event_ts", "event_date", "extra", "source_file")
        .orderBy("event_id")
        .collect()
    )
    assert [tuple(r) for r in silver] == [
        ("65f000000000000000000001", "12345", "device-abc-123", "US", "google.com", datetime(2025, 10, 31, 3, 22, 11), date(2025, 10, 31), None, name),
        ("65f000000000000000000002", "p-2", "d-2", "VN", "www.example.com", datetime(2025, 10, 31, 3, 0, 0, 500000), date(2025, 10, 31),
         '{"campaign":"autumn","tags":"[\\"a\\",\\"b\\"]"}', name),
        ("65f000000000000000000003", "42", "d-3", None, None, datetime(2025, 10, 31, 2, 0, 0), date(2025, 10, 31), None, name),
        ("65f000000000000000000005", "p-5", "d-5", None, None, datetime(2025, 10, 31, 5, 30, 0), date(2025, 10, 31),
         '{"cart":"{\\"items\\":2,\\"coupon\\":\\"65f0000000000000000000aa\\"}"}', name),
        ("65f000000000000000000006", "p-6", "d-6", None, None, datetime(2025, 11, 1, 0, 0, 1), date(2025, 11, 1), None, name),
    ]
    quarantine = delta.read_table(spark, warehouse_config.table_path("quarantine", "product_views"))
    assert [tuple(r) for r in quarantine.select("value", "reason", "source_file", "source_file_id").collect()] == [
        (VALUES[3][1], "missing product_id", name, SOURCE_ID.format(db=source.database))
    ]


@pytest.mark.parametrize("crash", ["before_commit", "after_commit"])
def test_a_crash_mid_backfill_then_reruns_give_every_document_once(spark, warehouse_config, source, monkeypatch, crash):
    table = warehouse_config.table_path("bronze", "product_views")
    real_append = delta.append

    def crashing_append(df, path, *args, txn=None, **kwargs):
        # The second chunk (number 1) of bronze: die before, or right after, its commit.
        if path == table and txn is not None and txn[1] == 1:
            if crash == "after_commit":
                real_append(df, path, *args, txn=txn, **kwargs)
            raise KeyboardInterrupt(f"killed {crash}")
        return real_append(df, path, *args, txn=txn, **kwargs)

    monkeypatch.setattr(delta, "append", crashing_append)
    with pytest.raises(KeyboardInterrupt):
        backfill(spark, warehouse_config, source)
    monkeypatch.setattr(delta, "append", real_append)
    keys = [k for k, _v in VALUES]
    expected_in = keys[:4] if crash == "after_commit" else keys[:2]
    assert sorted(r.key for r in bronze(spark, warehouse_config).collect()) == expected_in

    # Meanwhile a new view arrives (a new ObjectId: after every _id read so far).
    insert(source, [{"_id": oid(7), "product_id": "p-7", "device_id": "d-7", "timestamp": "2025-11-01T09:00:00Z"}])
    run = backfill(spark, warehouse_config, source)
    if crash == "after_commit":  # chunk 1 is skipped by Delta, chunk 2 and the new one written
        assert run.counts == {"mongo_chunks_already_in": 1, "mongo_chunks": 2, "product_views_docs": 3,
                              "mongo_docs_in_collection": 7, "mongo_docs_in_bronze": 7}
    else:  # chunk 1 is written with the ranges recorded before the crash, then the rest
        assert run.counts == {"mongo_chunks": 3, "product_views_docs": 5, "mongo_docs_in_collection": 7, "mongo_docs_in_bronze": 7}
    rows = bronze(spark, warehouse_config).groupBy("key").count().orderBy("key").collect()
    assert [(r["key"], r["count"]) for r in rows] == [(k, 1) for k in [*keys, "65f000000000000000000007"]]

    before = versions(spark, warehouse_config)
    again = backfill(spark, warehouse_config, source)
    assert again.counts == {"mongo_chunks_already_in": 1, "mongo_docs_in_collection": 7, "mongo_docs_in_bronze": 7}
    assert versions(spark, warehouse_config) == before


def test_file_ingest_still_works_beside_a_collection(spark, warehouse_config, source, tmp_path):
    backfill(spark, warehouse_config, source, batch_size=100)
    landing = tmp_path / "views"
    landing.mkdir()
    (landing / "views.jsonl").write_text('{"_id":"f1","product_id":"p"}\n{"_id":"f2","product_id":"q"}\n')
    assert ingest_files(spark, warehouse_config, "product_views", str(landing), JobRun("ingest")) == 2
    counts = bronze(spark, warehouse_config).groupBy(F.col("source_file").startswith("mongodb://").alias("mongo")).count().collect()
    assert {r["mongo"]: r["count"] for r in counts} == {True: 6, False: 2}


def test_an_unreachable_server_is_named_without_its_password():
    (port,) = free_ports(1)
    source = MongoSource(f"mongodb://reader:s3cret@127.0.0.1:{port}/?authSource=admin", "db", "c", timeout_ms=300)
    with pytest.raises(MongoSourceError) as error:
        mongo.open_collection(source)
    assert str(error.value) == f"MongoDB at mongodb://127.0.0.1:{port} is unreachable (no answer within 300 ms)"
    assert "s3cret" not in repr(source)


def test_missing_database_and_collection_are_named(source, server):
    with pytest.raises(MongoSourceError, match=r"database 'nope' not found on mongodb://127.0.0.1:\d+ \(it has: .*shop_"):
        mongo.open_collection(MongoSource(server.uri, "nope", COLLECTION))
    with pytest.raises(MongoSourceError) as error:
        mongo.open_collection(MongoSource(server.uri, source.database, "views"))
    assert str(error.value) == (
        f"collection 'views' not found in database '{source.database}' on mongodb://127.0.0.1:{server.port} "
        "(it has: product_views_records)"
    )


def test_the_command_exits_2_with_the_reason(source, tmp_path: Path, capsys):
    argv = ["--uri", source.uri, "--database", source.database, "--collection", "nope", "--warehouse", str(tmp_path / "w")]
    assert ingest_mongo.main(argv) == 2
    assert f"ERROR lakehouse.ingest_mongo: collection 'nope' not found in database '{source.database}'" in capsys.readouterr().err


def test_uris_are_shown_without_credentials_and_chunks_split_evenly():
    assert mongo.redact("mongodb://u:p%40ss@h1:27017,h2/db?replicaSet=rs") == "mongodb://h1:27017,h2"
    assert mongo.redact("mongodb+srv://u:p@cluster0.example.net/?retryWrites=true") == "mongodb+srv://cluster0.example.net"
    assert mongo.redact("mongodb://127.0.0.1:27018") == "mongodb://127.0.0.1:27018"
    # Unescaped `/`, `?` and `@` in a password: nothing of it is shown.
    for password in ("pa/ss", "pa?ss", "p@ss/w?rd", "x/y@z"):
        assert mongo.redact(f"mongodb://user:{password}@db.example:27017/shop?authSource=admin") == "mongodb://db.example:27017"
    assert ingest_mongo.range_sizes(100_000, 8) == [12_500] * 8
    assert ingest_mongo.range_sizes(5, 2) == [3, 2]
    assert ingest_mongo.range_sizes(3, 8) == [1, 1, 1]
