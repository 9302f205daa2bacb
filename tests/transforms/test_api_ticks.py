"""API ticks: polled responses exploded into ticks, their reasons, dedupe and the daily summary."""

import hashlib
from datetime import date, datetime

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from lakehouse.feeds.api_ticks.parse import (
    TickFields,
    api_daily_summary,
    api_tick_rows,
    json_path,
    new_ticks,
)
from tests.conftest import bronze_rows

INGESTED = datetime(2024, 3, 5)
FIELDS = TickFields()
# 2024-03-01 23:59:00 UTC in epoch milliseconds (Binance's closeTime).
T0 = 1709337540000


def parse(spark, *lines, fields=FIELDS):
    df = bronze_rows(
        spark,
        [
            {
                "value": line,
                "source_file": "landing/a.jsonl",
                "source_file_id": "f",
                "source_line": i,
                "ingested_at": INGESTED,
            }
            for i, line in enumerate(lines, 1)
        ],
    )
    return api_tick_rows(df, fields, "2000-01-01", 24)


def tick_id(symbol: str, micros: int) -> str:
    return hashlib.sha256(f"{symbol}|{micros}".encode()).hexdigest()


def test_an_object_and_a_list_become_one_row_per_tick(spark):
    out = parse(
        spark,
        f'{{"symbol": "BTCUSDT", "lastPrice": "100.50", "closeTime": {T0}}}',
        f'[{{"symbol": "BTCUSDT", "lastPrice": "101.5", "closeTime": {T0 + 30000}}}, {{"symbol": "ETHUSDT", "lastPrice": 50.25, "closeTime": "{T0 + 90000}"}}]',
    ).select(
        "source_line",
        "tick_index",
        "symbol",
        "price",
        "event_time",
        "event_ts",
        "event_date",
        "source",
        "reason",
    )
    expected = spark.createDataFrame(
        [
            (
                1,
                0,
                "BTCUSDT",
                100.5,
                datetime(2024, 3, 1, 23, 59),
                datetime(2024, 3, 1, 23, 59),
                date(2024, 3, 1),
                "file:landing/a.jsonl",
                None,
            ),
            (
                2,
                0,
                "BTCUSDT",
                101.5,
                datetime(2024, 3, 1, 23, 59, 30),
                datetime(2024, 3, 1, 23, 59, 30),
                date(2024, 3, 1),
                "file:landing/a.jsonl",
                None,
            ),
            (
                2,
                1,
                "ETHUSDT",
                50.25,
                datetime(2024, 3, 2, 0, 0, 30),
                datetime(2024, 3, 2, 0, 0, 30),
                date(2024, 3, 2),
                "file:landing/a.jsonl",
                None,
            ),
        ],
        out.schema,
    )
    assert_df_equality(out, expected, ignore_nullable=True)


def test_event_id_is_the_hash_of_symbol_and_time_whatever_the_time_form(spark):
    out = parse(
        spark,
        f'{{"symbol": "BTCUSDT", "lastPrice": "1", "closeTime": {T0}}}',
        f'{{"symbol": "BTCUSDT", "lastPrice": "2", "closeTime": "{T0}"}}',
        '{"symbol": "BTCUSDT", "lastPrice": "3", "closeTime": 1709337540}',
        '{"symbol": "BTCUSDT", "lastPrice": "4", "closeTime": "2024-03-01T23:59:00Z"}',
        '{"symbol": "BTCUSDT", "lastPrice": "5", "closeTime": "2024-03-02T00:59:00+01:00"}',
    )
    assert [r[0] for r in out.select("event_id").collect()] == [tick_id("BTCUSDT", T0 * 1000)] * 5


def test_dotted_paths_find_fields_in_nested_objects(spark):
    fields = TickFields(symbol="data.s", price="data.p.last", time="ts")
    row = parse(
        spark, '{"ts": 1709337540000, "data": {"s": "SOLUSDT", "p": {"last": 7.5}}}', fields=fields
    ).first()
    assert (row["symbol"], row["price"], row["event_ts"], row["reason"]) == (
        "SOLUSDT",
        7.5,
        datetime(2024, 3, 1, 23, 59),
        None,
    )
    assert json_path("data.p.last") == "$['data']['p']['last']"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (
            "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
            'not JSON: an HTML page "502 Bad Gateway"',
        ),
        ('{"symbol": "BTCUSDT", "lastPrice": "1"', "invalid JSON"),
        ('{"code": -1121, "msg": "Invalid symbol."}', "API error -1121: Invalid symbol."),
        ('"hello"', "JSON is not an object or a list of objects"),
        ("[]", "empty response: a list of no ticks"),
        (f'{{"lastPrice": "1", "closeTime": {T0}}}', "missing symbol (symbol)"),
        (f'{{"symbol": " ", "lastPrice": "1", "closeTime": {T0}}}', "missing symbol (symbol)"),
        (
            f'{{"symbol": {{"a": 1}}, "lastPrice": "1", "closeTime": {T0}}}',
            "invalid symbol (symbol): not a string but object<a: bigint>",
        ),
        (
            f'{{"symbol": "{"X" * 65}", "lastPrice": "1", "closeTime": {T0}}}',
            "symbol longer than 64 characters",
        ),
        ('{"symbol": "BTCUSDT", "lastPrice": "1"}', "missing time (closeTime)"),
        (
            '{"symbol": "BTCUSDT", "lastPrice": "1", "closeTime": "soon"}',
            "unparseable time: closeTime=soon",
        ),
        (
            '{"symbol": "BTCUSDT", "lastPrice": "1", "closeTime": 1e300}',
            "unparseable time: closeTime=1.0E300",
        ),
        (f'{{"symbol": "BTCUSDT", "closeTime": {T0}}}', "missing price (lastPrice)"),
        (
            f'{{"symbol": "BTCUSDT", "lastPrice": "abc", "closeTime": {T0}}}',
            "non-numeric price: lastPrice=abc",
        ),
        (
            f'{{"symbol": "BTCUSDT", "lastPrice": "NaN", "closeTime": {T0}}}',
            "non-numeric price: lastPrice=NaN",
        ),
        (
            f'{{"symbol": "BTCUSDT", "lastPrice": true, "closeTime": {T0}}}',
            "non-numeric price: lastPrice=true",
        ),
        (
            f'{{"symbol": "BTCUSDT", "lastPrice": "-2", "closeTime": {T0}}}',
            "negative price: lastPrice=-2",
        ),
        (
            '{"symbol": "BTCUSDT", "lastPrice": "1", "closeTime": 0}',
            "timestamp out of range: before 2000-01-01: 1970-01-01 00:00:00",
        ),
    ],
)
def test_bad_responses_get_a_reason(spark, line, reason):
    rows = parse(spark, line).select("reason", "value").collect()
    assert [tuple(r) for r in rows] == [(reason, line)]


