"""Tests of the reference oracle itself, on a few inline lines computed by hand."""

from __future__ import annotations

import json
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from reference_gold import (  # noqa: E402
    percentile,
    read_lines,
    reference_access_logs,
    reference_product_views,
    split_request_line,
)

NOW = datetime(2024, 6, 1, tzinfo=UTC)
D1, D2 = date(2024, 3, 1), date(2024, 3, 2)

# --- access logs -------------------------------------------------------------

ACCESS_LINES = [
    # L1: -0700, local 1 March 23:30 = UTC 2 March 06:30; query string stripped
    b'203.0.113.5 - - [01/Mar/2024:23:30:00 -0700] "GET /products/1?ref=home HTTP/1.1" 200 1000 "-" "UA1"',
    # L2: CRLF ending, bytes "-"
    b'203.0.113.5 - - [02/Mar/2024:10:00:00 +0000] "GET /products/1 HTTP/1.1" 404 - "https://x.example/" "UA2"\r',
    # L3: escaped quotes inside the agent
    b'198.51.100.7 - - [02/Mar/2024:11:00:00 +0000] "GET /products/1 HTTP/2.0" 503 500 "-" "a \\"q\\" b"',
    b"",  # L4 blank
    b"   ",  # L5 blank
    # L6: "-" request line, +0530: UTC 2 March 06:30
    b'198.51.100.7 - - [02/Mar/2024:12:00:00 +0530] "-" 408 - "-" "-"',
    # L7: exact copy of L3 -> a second request (a record is its place, not its bytes)
    b'198.51.100.7 - - [02/Mar/2024:11:00:00 +0000] "GET /products/1 HTTP/2.0" 503 500 "-" "a \\"q\\" b"',
    # L8: truncated inside the agent -> quarantine
    b'192.0.2.1 - - [02/Mar/2024:11:00:00 +0000] "GET / HTTP/1.1" 200 5 "-" "Mozilla/5.0 (Win',
    # L9: TLS ClientHello bytes (not UTF-8) -> quarantine
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\xff\xfe",
    # L10: unparseable date -> quarantine
    b'192.0.2.1 - - [32/Foo/2024:99:99:99 +0000] "GET / HTTP/1.1" 200 5 "-" "UA1"',
    # L11: 1970 -> quarantine (out of range)
    b'192.0.2.1 - - [01/Jan/1970:00:00:01 +0000] "GET / HTTP/1.1" 200 5 "-" "UA1"',
    # L12: a Common line is valid for the Combined format
    b'192.0.2.9 - - [01/Mar/2024:08:00:00 +0000] "POST /cart HTTP/1.1" 302 230',
    # L13
    b'192.0.2.9 - - [01/Mar/2024:08:00:05 +0000] "GET / HTTP/1.1" 304 - "-" "UA1"',
    # L14: request line not METHOD URI [PROTOCOL] -> endpoint "-"
    b'192.0.2.9 - - [01/Mar/2024:09:00:00 +0000] "garbage" 400 226 "-" "-"',
    # L15: far future -> quarantine (out of range)
    b'192.0.2.1 - - [01/Mar/2999:00:00:00 +0000] "GET / HTTP/1.1" 200 5 "-" "UA1"',
]


def _write(tmp_path: Path, name: str, lines: list[bytes], final_newline: bool = True) -> Path:
    path = tmp_path / name
    data = b"\n".join(lines) + (b"\n" if final_newline else b"")
    path.write_bytes(data)
    return path


def _ep(day, endpoint, requests, ips, s2, s3, s4, s5, nbytes, p50=None, p95=None, p99=None):
    return {
        "report_date": day,
        "endpoint": endpoint,
        "requests": requests,
        "unique_ips": ips,
        "status_2xx": s2,
        "status_3xx": s3,
        "status_4xx": s4,
        "status_5xx": s5,
        "error_rate": (s4 + s5) / requests,
        "bytes": nbytes,
        "p50_ms": p50,
        "p95_ms": p95,
        "p99_ms": p99,
    }


