"""Prometheus endpoint of the streaming jobs (`lakehouse stream`, `stream-windows`, `mirror`):
rows, batches, rows/s, batch duration and lag per partition.

On when the job's port is set (`metrics.<job>_port`, or its --metrics-port): `endpoint`
starts prometheus_client's HTTP server on `metrics.host` (loopback by default: the figures
name topics, and there is no key), and the job's supervisor hands every finished
micro-batch to `StreamMetrics.observe`. prometheus-client comes with the `api` extra, not
the core install: it is imported only when an endpoint is on.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

from lakehouse.jobs.stream_progress import BatchProgress

log = logging.getLogger("lakehouse.stream")


class StreamMetrics:
    """Gauges and counters of the stream's micro-batches, in a registry of their own."""

    def __init__(self, registry=None) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge

        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.rows = Counter("lakehouse_stream_rows", "Rows written to bronze by the stream", ("dataset",), registry=r)
        self.batches = Counter("lakehouse_stream_batches", "Micro-batches committed", ("dataset",), registry=r)
        self.rows_per_second = Gauge(
            "lakehouse_stream_rows_per_second", "Rows per second of the latest micro-batch", ("dataset",), registry=r
        )
        self.batch_seconds = Gauge(
            "lakehouse_stream_batch_duration_seconds", "Duration of the latest micro-batch", ("dataset",), registry=r
        )
        self.batch_rows = Gauge("lakehouse_stream_batch_rows", "Rows of the latest micro-batch", ("dataset",), registry=r)
        self.last_batch = Gauge(
            "lakehouse_stream_last_batch_timestamp_seconds", "When the latest micro-batch finished", ("dataset",), registry=r
        )
        self.lag = Gauge(
            "lakehouse_stream_lag_offsets",
            "Offsets in the topic not read yet, after the latest micro-batch",
            ("dataset", "topic", "partition"),
            registry=r,
        )

    def observe(self, dataset: str, topic: str, batch: BatchProgress) -> None:
        """Record one finished micro-batch."""
        self.rows.labels(dataset).inc(batch.rows)
        self.batches.labels(dataset).inc()
        self.batch_rows.labels(dataset).set(batch.rows)
        self.batch_seconds.labels(dataset).set(batch.seconds)
        self.rows_per_second.labels(dataset).set(batch.rows / batch.seconds if batch.seconds else 0.0)
        self.last_batch.labels(dataset).set(time.time())
        for partition, lag in batch.partition_lag.items():
            self.lag.labels(dataset, topic, str(partition)).set(lag)


def serve_metrics(port: int, metrics: StreamMetrics | None = None, host: str = "127.0.0.1"):
    """Start the endpoint on `host`:`port`; returns (metrics, server) — `server.shutdown()` stops it."""
    from prometheus_client import start_http_server

    metrics = metrics or StreamMetrics()
    server, _thread = start_http_server(port, addr=host, registry=metrics.registry)
    log.info("metrics on http://%s:%d/metrics", host, port)
    return metrics, server


def port_argument(parser: argparse.ArgumentParser, key: str) -> None:
    """The job's --metrics-port (`metrics.<key>` of its config when not given)."""
    parser.add_argument("--metrics-port", type=int, help=f"port of the job's Prometheus endpoint (default: metrics.{key}; 0 = none)")


def job_endpoint(config, given: int | None, key: str):
    """`endpoint` of a job on `metrics.host`: its --metrics-port when `given`, else
    `metrics.<key>` (the key `port_argument` names)."""
    return endpoint(config.metrics.host, getattr(config.metrics, key) if given is None else given)


@contextmanager
def endpoint(host: str, port: int | None) -> Iterator[StreamMetrics | None]:
    """The job's metrics while it runs (None when `port` is not set). A port already taken
    is logged and the job runs on without its endpoint: losing figures must not stop data."""
    if not port:
        yield None
        return
    try:
        metrics, server = serve_metrics(port, host=host)
    except OSError as exc:
        log.error("metrics endpoint %s:%d not started (%s): running without it", host, port, exc)
        yield None
        return
    try:
        yield metrics
    finally:
        server.shutdown()
        server.server_close()
