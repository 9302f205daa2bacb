"""Silver access-log parsing on inline lines: each kind of line and its exact outcome."""

import hashlib
from datetime import date, datetime

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from lakehouse.feeds.access_logs.log_format import COMBINED, compile_log_format
from lakehouse.feeds.access_logs.parse import access_log_rows, with_request_parts
from tests.conftest import bronze_rows

INGESTED = datetime(2024, 3, 5, 0, 0, 0)


def bronze(spark, *lines):
    return bronze_rows(spark, [{"value": line, "source_file": "f.log", "source_file_id": "f", "source_line": i, "ingested_at": INGESTED} for i, line in enumerate(lines, 1)])


def parse(spark, *lines, log_format=COMBINED):
    compiled = compile_log_format(log_format, accept_common=True)
    return access_log_rows(bronze(spark, *lines), compiled, True, "2000-01-01", 24)


def test_combined_line_is_typed_and_converted_to_utc(spark):
    line = '203.0.113.9 - - [01/Mar/2024:22:30:00 -0700] "GET /products/7?ref=mail HTTP/1.1" 404 - "https://www.google.com/" "Mozilla/5.0 \\"x\\""'
    out = parse(spark, line).select(
        "ip", "event_ts", "event_date", "method", "path", "endpoint", "query", "protocol",
        "status", "bytes", "referrer", "user_agent", "response_time_ms", "reason",
    )
    expected = spark.createDataFrame(
        [("203.0.113.9", datetime(2024, 3, 2, 5, 30), date(2024, 3, 2), "GET", "/products/7?ref=mail",
          "/products/7", "ref=mail", "HTTP/1.1", 404, None, "https://www.google.com/", 'Mozilla/5.0 "x"', None, None)],
        out.schema,
    )
    assert_df_equality(out, expected, ignore_nullable=True)


def test_common_line_and_timeout_request_are_valid(spark):
    out = parse(
        spark,
        '198.51.100.1 - - [01/Mar/2024:10:00:00 +0000] "GET / HTTP/1.0" 200 512',
        '198.51.100.2 - - [01/Mar/2024:10:00:01 +0000] "-" 408 - "-" "-"',
    ).select("ip", "endpoint", "method", "status", "bytes", "referrer", "user_agent", "reason")
    expected = spark.createDataFrame(
        [("198.51.100.1", "/", "GET", 200, 512, None, None, None),
         ("198.51.100.2", "-", None, 408, None, None, None, None)],
        out.schema,
    )
    assert_df_equality(out, expected, ignore_nullable=True, ignore_row_order=True)


def test_crlf_and_blank_lines(spark):
    out = parse(spark, '198.51.100.1 - - [01/Mar/2024:10:00:00 +0000] "GET / HTTP/1.0" 200 5 "-" "curl/8"\r', "", "  \r")
    rows = out.select("is_blank", "reason", "user_agent").collect()
    assert [tuple(r) for r in rows] == [(False, None, "curl/8"), (True, None, None), (True, None, None)]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ('198.51.100.1 - - [01/Mar/2024:10:00:00 +0000] "GET / HTTP/1.1" 200 5 "-" "Mozilla/5.0 (trunc', "truncated line: unbalanced quotes"),
        ("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", "unparseable line: control bytes (binary data)"),
        ("hello world", "line does not match the log format"),
        ('198.51.100.1 - - [32/Foo/2024:99:99:99 +0000] "GET / HTTP/1.1" 200 5 "-" "x"', "unparseable timestamp: 32/Foo/2024:99:99:99 +0000"),
        ('198.51.100.1 - - [01/Jan/1970:00:00:01 +0000] "GET / HTTP/1.1" 200 5 "-" "x"', "timestamp out of range: before 2000-01-01: 1970-01-01 00:00:01"),
        ('198.51.100.1 - - [01/Jan/2031:00:00:01 +0000] "GET / HTTP/1.1" 200 5 "-" "x"', "timestamp out of range: more than 24h after ingestion: 2031-01-01 00:00:01"),
    ],
)
def test_bad_lines_get_a_reason(spark, line, reason):
    assert parse(spark, line).select("reason").first()[0] == reason


def test_response_time_format_gives_milliseconds(spark):
    line = '198.51.100.1 - - [01/Mar/2024:10:00:00 +0000] "GET /a HTTP/1.1" 200 5 "-" "x" 1500'
    row = parse(spark, line, log_format=COMBINED + " %D").select("response_time_ms", "reason").first()
    assert tuple(row) == (1.5, None)


def test_apachelogs_parses_formats_the_fast_path_does_not_model(spark):
    fmt = '%h %{%Y-%m-%d %H:%M:%S %z}t "%r" %>s %b'
    line = '198.51.100.1 2024-03-01 10:00:00 +0200 "GET /x?y HTTP/1.1" 200 42'
    row = parse(spark, line, log_format=fmt).select("ip", "event_ts", "endpoint", "status", "bytes", "reason").first()
    assert tuple(row) == ("198.51.100.1", datetime(2024, 3, 1, 8, 0), "/x", 200, 42, None)


