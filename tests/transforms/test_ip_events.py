"""IP sightings (seed 000): silver parsing and the current geolocation per IP, on inline rows."""

import hashlib
import json
from datetime import date, datetime

from chispa import assert_df_equality
from pyspark.sql import functions as F

from lakehouse.feeds.ip_events.parse import canonical_ip_text, ip_event_rows, ip_geolocation
from tests.conftest import bronze_rows

INGESTED = datetime(2024, 3, 5)


def sighting(ip="81.2.69.160", received_at="2024-03-01T10:00:00.000000Z", request_id="r1"):
    return json.dumps({"ip": ip, "received_at": received_at, "request_id": request_id})


def parse(spark, *lines):
    df = bronze_rows(
        spark,
        [{"value": line, "source_file_id": "f", "source_line": i, "ingested_at": INGESTED} for i, line in enumerate(lines, 1)],
    )
    return ip_event_rows(df, "2000-01-01", 24)


def test_valid_sightings_are_canonical_utc_and_identified_by_their_place(spark):
    out = parse(
        spark,
        sighting(),
        sighting(ip="2001:DB8:0:0::1", received_at="2024-03-01T23:30:00+02:00"),
        sighting(),  # the same sighting twice: two hits, two places
    )
    rows = out.select("event_id", "ip", "event_ts", "event_date", "request_id", "reason").orderBy("source_line").collect()
    assert [tuple(r)[1:] for r in rows] == [
        ("81.2.69.160", datetime(2024, 3, 1, 10), date(2024, 3, 1), "r1", None),
        ("2001:db8::1", datetime(2024, 3, 1, 21, 30), date(2024, 3, 1), "r1", None),
        ("81.2.69.160", datetime(2024, 3, 1, 10), date(2024, 3, 1), "r1", None),
    ]
    assert [r.event_id for r in rows] == [hashlib.sha256(f"file:f:{n}".encode()).hexdigest() for n in (1, 2, 3)]


def test_each_kind_of_bad_record_is_quarantined_with_its_reason(spark):
    out = parse(
        spark,
        "{not json",
        "[1, 2]",
        json.dumps({"received_at": "2024-03-01T10:00:00Z"}),
        json.dumps({"ip": "", "received_at": "2024-03-01T10:00:00Z"}),
        json.dumps({"ip": 8, "received_at": "2024-03-01T10:00:00Z"}),
        sighting(ip="999.1.1.1"),
        sighting(ip="fe80::1%eth0"),
        sighting(ip=" 8.8.8.8"),
        sighting(ip="example.com"),
        sighting(ip="0.0.0.0"),
        sighting(ip="ff02::1"),
        json.dumps({"ip": "8.8.8.8"}),
        sighting(received_at="yesterday"),
        sighting(received_at="1999-12-31T00:00:00Z"),
        sighting(request_id="x" * 65),
        "   ",
    )
    reasons = [r.reason for r in out.orderBy("source_line").collect()]
    assert reasons == [
        "invalid JSON",
        "JSON is not an object",
        "missing ip",
        "missing ip",
        "invalid ip: not a string but bigint",
        "invalid ip: not an IPv4 or IPv6 address: 999.1.1.1",
        "invalid ip: not an IPv4 or IPv6 address: fe80::1%eth0",
        "invalid ip: not an IPv4 or IPv6 address:  8.8.8.8",
        "invalid ip: not an IPv4 or IPv6 address: example.com",
        "invalid ip: 0.0.0.0 is the unspecified address, not a client's",
        "invalid ip: ff02::1 is a multicast address, not a client's",
        "missing received_at",
        "unparseable received_at: yesterday",
        "timestamp out of range: before 2000-01-01: 1999-12-31 00:00:00",
        "request_id longer than 64 characters",
        None,
    ]
    assert [r.is_blank for r in out.orderBy("source_line").collect()][-1] is True


def test_canonical_ip_text_is_the_standard_librarys_compressed_form_and_mapped_ipv4_is_ipv4():
    assert canonical_ip_text("2001:0DB8:0000::0001") == ("2001:db8::1", None)
    assert canonical_ip_text("::ffff:1.2.3.4") == ("1.2.3.4", None)  # the same visitor as 1.2.3.4
    assert canonical_ip_text("01.2.3.4")[0] is None  # a leading zero is ambiguous (octal?)
    assert canonical_ip_text("1.2.3.4\n")[0] is None
    assert canonical_ip_text("::") == (None, ":: is the unspecified address, not a client's")


SILVER_SCHEMA = (
    "ip string, event_ts timestamp, ingested_at timestamp, country string, city string, latitude double, longitude double"
)


def test_geolocation_has_one_row_per_ip_with_its_first_and_last_sighting_and_latest_place(spark):
    sightings = spark.createDataFrame(
        [
            ("81.2.69.160", datetime(2024, 3, 1, 10), datetime(2024, 3, 5), "GB", "London", 51.5, -0.1),
            ("81.2.69.160", datetime(2024, 3, 2, 9), datetime(2024, 3, 5), "GB", "Londres", 51.6, -0.2),
            ("81.2.69.160", datetime(2024, 3, 1, 12), datetime(2024, 3, 6), "GB", "London", 51.5, -0.1),
            ("10.0.0.1", datetime(2024, 3, 1, 8), datetime(2024, 3, 5), None, None, None, None),
        ],
        SILVER_SCHEMA,
    )
    refreshed = datetime(2024, 3, 7, 1)
    out = ip_geolocation(sightings, F.lit(refreshed))
    expected = spark.createDataFrame(
        [
            ("10.0.0.1", None, None, None, None, datetime(2024, 3, 1, 8), datetime(2024, 3, 1, 8), 1, refreshed),
            ("81.2.69.160", "GB", "Londres", 51.6, -0.2, datetime(2024, 3, 1, 10), datetime(2024, 3, 2, 9), 3, refreshed),
        ],
        "ip string, country string, city string, latitude double, longitude double, first_seen timestamp, "
        "last_seen timestamp, hits bigint, refreshed_at timestamp",
    )
    assert_df_equality(out, expected, ignore_row_order=True, ignore_nullable=True)
