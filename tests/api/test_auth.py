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

KEY = "s3cret-key-of-at-least-32-characters"


@pytest.fixture(scope="module")
def keyed(sqlite_config):
    # Many refused requests in this module: the limit on failed attempts is tested apart.
    cfg = with_api_key(sqlite_config, KEY, auth_failure_burst=10_000)
    with running(create_app(cfg)) as url, httpx.Client(base_url=url, timeout=10) as client:
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
    # As Prometheus sends it (`authorization:` of a scrape job).
    assert keyed.get("/metrics", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
    assert keyed.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    # Refused requests are counted too (no route matched for them: they never got that far).
    assert 'lakehouse_api_requests_total{method="GET",route="(unmatched)",status="4xx"}' in scrape.text


def test_the_openapi_schema_declares_the_key(keyed):
    spec = keyed.get("/openapi.json", headers={"X-API-Key": KEY}).json()
    assert spec["components"]["securitySchemes"]["APIKeyHeader"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}


@pytest.mark.parametrize(("host", "allowed"), [("127.0.0.1", True), ("localhost", True), ("::1", True),
                                                ("0.0.0.0", False), ("192.168.1.10", False), ("example.org", False)])
def test_only_loopback_without_a_key(config, host, allowed):
    assert (serve.refusal(config, host) is None) is allowed
    assert serve.refusal(with_api_key(config, KEY), host) is None


def test_a_key_shorter_than_32_characters_is_refused(config, monkeypatch, capsys):
    weak = with_api_key(config, "1")
    assert "at least 32" in serve.refusal(weak, "0.0.0.0")
    assert "at least 32" in serve.refusal(weak, "127.0.0.1")
    with pytest.raises(ValueError, match="the API key has 31 characters, at least 32"):
        create_app(with_api_key(config, "k" * 31))
    monkeypatch.setenv("LAKEHOUSE_API_KEY", "1")
    assert serve.main(["--host", "0.0.0.0"]) == 2
    assert "at least 32" in capsys.readouterr().err


def test_failed_keys_are_limited_per_address_and_then_even_the_right_one_waits(sqlite_config):
    cfg = with_api_key(sqlite_config, KEY, auth_failure_burst=3, auth_failure_rate_per_second=0.01)
    with running(create_app(cfg)) as url, httpx.Client(base_url=url, timeout=10) as client:
        assert client.get("/analytics/top_ips", headers={"X-API-Key": KEY}).status_code == 200  # costs nothing
        assert [client.get("/analytics/top_ips", headers={"X-API-Key": f"guess-{n}"}).status_code
                for n in range(5)] == [401, 401, 401, 429, 429]
        refused = client.get("/analytics/top_ips", headers={"X-API-Key": KEY})
        # No more guesses from this address for now: not even the right key is looked at.
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
        assert client.get("/health").status_code == 200  # the open route stays open


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


def test_lakehouse_serve_runs_on_the_warehouse_export(sqlite_config, tmp_path):
    """The real command in its own process, the key from the environment; a forwarded
    address from a client (no proxy is configured) does not make it another client."""
    port = free_ports()[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")}
    env |= {"LAKEHOUSE_API_KEY": KEY, "LAKEHOUSE_HOME": str(ROOT), "LAKEHOUSE_IP_EVENTS__LANDING": str(tmp_path),
            "LAKEHOUSE_API__INGEST_BURST": "1", "LAKEHOUSE_API__INGEST_RATE_PER_SECOND": "0.01"}
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
        ingest = [httpx.post(f"http://127.0.0.1:{port}/ingest-ip", json={"ip": "8.8.8.8"},
                             headers={"X-API-Key": KEY, "X-Forwarded-For": f"203.0.113.{n}"}).status_code
                  for n in range(2)]
        assert ingest == [202, 429]
        assert children(proc.pid) == []  # no Spark: not even a JVM started
    finally:
        proc.terminate()
        proc.wait(10)


def test_collectors_sharing_a_key_each_have_their_own_bucket(sqlite_config, tmp_path):
    from lakehouse.io.ip_sink import LandingSink

    cfg = with_api_key(sqlite_config, KEY, ingest_burst=1, ingest_rate_per_second=0.01)
    with running(create_app(cfg, sink=LandingSink(tmp_path))) as url:
        def post(address: str) -> int:
            transport = httpx.HTTPTransport(local_address=address)  # another loopback address: another client
            with httpx.Client(base_url=url, transport=transport, timeout=10) as client:
                return client.post("/ingest-ip", json={"ip": "8.8.8.8"}, headers={"X-API-Key": KEY}).status_code

        assert [post("127.0.0.1"), post("127.0.0.1"), post("127.0.0.2")] == [202, 429, 202]


def test_health_answers_from_its_last_check_for_a_few_seconds(sqlite_config, monkeypatch):
    from lakehouse.io import gold_db

    calls = []
    real = gold_db.freshness
    monkeypatch.setattr(gold_db, "freshness", lambda gold: calls.append(1) or real(gold))
    with running(create_app(with_api_key(sqlite_config, None, health_cache_seconds=60))) as url, \
            httpx.Client(base_url=url, timeout=10) as client:
        answers = {client.get("/health").status_code for _ in range(50)}
    assert answers == {200} and len(calls) == 1