def test_event_id_is_the_place_not_the_bytes(spark):
    line = '198.51.100.1 - - [01/Mar/2024:10:00:00 +0000] "GET / HTTP/1.0" 200 512'
    places = [
        {"source_file_id": "f1", "source_line": 1},
        {"source_file_id": "f1", "source_line": 2},  # the same bytes on the next line: another request
        {"source_file_id": "f1", "source_line": 1},  # the same place read again: the same record
        {"topic": "access_logs", "partition": 0, "offset": 7},
        {"topic": "access_logs", "partition": 1, "offset": 7},
    ]
    df = bronze_rows(spark, [{"value": line, "ingested_at": INGESTED, **p} for p in places])
    compiled = compile_log_format(COMBINED, accept_common=True)
    ids = [r[0] for r in access_log_rows(df, compiled, True, "2000-01-01", 24).select("event_id").collect()]
    assert ids[0] == ids[2]
    assert len({ids[0], ids[1], ids[3], ids[4]}) == 4
    assert ids[0] == hashlib.sha256(b"file:f1:1").hexdigest()
    assert ids[3] == hashlib.sha256(b"kafka:access_logs:0:7").hexdigest()


def _ok(ua='"-" "UA"', status="200", size="5", request="GET / HTTP/1.1"):
    return f'198.51.100.1 - - [01/Mar/2024:10:00:00 +0000] "{request}" {status} {size} {ua}'


def test_thousands_of_escaped_quotes_neither_overflow_nor_stop_the_parse(spark):
    agent = '\\"' * 3000  # a 9 kB user agent: overflowed java.util.regex's stack
    huge = '\\"a' * 100_000
    rows = parse(spark, _ok(f'"-" "{agent}"'), _ok(f'"-" "{huge}"'), _ok()).select("status", "user_agent", "reason").collect()
    assert [(r.status, r.reason) for r in rows] == [(200, None), (200, None), (200, None)]
    assert rows[0].user_agent == '"' * 3000
    assert rows[1].user_agent == '"a' * 100_000


def test_a_control_byte_inside_a_field_never_shifts_the_others(spark):
    # Apache writes control bytes escaped (`\\x01` as text): a raw one is not its log line.
    # The fast parser joins fields with such a byte, so these lines never take that path:
    # the fallback parser (no separator) rejects them, instead of reading a spoofed 404.
    lines = [_ok(f'"-" "evil{byte} 404 spoofed"') for byte in ("\x01", "\x02", "\x01\x02")]
    rows = parse(spark, *lines).select("status", "user_agent", "reason").collect()
    assert [tuple(r) for r in rows] == [(None, None, "unparseable line: control bytes (binary data)")] * 3


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (_ok(size="100000000000000000000"), "invalid bytes: 100000000000000000000"),
        (_ok(size="-5"), "invalid bytes: -5"),
        (_ok(status="999"), "invalid status: 999"),
        (_ok(status="099"), "invalid status: 099"),
    ],
)
def test_out_of_range_numbers_are_quarantined_not_zeroed(spark, line, reason):
    assert parse(spark, line).select("reason").first()[0] == reason


def test_a_path_with_spaces_keeps_its_endpoint(spark):
    row = parse(spark, _ok(request="GET /a b/c?q=1 2 HTTP/1.1")).select("method", "path", "endpoint", "query", "protocol", "reason").first()
    assert tuple(row) == ("GET", "/a b/c?q=1 2", "/a b/c", "q=1 2", "HTTP/1.1", None)


def test_request_parts_of_odd_request_lines(spark):
    requests = ["POST /api/v1/cart?id=3 HTTP/2.0", "GET /only-path", "get /a b", "GET  HTTP/1.1", "\\x16\\x03", None]
    df = spark.createDataFrame([(r,) for r in requests], "request string")
    out = df.transform(with_request_parts).select("method", "endpoint", "query", "protocol")
    expected = spark.createDataFrame(
        [
            ("POST", "/api/v1/cart", "id=3", "HTTP/2.0"),
            ("GET", "/only-path", None, None),
            ("GET", "/a b", None, None),
            (None, "-", None, None),
            (None, "-", None, None),
            (None, "-", None, None),
        ],
        out.schema,
    )
    assert_df_equality(out, expected, ignore_nullable=True, ignore_row_order=True)


def test_fast_path_and_fallback_agree_on_a_valid_line(spark):
    line = '198.51.100.1 - - [01/Mar/2024:10:00:00 +0100] "GET /p HTTP/1.1" 301 7 "http://r/" "ua"'
    fast = parse(spark, line).select("ip", "event_ts", "status", "bytes", "referrer", "user_agent")
    # A format written with a redundant `%%`-free variant forces the apachelogs path.
    slow_fmt = '%a %l %u %{%d/%b/%Y:%H:%M:%S %z}t "%r" %>s %b "%{Referer}i" "%{User-Agent}i"'
    slow_line = line.replace("[01/Mar/2024:10:00:00 +0100]", "01/Mar/2024:10:00:00 +0100")
    slow = parse(spark, slow_line, log_format=slow_fmt).select("ip", "event_ts", "status", "bytes", "referrer", "user_agent")
    assert_df_equality(fast, slow, ignore_nullable=True)
    assert fast.where(F.col("status") == 301).count() == 1