def test_a_bad_tick_in_a_list_is_quarantined_alone_with_its_own_text(spark):
    # The entry's text as Spark's JSON reader gives it: compact, keys in the API's order.
    line = f'[{{"symbol": "A", "lastPrice": "1", "closeTime": {T0}}}, {{"symbol": "B", "lastPrice": "x", "closeTime": {T0}}}, 7]'
    rows = parse(spark, line).select("tick_index", "symbol", "reason", "value").collect()
    assert [tuple(r) for r in rows] == [
        (0, "A", None, '{"symbol":"A","lastPrice":"1","closeTime":1709337540000}'),
        (
            1,
            "B",
            "non-numeric price: lastPrice=x (tick 2 of 3)",
            '{"symbol":"B","lastPrice":"x","closeTime":1709337540000}',
        ),
        (2, None, "tick is not an object (tick 3 of 3)", "7"),
    ]


def test_blank_lines_are_one_counted_skip_and_kafka_messages_get_their_checks(spark):
    df = bronze_rows(
        spark,
        [
            {"value": "  ", "source_file_id": "f", "source_line": 1, "ingested_at": INGESTED},
            {
                "value": "",
                "topic": "api_ticks",
                "partition": 0,
                "offset": 4,
                "ingested_at": INGESTED,
            },
        ],
    )
    rows = (
        api_tick_rows(df, FIELDS, "2000-01-01", 24).select("is_blank", "reason", "source").collect()
    )
    assert [tuple(r) for r in rows] == [
        (True, None, None),
        (False, "empty message", "kafka:api_ticks"),
    ]


def with_rows(df):
    return df.withColumn("_row", F.monotonically_increasing_id())


def test_new_ticks_drop_repeats_in_the_batch_and_ticks_silver_holds(spark):
    parsed = with_rows(
        parse(
            spark,
            f'{{"symbol": "BTCUSDT", "lastPrice": "1", "closeTime": {T0}}}',
            f'[{{"symbol": "BTCUSDT", "lastPrice": "2", "closeTime": {T0}}}, {{"symbol": "ETHUSDT", "lastPrice": "3", "closeTime": {T0}}}]',
            f'{{"symbol": "SOLUSDT", "lastPrice": "4", "closeTime": {T0}}}',
            '{"symbol": "SOLUSDT", "lastPrice": "x", "closeTime": 1}',
        )
    )
    seen = spark.createDataFrame(
        [(date(2024, 3, 1), tick_id("ETHUSDT", T0 * 1000))], "event_date date, event_id string"
    )
    out = (
        new_ticks(parsed, seen)
        .select("symbol", "price", "source_line", "tick_index")
        .orderBy("symbol")
    )
    # BTC: the first copy in source order wins; ETH: silver has it; the bad SOL row is not valid.
    assert [tuple(r) for r in out.collect()] == [("BTCUSDT", 1.0, 1, 0), ("SOLUSDT", 4.0, 3, 0)]


def test_daily_summary_per_utc_day_and_symbol(spark):
    ticks = spark.createDataFrame(
        [
            (date(2024, 3, 1), datetime(2024, 3, 1, 23, 59), "BTCUSDT", 100.5),
            (date(2024, 3, 1), datetime(2024, 3, 1, 23, 59, 30), "BTCUSDT", 101.5),
            (date(2024, 3, 1), datetime(2024, 3, 1, 12, 0), "ETHUSDT", 50.25),
            (date(2024, 3, 2), datetime(2024, 3, 2, 0, 0, 30), "BTCUSDT", 99.0),
        ],
        "event_date date, event_ts timestamp, symbol string, price double",
    )
    out = api_daily_summary(ticks).orderBy("report_date", "symbol")
    expected = spark.createDataFrame(
        [
            (date(2024, 3, 1), "BTCUSDT", 101.0, 100.5, 101.5, 2),
            (date(2024, 3, 1), "ETHUSDT", 50.25, 50.25, 50.25, 1),
            (date(2024, 3, 2), "BTCUSDT", 99.0, 99.0, 99.0, 1),
        ],
        "report_date date, symbol string, avg_price double, min_price double, max_price double, n_records bigint",
    )
    assert_df_equality(out, expected, ignore_nullable=True)
