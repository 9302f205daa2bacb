"""`privacy.ip_anonymisation` end to end: the batch over access logs, web events and IP
sightings stores no address in silver or gold, locates each one before anonymising, and
(keyed hash) counts distinct visitors and sessions exactly as with the addresses."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import maxminddb
import pytest
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.config import PrivacyConfig
from lakehouse.io import delta, geoip
from lakehouse.jobs.batch import run_batch

pytestmark = pytest.mark.slow  # whole jobs on Spark: seconds each (make test, not test-fast)

KEY = "privacy-test-key-0123456789"
IPS = ("81.2.69.160", "89.160.20.112", "2001:db8::1")
# (ip, seconds past 10:00 on 2024-03-01): 81.2.69.160 twice 30 s apart in the first
# window (one session: the gap is 60 s), then again 10 minutes later (a second session);
# 89.160.20.112 once in each window; the IPv6 address once.
WEB = [(IPS[0], 0), (IPS[0], 30), (IPS[1], 120), (IPS[2], 180), (IPS[0], 660), (IPS[1], 720)]
ACCESS = [IPS[0], IPS[1], IPS[1]]
SIGHTINGS = [IPS[0], IPS[0], IPS[1]]


def keyed(ip: str) -> str:
    return hmac.new(KEY.encode(), ip.encode(), hashlib.sha256).hexdigest()


def write_inputs(folder: Path) -> dict[str, str]:
    folder.mkdir()
    (folder / "web.jsonl").write_text("".join(
        json.dumps({"ip": ip, "host": "shop.example", "url": "/", "user_agent": "Mozilla/5.0",
                    "event_time": f"2024-03-01T10:{s // 60:02d}:{s % 60:02d}Z"}) + "\n"
        for ip, s in WEB
    ))  # fmt: skip
    (folder / "access.log").write_text("".join(
        f'{ip} - - [01/Mar/2024:10:0{n}:00 +0000] "GET /p HTTP/1.1" 200 10 "-" "Mozilla/5.0"\n'
        for n, ip in enumerate(ACCESS)
    ))  # fmt: skip
    (folder / "ips.jsonl").write_text("".join(
        json.dumps({"ip": ip, "received_at": f"2024-03-01T1{n}:00:00Z", "request_id": "r"}) + "\n"
        for n, ip in enumerate(SIGHTINGS)
    ))  # fmt: skip
    return {"access_logs": str(folder / "access.log"), "web_events": str(folder / "web.jsonl"),
            "ip_events": str(folder / "ips.jsonl")}  # fmt: skip


def run(spark, config, tmp_path: Path, mode: str, datasets=("access_logs", "web_events", "ip_events")):
    config = replace(config, privacy=PrivacyConfig(mode, KEY if mode == "hash" else None))
    inputs = {k: v for k, v in write_inputs(tmp_path / "in").items() if k in datasets}
    # No export: what this test reads is silver and gold (the export copies gold as it is).
    run_batch(spark, config, inputs.get("access_logs"), None, export=False,
              web_events=inputs.get("web_events"), ip_events=inputs.get("ip_events"))
    return config


def rows(spark, config, layer, table, *columns):
    return sorted(tuple(r) for r in delta.read_table(spark, config.table_path(layer, table)).select(*columns).collect())


def country_of(database: Path, ip: str):
    with maxminddb.open_database(str(database)) as reader:
        return ((reader.get(ip) or {}).get("country") or {}).get("iso_code")


def test_keyed_hash_stores_no_address_and_keeps_counts_and_places_exact(spark, warehouse_config, tmp_path):
    config = run(spark, warehouse_config, tmp_path, "hash")
    database = geoip.database_path(config.geoip_database)
    assert country_of(database, IPS[0]) is not None  # the oracle locates it

    assert rows(spark, config, "silver", "web_events", "ip", "country") == sorted(
        (keyed(ip), country_of(database, ip)) for ip, _ in WEB
    )
    assert rows(spark, config, "silver", "access_logs", "ip", "country") == sorted(
        (keyed(ip), country_of(database, ip)) for ip in ACCESS
    )
    assert rows(spark, config, "gold", "traffic_5min", "window_start", "hits", "unique_ips") == [
        (datetime(2024, 3, 1, 10, 0), 4, 3),
        (datetime(2024, 3, 1, 10, 10), 2, 2),
    ]
    assert rows(spark, config, "gold", "sessions", "ip", "hits") == sorted(
        [(keyed(IPS[0]), 2), (keyed(IPS[0]), 1), (keyed(IPS[1]), 1), (keyed(IPS[1]), 1), (keyed(IPS[2]), 1)]
    )
    assert rows(spark, config, "gold", "traffic_daily", "requests", "unique_ips") == [(3, 2)]
    assert rows(spark, config, "gold", "top_ips_daily", "ip", "requests") == sorted([(keyed(IPS[1]), 2), (keyed(IPS[0]), 1)])
    assert rows(spark, config, "gold", "ip_geolocation", "ip", "country", "hits") == sorted(
        [(keyed(IPS[0]), country_of(database, IPS[0]), 2), (keyed(IPS[1]), country_of(database, IPS[1]), 1)]
    )
    # No address anywhere in silver or gold, and no GeoIP dimension keyed by them.
    assert not delta.table_exists(spark, config.table_path("silver", "dim_ip_geo"))
    for layer in ("silver", "gold"):
        for table in sorted(p.name for p in (Path(config.warehouse) / layer).iterdir()):
            df = delta.read_table(spark, config.table_path(layer, table))
            text = [f.name for f in df.schema.fields if isinstance(f.dataType, T.StringType)]
            if not text:
                continue
            everything = F.concat_ws("|", *[F.coalesce(F.col(c), F.lit("")) for c in text])
            holds = [F.contains(everything, F.lit(ip)) for ip in IPS]
            assert df.where(holds[0] | holds[1] | holds[2]).count() == 0, f"{layer}/{table} holds an address"


def test_truncation_stores_networks(spark, warehouse_config, tmp_path):
    config = run(spark, warehouse_config, tmp_path, "truncate", datasets=("ip_events",))
    database = geoip.database_path(config.geoip_database)
    assert rows(spark, config, "silver", "ip_events", "ip", "country") == [
        ("81.2.69.0", country_of(database, IPS[0])), ("81.2.69.0", country_of(database, IPS[0])),
        ("89.160.20.0", country_of(database, IPS[1])),
    ]  # fmt: skip
    assert rows(spark, config, "gold", "ip_geolocation", "ip", "hits") == [("81.2.69.0", 2), ("89.160.20.0", 1)]
