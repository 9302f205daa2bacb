"""The mirror's normalisation of seed-004 events (remote topic -> our product-views topic)."""

import hashlib
import json
from datetime import datetime

from pyspark.sql import types as T

from lakehouse.feeds.product_views.parse import product_view_rows
from lakehouse.transforms.mirror import mirror_records
from tests.conftest import bronze_rows

SOURCE_SCHEMA = T.StructType(
    [
        T.StructField("key", T.BinaryType()),
        T.StructField("value", T.BinaryType()),
        T.StructField("topic", T.StringType()),
        T.StructField("partition", T.IntegerType()),
        T.StructField("offset", T.LongType()),
    ]
)
CLUSTER = "c1uster-id"


def mirrored(spark, *values, keys=None, topic="product_views", partition=0):
    """(key, value) bytes the mirror writes for `values` read at offsets 0, 1, ... of `partition`."""
    keys = keys or [None] * len(values)
    rows = [
        (k.encode() if isinstance(k, str) else k, v.encode() if isinstance(v, str) else v, topic, partition, i)
        for i, (k, v) in enumerate(zip(keys, values, strict=True))
    ]
    out = mirror_records(spark.createDataFrame(rows, SOURCE_SCHEMA), CLUSTER).collect()
    return [(None if r.key is None else bytes(r.key), None if r.value is None else bytes(r.value)) for r in out]


def place_id(offset, topic="product_views", partition=0):
    return hashlib.sha256(f"kafka:{CLUSTER}/{topic}:{partition}:{offset}".encode()).hexdigest()


def test_events_with_an_id_and_a_remote_ip_pass_byte_for_byte(spark):
    events = [
        '{"_id": "5ed8cb2bc671fc36b74653ad", "product_id": "110474", "remote_ip": "37.170.17.183", "time_stamp": 1591266092}',
        '{"_id": {"$oid": "65f0"}, "product_id": 7, "remote_ip": "1.2.3.4", "timestamp": "2024-03-01T10:00:00+07:00"}',
        '{ "event_id" : "e1", "product_id": "p", "option": [{"a": 1.50}], "n": 1e5 }',
    ]
    assert [v for _k, v in mirrored(spark, *events)] == [e.encode() for e in events]


def test_ip_is_renamed_to_remote_ip_and_nothing_else_changes(spark):
    (_k, value), = mirrored(spark, '{"_id": "a1", "ip": "37.170.17.183", "product_id": "p", "option": [{"x": true}], "time_stamp": 1591266092}')
    event = json.loads(value)
    assert event == {"_id": "a1", "remote_ip": "37.170.17.183", "product_id": "p", "option": [{"x": True}], "time_stamp": 1591266092}
    assert list(event)[0] == "remote_ip"  # added in front, the rest in its order


def test_a_usable_remote_ip_wins_and_ip_stays_as_it_was(spark):
    line = '{"_id": "a1", "ip": "10.0.0.1", "remote_ip": "37.170.17.183", "product_id": "p"}'
    assert mirrored(spark, line)[0][1] == line.encode()
    (_k, value), = mirrored(spark, '{"_id": "a1", "ip": "10.0.0.1", "remote_ip": " ", "product_id": "p"}')
    assert json.loads(value) == {"_id": "a1", "remote_ip": "10.0.0.1", "product_id": "p"}


def test_an_event_without_id_gets_the_hash_of_its_remote_place(spark):
    out = mirrored(
        spark,
        '{"product_id": "p", "time_stamp": 1591266092}',
        '{"_id": "", "event_id": null, "product_id": "p"}',
        "{}",
        partition=3,
    )
    assert [json.loads(v) for _k, v in out] == [
        {"event_id": place_id(0, partition=3), "product_id": "p", "time_stamp": 1591266092},
        {"event_id": place_id(1, partition=3), "_id": "", "product_id": "p"},
        {"event_id": place_id(2, partition=3)},
    ]


def test_the_same_remote_record_forwarded_twice_gets_the_same_id(spark):
    line = '{"product_id": "p", "ip": "1.2.3.4"}'
    first = mirrored(spark, line, partition=1)
    again = mirrored(spark, "x", line, partition=1)[1:]  # same event, read at offset 1 this time
    assert json.loads(first[0][1])["event_id"] == place_id(0, partition=1)
    assert json.loads(again[0][1])["event_id"] == place_id(1, partition=1)
    assert mirrored(spark, line, partition=1) == first  # re-read at the same place: identical record


def test_bad_records_pass_untouched_for_silver_to_quarantine(spark):
    bad = [b'{"product_id": "p", "ip": "1.2', b"[1, 2]", b"", b"not json", b"\xff\xfe{}", None]
    assert [v for _k, v in mirrored(spark, *bad)] == bad


def test_duplicate_member_names_do_not_stop_the_mirror(spark):
    # Written back as they came, the id added in front (silver reads such events as it would have).
    assert mirrored(spark, '{"a": 1, "a": 2}')[0][1] == f'{{"event_id":"{place_id(0)}","a":1,"a":2}}'.encode()


def test_key_is_the_remote_key_else_the_device_id(spark):
    out = mirrored(
        spark,
        '{"_id": "a", "device_id": "d-1", "product_id": "p"}',
        '{"_id": "b", "device_id": "d-2", "product_id": "p"}',
        '{"_id": "c", "product_id": "p"}',
        "garbage",
        keys=[None, "remote-key", None, None],
    )
    assert [k for k, _v in out] == [b"d-1", b"remote-key", None, None]


def test_silver_reads_the_mirrored_events_as_the_contract_says(spark):
    out = mirrored(
        spark,
        '{"_id": "a1", "ip": "81.2.69.160", "product_id": "p1", "device_id": "d1", "time_stamp": 1709290000}',
        '{"product_id": "p2", "ip": "81.2.69.161", "timestamp": "2024-03-01T10:00:00Z"}',
        partition=1,
    )
    bronze = bronze_rows(
        spark,
        [
            {"value": v.decode(), "topic": "local.product_views", "partition": 0, "offset": 10 + i, "ingested_at": datetime(2024, 3, 5)}
            for i, (_k, v) in enumerate(out)
        ],
    )
    rows = product_view_rows(bronze, "2000-01-01", 24).select("event_id", "product_id", "remote_ip", "extra", "reason").collect()
    assert [tuple(r) for r in rows] == [
        ("a1", "p1", "81.2.69.160", None, None),
        (place_id(1, partition=1), "p2", "81.2.69.161", None, None),
    ]
