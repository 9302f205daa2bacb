"""A gold database that cannot answer is a quick 503 with a reason, never a hang or a trace."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from lakehouse.api.app import create_app
from tests.api.conftest import running, with_export
from tests.conftest import free_ports

ROUTES = ("requests_per_endpoint", "top_ips", "error_rate", "top_products", "countries")


def assert_503_quickly(client: httpx.Client, path: str, within: float, reason: str, *hidden: str) -> None:
    """A 503 within `within` s naming `reason`, and none of `hidden` (hosts, ports, paths)."""
    started = time.monotonic()
    response = client.get(path)
    assert time.monotonic() - started < within, path
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/json"
    assert reason in response.json()["detail"]
    assert "Traceback" not in response.text
    for secret in hidden:
        assert secret not in response.text


def test_a_closed_postgresql_port_is_a_503_at_once_naming_no_host(config):
    port = free_ports()[0]
    cfg = with_export(config, f"jdbc:postgresql://127.0.0.1:{port}/secretdb", "lakehouse", "x")
    with running(create_app(cfg)) as url, httpx.Client(base_url=url, timeout=30) as client:
        for route in ROUTES:
            assert_503_quickly(client, f"/analytics/{route}", 2.0, "Connection refused", "127.0.0.1", str(port), "secretdb")
        health = client.get("/health")
        assert health.status_code == 503
        assert health.json()["status"] == "unavailable"
        assert "127.0.0.1" not in health.text and "secretdb" not in health.text
        # The scrape still works and says the database is down.
        scrape = client.get("/metrics")
        assert scrape.status_code == 200
        assert "lakehouse_gold_database_up 0.0" in scrape.text


def test_a_server_that_never_answers_times_out_into_a_503(config):
    # A listening socket nobody accepts on: the TCP handshake succeeds, the login never does.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        cfg = with_export(config, f"jdbc:postgresql://127.0.0.1:{port}/lakehouse", "lakehouse", "x")
        with running(create_app(cfg)) as url, httpx.Client(base_url=url, timeout=30) as client:
            assert_503_quickly(client, "/analytics/top_ips", 8.0, "timeout", str(port))


def test_a_missing_sqlite_export_is_a_503_saying_what_to_run(config, tmp_path):
    cfg = with_export(config, f"jdbc:sqlite:{tmp_path}/nothing-here.db")
    with running(create_app(cfg)) as url, httpx.Client(base_url=url, timeout=30) as client:
        assert_503_quickly(client, "/analytics/countries", 2.0, "run `lakehouse export`", str(tmp_path))
        health = client.get("/health").json()
        assert health["detail"] == "nothing exported yet (run `lakehouse export`)"
    assert not (tmp_path / "nothing-here.db").exists()  # read-only: the API never creates it


def test_tables_not_exported_yet_are_a_503_naming_the_table(config, tmp_path):
    import sqlite3

    sqlite3.connect(tmp_path / "empty.db").close()
    cfg = with_export(config, f"jdbc:sqlite:{tmp_path}/empty.db")
    with running(create_app(cfg)) as url, httpx.Client(base_url=url, timeout=30) as client:
        assert_503_quickly(client, "/analytics/top_products", 2.0, "table product_views_daily is not exported yet")


@pytest.mark.services
def test_the_api_survives_a_postgresql_restart_and_outage(config, pg_server):
    from lakehouse_dev.services import postgres

    cfg = with_export(config, pg_server.jdbc_url, pg_server.user, pg_server.password)
    restart = dict(port=pg_server.port, password=pg_server.password)
    try:
        with running(create_app(cfg)) as url, httpx.Client(base_url=url, timeout=30) as client:
            assert client.get("/analytics/countries").status_code == 200  # leaves a kept connection
            postgres.stop(pg_server.base_dir)
            postgres.start(pg_server.base_dir, **restart)
            # The kept connection died with the restart: the query is retried on a new one.
            assert client.get("/analytics/countries").status_code == 200
            postgres.stop(pg_server.base_dir)
            assert_503_quickly(client, "/analytics/countries", 5.0, "gold database unavailable")
            postgres.start(pg_server.base_dir, **restart)
            response = client.get("/analytics/countries")
            assert response.status_code == 200, response.text
            assert response.json()["rows"][0] == {"country": "US", "views": 7}
    finally:
        postgres.start(pg_server.base_dir, **restart)  # the run's server, up for the tests after this one


@pytest.mark.services
def test_a_query_over_the_statement_timeout_is_cut_off(config, pg_server, monkeypatch):
    from lakehouse.io import gold_db

    monkeypatch.setattr(gold_db, "STATEMENT_TIMEOUT_MS", 200)
    cfg = with_export(config, pg_server.jdbc_url, pg_server.user, pg_server.password)
    with gold_db.reader(cfg.export) as gold:
        started = time.monotonic()
        with pytest.raises(gold_db.GoldUnavailable, match="query took more than 200 ms"):
            gold.query("SELECT pg_sleep(5)")
        assert time.monotonic() - started < 3
        assert gold.query("SELECT count(*) AS n FROM top_ips_daily") == [{"n": 5}]
