"""Prometheus endpoint of `lakehouse stream`: rows/s, batch duration and lag per partition.

On when `kafka.metrics_port` is set: `serve_metrics` starts prometheus_client's HTTP
server on 127.0.0.1:<port> (loopback: the figures name topics, and there is no key), and
the stream's supervisor hands every finished micro-batch to `StreamMetrics.observe`.
"""

from __future__ import annotations

import logging
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from lakehouse.jobs.stream_progress import BatchProgress

log = logging.getLogger("lakehouse.stream")


class StreamMetrics:
    """Gauges and counters of the stream's micro-batches, in a registry of their own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
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


def serve_metrics(port: int, metrics: StreamMetrics | None = None):
    """Start the endpoint on 127.0.0.1:`port`; returns (metrics, server) — `server.shutdown()` stops it."""
    metrics = metrics or StreamMetrics()
    server, _thread = start_http_server(port, addr="127.0.0.1", registry=metrics.registry)
    log.info("stream metrics on http://127.0.0.1:%d/metrics", port)
    return metrics, server
