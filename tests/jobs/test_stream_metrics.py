"""The stream's Prometheus endpoint: each micro-batch's progress becomes gauges, scraped over HTTP."""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from lakehouse.jobs.stream_metrics import StreamMetrics, serve_metrics
from lakehouse.jobs.stream_progress import batch_progress
from tests.conftest import free_ports


def report(batch_id: int, rows: int, millis: int, end: dict, latest: dict) -> dict:
    """A progress report as Spark writes it for a Kafka source."""
    return {
        "batchId": batch_id,
        "numInputRows": rows,
        "durationMs": {"addBatch": millis - 100, "triggerExecution": millis},
        "sources": [{"endOffset": {"access_logs": end}, "latestOffset": {"access_logs": latest}}],
    }


def scrape(text: str) -> dict:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def observe_two_batches(metrics: StreamMetrics) -> None:
    metrics.observe("access_logs", "access_logs", batch_progress(report(0, 1000, 500, {"0": 600, "1": 400}, {"0": 900, "1": 400})))
    metrics.observe("access_logs", "access_logs", batch_progress(report(1, 300, 250, {"0": 900, "1": 400}, {"0": 950, "1": 410})))


def test_each_batch_sets_rate_duration_and_lag_per_partition():
    metrics = StreamMetrics()
    observe_two_batches(metrics)
    r = metrics.registry
    dataset = {"dataset": "access_logs"}
    assert r.get_sample_value("lakehouse_stream_rows_total", dataset) == 1300
    assert r.get_sample_value("lakehouse_stream_batches_total", dataset) == 2
    assert r.get_sample_value("lakehouse_stream_batch_rows", dataset) == 300
    assert r.get_sample_value("lakehouse_stream_batch_duration_seconds", dataset) == 0.25
    assert r.get_sample_value("lakehouse_stream_rows_per_second", dataset) == 1200
    lag = {"dataset": "access_logs", "topic": "access_logs"}
    assert r.get_sample_value("lakehouse_stream_lag_offsets", lag | {"partition": "0"}) == 50
    assert r.get_sample_value("lakehouse_stream_lag_offsets", lag | {"partition": "1"}) == 10


def test_the_endpoint_serves_them_on_loopback():
    port = free_ports()[0]
    metrics, server = serve_metrics(port)
    try:
        observe_two_batches(metrics)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            samples = scrape(response.read().decode())
    finally:
        server.shutdown()
        server.server_close()
    assert samples[("lakehouse_stream_rows_total", frozenset({"dataset": "access_logs"}.items()))] == 1300
    lag = {"dataset": "access_logs", "topic": "access_logs", "partition": "0"}
    assert samples[("lakehouse_stream_lag_offsets", frozenset(lag.items()))] == 50
    assert server.server_address[0] == "127.0.0.1"


def test_the_stream_supervisor_hands_each_new_batch_to_the_metrics_once():
    from types import SimpleNamespace

    from lakehouse.jobs.runtime import JobRun
    from lakehouse.jobs.stream_kafka import log_progress
    from lakehouse.jobs.stream_query import DatasetStream

    stream = DatasetStream("access_logs", "weblogs", "bronze", "checkpoint")
    stream.query = SimpleNamespace(recentProgress=[report(0, 1000, 500, {"0": 600}, {"0": 900})])
    metrics = StreamMetrics()
    log_progress(stream, JobRun("stream"), metrics)
    log_progress(stream, JobRun("stream"), metrics)  # the same report again: not counted twice
    assert metrics.registry.get_sample_value("lakehouse_stream_rows_total", {"dataset": "access_logs"}) == 1000
    lag = {"dataset": "access_logs", "topic": "weblogs", "partition": "0"}
    assert metrics.registry.get_sample_value("lakehouse_stream_lag_offsets", lag) == 300


def test_a_port_already_taken_leaves_the_job_running_without_its_endpoint(caplog):
    import socket

    from lakehouse.jobs.stream_metrics import endpoint

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        with endpoint("127.0.0.1", taken.getsockname()[1]) as metrics:
            assert metrics is None
        with endpoint("127.0.0.1", None) as metrics:
            assert metrics is None
    finally:
        taken.close()
    assert "not started" in caplog.text
