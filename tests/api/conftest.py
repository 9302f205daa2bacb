"""The API under test: a real uvicorn server on a free loopback port, gold rows written by hand."""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import pytest
import uvicorn

from tests.conftest import free_ports

# A few days of gold, as `lakehouse export` would have written them. The expected
# numbers in the tests are worked out by hand from these rows.
GOLD_ROWS = """
INSERT INTO endpoint_daily (report_date, endpoint, requests, unique_ips, status_2xx, status_3xx, status_4xx, status_5xx, error_rate, bytes, p50_ms, p95_ms, p99_ms) VALUES
  ('2024-03-01', '/home',     10, 4, 8, 1, 1, 0, 0.1, 1000, NULL, NULL, NULL),
  ('2024-03-01', '/api/cart',  5, 2, 2, 0, 2, 1, 0.6,  500, NULL, NULL, NULL),
  ('2024-03-02', '/home',      6, 3, 6, 0, 0, 0, 0.0,  600, NULL, NULL, NULL),
  ('2024-03-02', '/api/cart',  8, 5, 4, 0, 0, 4, 0.5,  800, NULL, NULL, NULL),
  ('2024-03-03', '/login',     3, 1, 0, 0, 3, 0, 1.0,   30, NULL, NULL, NULL);
INSERT INTO traffic_daily (report_date, requests, unique_ips, unique_visitors, bot_requests, status_2xx, status_3xx, status_4xx, status_5xx, bytes) VALUES
  ('2024-03-01', 15, 6, 7, 2, 10, 1, 3, 1, 1500),
  ('2024-03-02', 14, 8, 8, 0, 10, 0, 0, 4, 1400),
  ('2024-03-03',  3, 1, 1, 0,  0, 0, 3, 0,   30);
INSERT INTO top_ips_daily (report_date, ip, requests) VALUES
  ('2024-03-01', '10.0.0.1', 7), ('2024-03-01', '10.0.0.2', 5), ('2024-03-01', '10.0.0.3', 5),
  ('2024-03-02', '10.0.0.2', 9), ('2024-03-02', '10.0.0.4', 1);
INSERT INTO product_views_daily (report_date, product_id, view_count, unique_visitors, last_view_time) VALUES
  ('2024-03-01', 'p1', 4, 3, '2024-03-01 10:00:00.000000'),
  ('2024-03-01', 'p2', 6, 2, '2024-03-01 23:59:59.500000'),
  ('2024-03-02', 'p1', 5, 5, '2024-03-02 08:30:00.000000');
INSERT INTO country_views_daily (report_date, country, view_count, unique_visitors) VALUES
  ('2024-03-01', 'DE', 5, 3), ('2024-03-01', 'US', 5, 4),
  ('2024-03-02', 'US', 2, 2), ('2024-03-02', '(unknown)', 1, 1);
INSERT INTO lakehouse_export_state (report_date, refresh_id, exported_at) VALUES
  ('2024-03-01', 'r1', '2024-03-04 01:00:00.000000'),
  ('2024-03-02', 'r2', '2024-03-04 01:00:00.000000'),
  ('2024-03-03', 'r3', '2024-03-04 02:30:00.000000');
"""


def sqlite_gold(config, path) -> None:
    """The export's SQLite file at `path`: its DDL, then GOLD_ROWS."""
    conn = sqlite3.connect(path)
    try:
        conn.executescript(config.export.schema_ddl.read_text())
        conn.executescript(GOLD_ROWS)
        conn.commit()
    finally:
        conn.close()


def with_export(config, url: str, user: str | None = None, password: str | None = None):
    return replace(config, export=replace(config.export, url=url, user=user, password=password))


def with_api_key(config, key: str | None, **api):
    """`config` with API key `key` (and any other `api:` settings given)."""
    return replace(config, api=replace(config.api, api_key=key, **api))


@contextmanager
def running(app) -> Iterator[str]:
    """Serve `app` with uvicorn in a thread on a free port; yields its base URL."""
    port = free_ports()[0]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not start on port {port}")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def sqlite_config(config, tmp_path_factory):
    """A config whose export is a SQLite file holding GOLD_ROWS."""
    warehouse = tmp_path_factory.mktemp("api-sqlite") / "warehouse"
    warehouse.mkdir()
    cfg = config.with_warehouse(str(warehouse))
    sqlite_gold(cfg, warehouse / "lakehouse.db")
    return cfg


@pytest.fixture(scope="module")
def pg_server(config, stack):
    """A database of the run's PostgreSQL holding GOLD_ROWS (tests using it: mark `services`)."""
    server = stack.database(f"api_{uuid.uuid4().hex[:8]}")
    server.psql(config.export.schema_ddl.read_text() + GOLD_ROWS)
    return server


@pytest.fixture(scope="module")
def postgresql_config(config, pg_server):
    """A config whose export is the PostgreSQL of `pg_server`."""
    return with_export(config, pg_server.jdbc_url, pg_server.user, pg_server.password)
