"""Silver product-view parsing on inline events."""

import hashlib
from datetime import date, datetime

import pytest
from chispa import assert_df_equality

from lakehouse.feeds.product_views.parse import product_view_rows
from tests.conftest import bronze_rows

INGESTED = datetime(2024, 3, 5)
URL_2048 = "https://shop.example/?q=" + "x" * (2048 - len("https://shop.example/?q="))


def parse(spark, *lines):
    df = bronze_rows(spark, [{"value": line, "source_file_id": "f", "source_line": i, "ingested_at": INGESTED} for i, line in enumerate(lines, 1)])
    return product_view_rows(df, "2000-01-01", 24)


def test_iso_timestamp_with_offset_and_epoch_seconds_become_utc(spark):
    out = parse(
        spark,
        '{"_id": "a1", "product_id": "p1", "device_id": "d1", "timestamp": "2024-03-01T03:00:00+07:00", "referrer_url": "https://WWW.Google.com/search?q=x"}',
        '{"event_id": "e2", "product_id": 42, "time_stamp": 1709290000, "referrer_url": ""}',
        '{"_id": {"$oid": "65f0"}, "product_id": "p3", "timestamp": "2024-03-01 10:00:00"}',
    ).select("event_id", "product_id", "event_ts", "event_date", "referrer_host", "reason")
    expected = spark.createDataFrame(
        [
            ("a1", "p1", datetime(2024, 2, 29, 20, 0), date(2024, 2, 29), "www.google.com", None),
            ("e2", "42", datetime(2024, 3, 1, 10, 46, 40), date(2024, 3, 1), None, None),
            ("65f0", "p3", datetime(2024, 3, 1, 10, 0), date(2024, 3, 1), None, None),
        ],
        out.schema,
    )
    assert_df_equality(out, expected, ignore_nullable=True)


def test_unknown_fields_are_kept_as_json(spark):
    row = parse(spark, '{"_id": "a", "product_id": "p", "time_stamp": 1709290000, "option": [1, 2], "cart_id": "c9"}').select("extra").first()
    assert row[0] == '{"option":"[1,2]","cart_id":"c9"}'


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ('{"_id": "a", "product_id": "p", "timestamp": "2024-03-01', "invalid JSON"),
        ("[1, 2]", "JSON is not an object"),
        ('{"_id": "a", "timestamp": "2024-03-01T00:00:00Z"}', "missing product_id"),
        ('{"_id": "a", "product_id": " ", "timestamp": "2024-03-01T00:00:00Z"}', "missing product_id"),
        ('{"_id": "a", "product_id": "p", "timestamp": "yesterday"}', "unparseable time: timestamp=yesterday time_stamp=null"),
        ('{"_id": "a", "product_id": "p", "time_stamp": 0}', "timestamp out of range: before 2000-01-01: 1970-01-01 00:00:00"),
        ('{"_id": "a", "product_id": {"sku": 1}, "time_stamp": 1709290000}', "invalid product_id: not a string or number but object<sku: bigint>"),
        ('{"_id": "a", "product_id": [1], "time_stamp": 1709290000}', "invalid product_id: not a string or number but array<bigint>"),
        ('{"_id": "a", "product_id": true, "time_stamp": 1709290000}', "invalid product_id: not a string or number but boolean"),
        ('{"_id": "a", "product_id": "p", "device_id": {"x": "y"}, "time_stamp": 1709290000}', "invalid device_id: not a string or number but object<x: string>"),
        # store_id and referrer_url name gold rows: bounded (store_id in characters, the
        # URL in UTF-8 bytes: 2048 bytes pass; 1100 characters of 2 bytes each do not)
        (f'{{"_id": "a", "product_id": "p", "store_id": "{"s" * 256}", "time_stamp": 1709290000}}', "store_id longer than 255 characters"),
        (f'{{"_id": "a", "product_id": "p", "referrer_url": "{URL_2048[:-1] + "xy"}", "time_stamp": 1709290000}}', "referrer_url longer than 2048 bytes"),
        (f'{{"_id": "a", "product_id": "p", "referrer_url": "https://shop.example/{"é" * 1100}", "time_stamp": 1709290000}}', "referrer_url longer than 2048 bytes"),
        (f'{{"_id": "a", "product_id": "p", "referrer_url": "{URL_2048}", "time_stamp": 1709290000}}', None),
    ],
)
def test_bad_events_get_a_reason(spark, line, reason):
    assert parse(spark, line).select("reason").first()[0] == reason


def test_numeric_ids_are_text(spark):
    row = parse(spark, '{"_id": "a", "product_id": 12, "device_id": 3.5, "time_stamp": 1709290000}').select("product_id", "device_id", "reason").first()
    assert tuple(row) == ("12", "3.5", None)


def test_events_without_an_id_are_identified_by_their_place(spark):
    line = '{"product_id": "p", "time_stamp": 1709290000}'
    df = bronze_rows(spark, [{"value": line, "source_file_id": "f1", "source_line": n, "ingested_at": INGESTED} for n in (1, 2)])
    ids = [r[0] for r in product_view_rows(df, "2000-01-01", 24).select("event_id").collect()]
    assert ids == [hashlib.sha256(b"file:f1:1").hexdigest(), hashlib.sha256(b"file:f1:2").hexdigest()]


def test_blank_line_is_a_skip_not_a_reject(spark):
    assert tuple(parse(spark, " \t ").select("is_blank", "reason").first()) == (True, None)
