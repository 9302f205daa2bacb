"""The `api:` and `metrics:` sections of conf/lakehouse.yaml."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request

from lakehouse.config import ConfigError, load_config
from lakehouse.jobs.serve import proxy_options
from lakehouse_dev.services.process import free_ports


def test_defaults_are_loopback_no_key_and_no_stream_metrics():
    config = load_config("local", environ={})
    assert (config.api.host, config.api.port, config.api.api_key, config.api.max_limit) == ("127.0.0.1", 8000, None, 1000)
    assert (config.metrics.stream_port, config.metrics.stream_windows_port, config.metrics.mirror_port) == (None, None, None)


def test_the_services_and_compose_profiles_expose_each_streaming_job():
    ports = lambda c: (c.metrics.host, c.metrics.stream_port, c.metrics.stream_windows_port, c.metrics.mirror_port)  # noqa: E731
    assert ports(load_config("services", environ={})) == ("127.0.0.1", 9108, 9109, 9110)
    assert ports(load_config("compose", environ={})) == ("0.0.0.0", 9108, 9109, 9110)


def test_the_key_comes_from_the_named_variable_and_is_never_printed():
    config = load_config("local", environ={"LAKEHOUSE_API_KEY": "k-123", "LAKEHOUSE_METRICS__STREAM_PORT": "9108"})
    assert config.api.api_key == "k-123"
    assert "k-123" not in repr(config)
    assert config.metrics.stream_port == 9108


def test_a_metrics_port_that_is_not_a_number_names_the_key():
    with pytest.raises(ConfigError, match="metrics.stream_port"):
        load_config("local", environ={"LAKEHOUSE_METRICS__STREAM_PORT": "eighty"})


def client_address_seen(config, forwarded_for: str) -> str:
    """The client address a real uvicorn server, started with `lakehouse serve`'s proxy
    settings, gives a request from loopback that carries `X-Forwarded-For`."""
    app = FastAPI()

    @app.get("/who")
    def who(request: Request) -> dict:
        return {"client": request.client.host}

    port = free_ports()[0]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **proxy_options(config)))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        answer = httpx.get(f"http://127.0.0.1:{port}/who", headers={"X-Forwarded-For": forwarded_for}, timeout=10)
        return answer.json()["client"]
    finally:
        server.should_exit = True
        thread.join(10)


def test_forwarded_headers_are_believed_only_from_configured_proxies():
    assert client_address_seen(load_config("local", environ={}), "203.0.113.7") == "127.0.0.1"
    behind = load_config("local", environ={"LAKEHOUSE_API__TRUSTED_PROXIES": "127.0.0.1"})
    assert client_address_seen(behind, "203.0.113.7") == "203.0.113.7"