def test_access_counts_and_gold(tmp_path):
    path = _write(tmp_path, "a.log", ACCESS_LINES)
    res = reference_access_logs([path], "combined", now=NOW)
    assert res["counts"] == {
        "read": 15,
        "skipped_blank": 2,
        "quarantined": 5,
        "duplicates": 0,
        "silver": 8,
    }
    assert res["quarantine_reasons"] == {"unparseable": 2, "not_utf8": 1, "out_of_range": 2}
    assert res["endpoint_daily"] == [
        _ep(D1, "-", 1, 1, 0, 0, 1, 0, 226),  # L14
        _ep(D1, "/", 1, 1, 0, 1, 0, 0, 0),  # L13
        _ep(D1, "/cart", 1, 1, 0, 1, 0, 0, 230),  # L12
        _ep(D2, "-", 1, 1, 0, 0, 1, 0, 0),  # L6
        _ep(D2, "/products/1", 4, 2, 1, 0, 1, 2, 2000),  # L1, L2, L3, L7
    ]
    assert res["top_ips_daily"] == [
        {"report_date": D1, "ip": "192.0.2.9", "requests": 3},
        {"report_date": D2, "ip": "198.51.100.7", "requests": 3},
        {"report_date": D2, "ip": "203.0.113.5", "requests": 2},
    ]
    top1 = reference_access_logs([path], "combined", now=NOW, top_n=1)["top_ips_daily"]
    assert [(r["report_date"], r["ip"]) for r in top1] == [(D1, "192.0.2.9"), (D2, "198.51.100.7")]


def test_access_silver_fields(tmp_path):
    path = _write(tmp_path, "a.log", ACCESS_LINES[:3] + ACCESS_LINES[5:6])
    silver = reference_access_logs(path, now=NOW, keep_silver=True)["silver"]
    first, crlf, _, dash = silver
    assert first["event_ts"] == datetime(2024, 3, 2, 6, 30)
    assert (first["method"], first["path"], first["endpoint"]) == ("GET", "/products/1?ref=home", "/products/1")
    assert crlf["bytes"] is None and crlf["status"] == 404
    assert (dash["method"], dash["path"], dash["endpoint"], dash["status"]) == (None, None, "-", 408)
    assert dash["event_ts"] == datetime(2024, 3, 2, 6, 30)


def test_access_response_time_percentiles(tmp_path):
    lines = [
        f'192.0.2.{i} - - [01/Mar/2024:10:00:0{i} +0000] "GET /p HTTP/1.1" 200 10 "-" "UA" {us}'.encode()
        for i, us in enumerate((4000, 1000, 3000, 2000), start=1)
    ]
    lines.append(b'192.0.2.5 - - [01/Mar/2024:10:00:05 +0000] "GET /p HTTP/1.1" 200 10 "-" "UA"')  # no %D
    lines.append(b'192.0.2.6 - - [01/Mar/2024:10:00:06 +0000] "GET /p HTTP/1.1" 200 10')  # Common
    res = reference_access_logs(_write(tmp_path, "rt.log", lines), "response_time", now=NOW)
    assert res["counts"] == {"read": 6, "skipped_blank": 0, "quarantined": 2, "duplicates": 0, "silver": 4}
    # ms 1, 2, 3, 4: p50 at rank 1.5 -> 2.5; p95 at 2.85 -> 3.85; p99 at 2.97 -> 3.97
    (row,) = res["endpoint_daily"]
    assert (row["requests"], row["unique_ips"], row["bytes"]) == (4, 4, 40)
    assert row["p50_ms"] == pytest.approx(2.5)
    assert row["p95_ms"] == pytest.approx(3.85)
    assert row["p99_ms"] == pytest.approx(3.97)


def test_read_lines_edges(tmp_path):
    path = _write(tmp_path, "x.log", [b"a\r", b"", b"b\xffc"], final_newline=False)
    assert list(read_lines(path)) == ["a", "", None]
    path2 = _write(tmp_path, "y.log", [b"a", b"b"])
    assert list(read_lines([path2, path2])) == ["a", "b", "a", "b"]


def test_helpers():
    assert percentile([], 0.5) is None
    assert percentile([7.0], 0.99) == 7.0
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 0.5) == 3.0
    assert split_request_line("GET / HTTP/1.1") == ("GET", "/", "HTTP/1.1")
    assert split_request_line("GET /x") == ("GET", "/x", None)
    assert split_request_line(None) == (None, None, None)
    assert split_request_line("get /a b HTTP/1.1") == ("GET", "/a b", "HTTP/1.1")
    assert split_request_line("GET /a b") == ("GET", "/a b", None)
    assert split_request_line("GET  / HTTP/1.1") == ("GET", " /", "HTTP/1.1")
    assert split_request_line("GET  HTTP/1.1") == (None, None, None)
    assert split_request_line("garbage") == (None, None, None)
    assert split_request_line("\x16\x03\x01") == (None, None, None)


# --- product views -----------------------------------------------------------


