"""Silver web-event parsing (seed 002) on inline events."""

import hashlib
import json
from datetime import date, datetime

import pytest
from chispa import assert_df_equality

from lakehouse.feeds.web_events.parse import SILVER_COLUMNS, url_path, web_event_rows
from tests.conftest import bronze_rows

INGESTED = datetime(2024, 3, 5)


def event(**fields):
    base = {
        "ip": "81.2.69.160",
        "host": "www.example.com",
        "url": "/",
        "user_agent": "Mozilla/5.0",
        "event_time": "2024-03-01T10:00:00Z",
    }
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not ...})


def parse(spark, *lines, file_id="f"):
    df = bronze_rows(
        spark,
        [
            {"value": line, "source_file_id": file_id, "source_line": i, "ingested_at": INGESTED}
            for i, line in enumerate(lines, 1)
        ],
    )
    return web_event_rows(df, "2000-01-01", 24)


def test_times_with_any_offset_become_utc_with_their_utc_date(spark):
    out = parse(
        spark,
        event(event_time="2024-03-01T01:30:00+02:00"),
        event(event_time="2024-03-01T22:15:00.250-05:00"),
        event(event_time="2024-03-01T10:00:00Z"),
        event(event_time="2024-03-01 10:00:00"),
    ).select("event_ts", "event_date", "reason")
    expected = spark.createDataFrame(
        [
            (datetime(2024, 2, 29, 23, 30), date(2024, 2, 29), None),
            (datetime(2024, 3, 2, 3, 15, 0, 250000), date(2024, 3, 2), None),
            (datetime(2024, 3, 1, 10, 0), date(2024, 3, 1), None),
            (datetime(2024, 3, 1, 10, 0), date(2024, 3, 1), None),
        ],
        out.schema,
    )
    assert_df_equality(out, expected, ignore_nullable=True)


def test_absent_empty_and_dash_referrers_are_direct_visits(spark):
    out = parse(
        spark,
        event(referrer=...),
        event(referrer=""),
        event(referrer="-"),
        event(referrer=" - "),
        event(referrer="https://WWW.Google.com/search?q=x"),
        event(referrer="news.example.org/item?id=1"),
    ).select("referrer", "referrer_host", "reason")
    expected = spark.createDataFrame(
        [
            (None, None, None),
            (None, None, None),
            (None, None, None),
            (None, None, None),
            ("https://WWW.Google.com/search?q=x", "www.google.com", None),
            ("news.example.org/item?id=1", "news.example.org", None),
        ],
        out.schema,
    )
    assert_df_equality(out, expected, ignore_nullable=True)


def test_host_is_lower_cased_and_path_loses_its_query(spark):
    out = parse(
        spark,
        event(host=" WWW.Example.COM ", url="/lessons/1?utm_source=x#top"),
        event(url="https://www.example.com"),
        event(url="https://www.example.com/a/b?c=d"),
        event(url=""),
        event(url=...),
    ).select("host", "url", "path")
    expected = spark.createDataFrame(
        [
            ("www.example.com", "/lessons/1?utm_source=x#top", "/lessons/1"),
            ("www.example.com", "https://www.example.com", "/"),
            ("www.example.com", "https://www.example.com/a/b?c=d", "/a/b"),
            ("www.example.com", "", None),
            ("www.example.com", None, None),
        ],
        out.schema,
    )
    assert_df_equality(out, expected, ignore_nullable=True)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (
            '{"ip": "81.2.69.160", "host": "a.com", "event_time": "2024-03-01T10:00:00Z"',
            "invalid JSON",
        ),
        (
            "{'ip': '81.2.69.160', 'host': 'a.com', 'event_time': '2024-03-01T10:00:00Z'}",
            "invalid JSON",
        ),
        ("[1, 2]", "JSON is not an object"),
        ('"a string"', "JSON is not an object"),
        (event(host=...), "missing host"),
        (event(host=None), "missing host"),
        (event(host="  "), "missing host"),
        (event(host={"name": "a.com"}), "invalid host: not a string but object<name: string>"),
        (event(host="h" * 256), "host longer than 255 characters"),
        (event(ip=...), "missing ip"),
        (event(ip=""), "missing ip"),
        (event(ip=12345), "invalid ip: not a string but bigint"),
        (event(ip="1" * 65), "ip longer than 64 characters"),
        (
            event(referrer="https://" + "r" * 256 + ".com/"),
            "referrer host longer than 255 characters",
        ),
        (event(event_time=...), "missing event_time"),
        (event(event_time=" "), "missing event_time"),
        (event(event_time=1709290000), "invalid event_time: not a string but bigint"),
        (event(event_time="yesterday"), "unparseable event_time: yesterday"),
        (event(event_time="2024-13-45T10:00:00Z"), "unparseable event_time: 2024-13-45T10:00:00Z"),
        (
            event(event_time="1970-01-01T00:00:00Z"),
            "timestamp out of range: before 2000-01-01: 1970-01-01 00:00:00",
        ),
        (
            event(event_time="2024-03-06T00:00:01Z"),
            "timestamp out of range: more than 24h after ingestion: 2024-03-06 00:00:01",
        ),
    ],
)
def test_bad_events_get_a_reason(spark, line, reason):
    assert parse(spark, line).select("reason").first()[0] == reason


def test_the_longest_host_and_ip_the_export_takes_are_valid(spark):
    row = parse(spark, event(host="h" * 255, ip="1" * 64)).select("reason").first()
    assert row[0] is None


def test_two_identical_lines_are_two_hits_identified_by_their_place(spark):
    line = event()
    out = parse(spark, line, line, file_id="f1").select("event_id", "reason").collect()
    assert [tuple(r) for r in out] == [
        (hashlib.sha256(b"file:f1:1").hexdigest(), None),
        (hashlib.sha256(b"file:f1:2").hexdigest(), None),
    ]


def test_unknown_fields_are_kept_as_json(spark):
    row = parse(spark, event(headers={"accept": "*/*"}, session="s1")).select("extra").first()
    assert row[0] == '{"headers":"{\\"accept\\":\\"*/*\\"}","session":"s1"}'


def test_blank_line_is_a_skip_not_a_reject(spark):
    assert tuple(parse(spark, " \t ").select("is_blank", "reason").first()) == (True, None)


def test_rows_hold_every_silver_column_but_the_enriched_ones(spark):
    enriched = {"country", "region", "city", "ua_browser", "ua_os", "ua_device", "is_bot"}
    assert set(SILVER_COLUMNS) - enriched <= set(parse(spark, event()).columns)


def test_url_path_of_bare_paths_and_full_urls(spark):
    df = spark.createDataFrame([("/a?b",), ("http://h:8080?x",), ("  ",)], "url string")
    assert [r[0] for r in df.select(url_path(df["url"])).collect()] == ["/a", "/", None]
