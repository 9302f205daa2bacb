"""Safe by default: loopback unless a key is set; with a key every route but /health needs it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from lakehouse.api.app import create_app
from lakehouse.jobs import serve
from tests.api.conftest import running, with_api_key
from tests.conftest import ROOT, free_ports

KEY = "s3cret-key"


@pytest.fixture(scope="module")
def keyed(sqlite_config):
    with running(create_app(with_api_key(sqlite_config, KEY))) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield client


@pytest.mark.parametrize(
    "path", ["/analytics/top_ips", "/analytics/error_rate", "/metrics", "/docs", "/openapi.json", "/nowhere"]
)
def test_without_the_key_every_route_is_a_401(keyed, path):
    assert keyed.get(path).status_code == 401
    response = keyed.get(path, headers={"X-API-Key": "wrong"})
    assert response.status_code == 401
    assert response.json() == {"detail": "wrong API key"}


def test_with_the_key_the_routes_answer_and_health_never_needs_it(keyed):
    assert keyed.get("/analytics/top_ips").status_code == 401
    assert keyed.get("/analytics/top_ips", headers={"X-API-Key": KEY}).json()["rows"][0]["ip"] == "10.0.0.2"
    assert keyed.get("/health").status_code == 200
    scrape = keyed.get("/metrics", headers={"X-API-Key": KEY})
    assert scrape.status_code == 200
    # Refused requests are counted too (no route matched for them: they never got that far).
    assert 'lakehouse_api_requests_total{method="GET",route="(unmatched)",status="401"}' in scrape.text


def test_the_openapi_schema_declares_the_key(keyed):
    spec = keyed.get("/openapi.json", headers={"X-API-Key": KEY}).json()
    assert spec["components"]["securitySchemes"]["APIKeyHeader"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}


@pytest.mark.parametrize(("host", "allowed"), [("127.0.0.1", True), ("localhost", True), ("::1", True),
                                                ("0.0.0.0", False), ("192.168.1.10", False), ("example.org", False)])
def test_only_loopback_without_a_key(config, host, allowed):
    assert (serve.refusal(config, host) is None) is allowed
    assert serve.refusal(with_api_key(config, KEY), host) is None


def test_serve_refuses_a_public_address_without_a_key(monkeypatch, capsys):
    monkeypatch.delenv("LAKEHOUSE_API_KEY", raising=False)
    assert serve.main(["--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "refusing to listen on 0.0.0.0 without an API key" in err[0]


def children(pid: int) -> list[int]:
    """Processes whose parent is `pid` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def test_lakehouse_serve_runs_on_the_warehouse_export(sqlite_config):
    """The real command in its own process, the key from the environment."""
    port = free_ports()[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")}
    env |= {"LAKEHOUSE_API_KEY": KEY, "LAKEHOUSE_HOME": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "lakehouse", "serve", "--port", str(port), "--warehouse", sqlite_config.warehouse],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stdout and proc.stdout.read()
                time.sleep(0.1)
        assert health.json()["gold"]["latest_report_date"] == "2024-03-03"
        countries = httpx.get(f"http://127.0.0.1:{port}/analytics/countries", params={"limit": 1}, headers={"X-API-Key": KEY})
        assert countries.json()["rows"] == [{"country": "US", "views": 7}]
        assert httpx.get(f"http://127.0.0.1:{port}/analytics/countries").status_code == 401
        assert children(proc.pid) == []  # no Spark: not even a JVM started
    finally:
        proc.terminate()
        proc.wait(10)