def _j(obj) -> bytes:
    return json.dumps(obj).encode()


P1 = _j(
    {
        "_id": "a1",
        "product_id": "p1",
        "device_id": "d1",
        "remote_ip": "66.249.66.1",  # US
        "referrer_url": "https://WWW.Google.com/search?q=x",
        "store_id": "US",
        "timestamp": "2024-03-01T23:30:00-05:00",  # UTC 2 March 04:30
    }
)
VIEW_LINES = [
    P1,
    # P2: {"$oid"} id, epoch 2024-03-02T00:00:00Z, empty referrer -> direct, blank store -> unknown
    _j({"_id": {"$oid": "b2"}, "product_id": "p1", "device_id": "d2", "remote_ip": "2003::1",
        "referrer_url": "", "store_id": " ", "time_stamp": 1709337600}),  # fmt: skip
    # P3: event_id, private ip -> unknown, no referrer -> direct, d1 in store US again
    _j({"event_id": "e3", "product_id": "p1", "device_id": "d1", "remote_ip": "10.0.0.1",
        "store_id": "US", "timestamp": "2024-03-02T10:15:00.250Z"}),  # fmt: skip
    # P4: no id (its place is its id), naive timestamp = UTC, no remote_ip, a numeric store_id
    _j({"product_id": "p2", "device_id": "d1", "timestamp": "2024-03-01T12:00:00",
        "referrer_url": "http://partner.example.net:8080/x", "store_id": 41}),  # fmt: skip
    P1,  # P5: exact duplicate
    # P6: same _id as P1, other content: duplicate too (first wins)
    _j({"_id": "a1", "product_id": "p9", "device_id": "d9", "timestamp": "2024-03-02T01:00:00Z"}),
    b"",  # P7 blank
    b'{"_id": "x8", "product_id": "p1", "dev',  # P8 invalid JSON
    b'[{"_id": "x9", "product_id": "p1"}]',  # P9 not an object
    _j({"_id": "x10", "product_id": "", "timestamp": "2024-03-01T00:00:00Z"}),  # P10
    _j({"_id": "x11", "timestamp": "2024-03-01T00:00:00Z"}),  # P11 no product_id
    _j({"_id": "x12", "product_id": "p1", "timestamp": "yesterday"}),  # P12
    _j({"_id": "x13", "product_id": "p1", "time_stamp": 0}),  # P13 1970
    # P14: bad timestamp but a good time_stamp (2024-03-01T12:00:00Z), null device, unknown field
    _j({"_id": "x14", "product_id": "p3", "timestamp": "yesterday", "time_stamp": 1709294400,
        "device_id": None, "option": [1, 2]}),  # fmt: skip
    # P15: +07:00 -> UTC 2 March 03:15; store ids are case-sensitive, as sent
    _j({"_id": "x15", "product_id": "p1", "device_id": "d3", "timestamp": "2024-03-02T10:15:00+07:00",
        "referrer_url": "https://www.google.com/", "store_id": "us"}),  # fmt: skip
    b"  \t",  # P16 blank
]


