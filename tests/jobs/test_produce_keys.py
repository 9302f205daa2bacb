"""The key a record is produced with: one function for both ways of producing a file."""

from __future__ import annotations

import json
import re

from lakehouse.jobs.produce import file_messages


def test_access_logs_are_keyed_by_client_and_views_by_device_whatever_its_json_type(spark, tmp_path):
    log = tmp_path / "a.log"
    log.write_bytes(b'203.0.113.9 - - [01/Mar/2024:10:00:00 +0000] "GET / HTTP/1.1" 200 5\r\n not-an-ip\n\n\xff bad\n')
    rows = file_messages(spark, str(log), "access_logs").collect()
    assert [(r.key, bytes(r.value)) for r in rows] == [
        ("203.0.113.9", b'203.0.113.9 - - [01/Mar/2024:10:00:00 +0000] "GET / HTTP/1.1" 200 5'),
        (None, b" not-an-ip"),
        (None, b""),
        ("\ufffd", b"\xff bad"),
    ]
    views = tmp_path / "v.jsonl"
    devices = ["d1", 42, {"id": 7}, None]
    views.write_text("\n".join(json.dumps({"product_id": "p", "device_id": d}) for d in devices) + "\n")
    keys = [r.key for r in file_messages(spark, str(views), "product_views").collect()]
    assert keys == ["d1", "42", '{"id":7}', None]


def test_synthetic_records_are_of_the_dataset_asked_for(tmp_path):
    from lakehouse.jobs.produce import synthesize

    def first(dataset: str, count: int) -> tuple[int, dict | str]:
        lines = synthesize(dataset, count, tmp_path, seed=1).read_text().splitlines()
        return len(lines), lines[0]

    n, line = first("access_logs", 20)
    assert n == 20 and re.match(r"\S+ \S+ \S+ \[\d\d/\w{3}/\d{4}:", line), line
    for dataset, field in (("product_views", "product_id"), ("web_events", "host"), ("ip_events", "received_at")):
        n, line = first(dataset, 20)
        assert n >= 20 and field in json.loads(line), dataset
    n, line = first("api_ticks", 4)
    assert n >= 4 and "lastPrice" in line