def test_product_views_counts_and_gold(tmp_path):
    path = _write(tmp_path, "pv.jsonl", VIEW_LINES)
    res = reference_product_views([path], now=NOW)
    assert res["counts"] == {
        "read": 16,
        "skipped_blank": 2,
        "quarantined": 6,
        "duplicates": 2,
        "silver": 6,
    }
    assert res["quarantine_reasons"] == {
        "invalid_json": 1,
        "not_an_object": 1,
        "missing_product_id": 2,
        "bad_timestamp": 1,
        "out_of_range": 1,
    }
    assert res["product_views_daily"] == [
        {"report_date": D1, "product_id": "p2", "view_count": 1, "unique_visitors": 1,
         "last_view_time": datetime(2024, 3, 1, 12, 0)},  # P4
        {"report_date": D1, "product_id": "p3", "view_count": 1, "unique_visitors": 0,
         "last_view_time": datetime(2024, 3, 1, 12, 0)},  # P14
        {"report_date": D2, "product_id": "p1", "view_count": 4, "unique_visitors": 3,
         "last_view_time": datetime(2024, 3, 2, 10, 15, 0, 250000)},  # P1 P2 P3 P15
    ]  # fmt: skip
    assert res["country_views_daily"] == [
        {"report_date": D1, "country": "(unknown)", "view_count": 2, "unique_visitors": 1},
        {"report_date": D2, "country": "(unknown)", "view_count": 2, "unique_visitors": 2},
        {"report_date": D2, "country": "DE", "view_count": 1, "unique_visitors": 1},
        {"report_date": D2, "country": "US", "view_count": 1, "unique_visitors": 1},
    ]
    assert res["referrer_views_daily"] == [
        {"report_date": D1, "referrer_host": "(direct)", "view_count": 1, "unique_visitors": 0},
        {"report_date": D1, "referrer_host": "partner.example.net", "view_count": 1,
         "unique_visitors": 1},
        {"report_date": D2, "referrer_host": "(direct)", "view_count": 2, "unique_visitors": 2},
        {"report_date": D2, "referrer_host": "www.google.com", "view_count": 2,
         "unique_visitors": 2},
    ]  # fmt: skip
    assert res["store_views_daily"] == [
        {"report_date": D1, "store_id": "(unknown)", "view_count": 1, "unique_visitors": 0},  # P14
        {"report_date": D1, "store_id": "41", "view_count": 1, "unique_visitors": 1},  # P4
        {"report_date": D2, "store_id": "(unknown)", "view_count": 1, "unique_visitors": 1},  # P2
        {"report_date": D2, "store_id": "US", "view_count": 2, "unique_visitors": 1},  # P1 P3
        {"report_date": D2, "store_id": "us", "view_count": 1, "unique_visitors": 1},  # P15
    ]
    assert res["referrer_url_views_daily"] == [
        {"report_date": D1, "referrer_url": "(direct)", "view_count": 1, "unique_visitors": 0},
        {"report_date": D1, "referrer_url": "http://partner.example.net:8080/x", "view_count": 1,
         "unique_visitors": 1},
        {"report_date": D2, "referrer_url": "(direct)", "view_count": 2, "unique_visitors": 2},
        {"report_date": D2, "referrer_url": "https://WWW.Google.com/search?q=x", "view_count": 1,
         "unique_visitors": 1},
        {"report_date": D2, "referrer_url": "https://www.google.com/", "view_count": 1,
         "unique_visitors": 1},
    ]  # fmt: skip


def test_product_views_without_id_are_each_a_view(tmp_path):
    line = _j({"product_id": "p1", "device_id": "d1", "time_stamp": 1709294400})
    other = _j({"product_id": "p1", "device_id": "d2", "time_stamp": 1709294400})
    res = reference_product_views(_write(tmp_path, "pv.jsonl", [line, line + b"\r", other]), now=NOW)
    assert res["counts"]["duplicates"] == 0
    assert res["product_views_daily"][0]["view_count"] == 3
    assert res["product_views_daily"][0]["unique_visitors"] == 2


def test_product_views_long_store_ids_and_referrer_urls_are_quarantined(tmp_path):
    url = "https://shop.example/?q=" + "x" * 2024  # 2048 bytes: kept
    lines = [
        _j({"_id": "a", "product_id": "p1", "store_id": "s" * 256, "time_stamp": 1709294400}),
        _j({"_id": "b", "product_id": "p1", "referrer_url": url + "x", "time_stamp": 1709294400}),
        _j({"_id": "c", "product_id": "p1", "referrer_url": "https://shop.example/" + "é" * 1100, "time_stamp": 1709294400}),
        _j({"_id": "d", "product_id": "p1", "store_id": "s" * 255, "referrer_url": url, "time_stamp": 1709294400}),
    ]
    res = reference_product_views(_write(tmp_path, "pv.jsonl", lines), now=NOW)
    assert res["quarantine_reasons"] == {"store_id_too_long": 1, "referrer_url_too_long": 2}
    assert [r["referrer_url"] for r in res["referrer_url_views_daily"]] == [url]
    assert [r["store_id"] for r in res["store_views_daily"]] == ["s" * 255]


def test_product_views_ids_must_be_strings_or_numbers(tmp_path):
    lines = [
        _j({"_id": "a", "product_id": {"sku": 1}, "time_stamp": 1709294400}),
        _j({"_id": "b", "product_id": "p1", "device_id": ["d"], "time_stamp": 1709294400}),
        _j({"_id": "c", "product_id": True, "time_stamp": 1709294400}),
        _j({"_id": "d", "product_id": 7, "device_id": 8, "time_stamp": 1709294400}),
    ]
    res = reference_product_views(_write(tmp_path, "pv.jsonl", lines), now=NOW, keep_silver=True)
    assert res["quarantine_reasons"] == {"id_not_scalar": 3}
    assert [(r["product_id"], r["device_id"]) for r in res["silver"]] == [("7", "8")]
