"""Prometheus figures of `lakehouse serve`: its own requests, the pipeline's runs, gold's age.

Each app has its own registry (no process-global state: two apps in one process, as in
the tests, do not mix their counts). Every label of a request comes from a fixed set, so no
client can add series (the middleware runs before the key check, for every request): the
method (`other` for any but the standard ones: uvicorn accepts any token as a method), the
route template (`/analytics/top_ips`, never the raw path; `(unmatched)` for the rest) and
the status class (`2xx`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from lakehouse.feeds import NAMES
from lakehouse.io.job_runs import JobRunRow

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def method_label(method: str) -> str:
    """The request's method if it is a standard one, else `other`."""
    return method if method in METHODS else "other"


def status_class(status: int) -> str:
    """`2xx`, `4xx`, ... (`other` outside 100-599)."""
    return f"{status // 100}xx" if 100 <= status <= 599 else "other"


class ApiMetrics:
    """Request counts and latencies by method, route template and status class."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "lakehouse_api_requests", "HTTP requests answered by the API", ("method", "route", "status"), registry=registry
        )
        self.latency = Histogram(
            "lakehouse_api_request_duration_seconds",
            "Time to answer an HTTP request",
            ("method", "route"),
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        method = method_label(method)
        self.requests.labels(method, route, status_class(status)).inc()
        self.latency.labels(method, route).observe(seconds)


class IngestMetrics:
    """IPs the collector routes accepted, and rejected by reason code (a fixed, small set:
    `not_an_ip`, `hostname`, `zone_id`, ..., `too_many`, `sink_unavailable`)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.accepted = Counter(
            "lakehouse_ingest_ips_accepted", "IPs accepted and made durable by the ingest routes", ("route",), registry=registry
        )
        self.rejected = Counter(
            "lakehouse_ingest_ips_rejected", "IPs the ingest routes did not accept, by reason", ("route", "reason"), registry=registry
        )
        self.refused = Counter(
            "lakehouse_ingest_requests_refused",
            "Ingest requests refused before their IPs were read (rate limit, size, content type, JSON)",
            ("route", "reason"),
            registry=registry,
        )


class RequestMetricsMiddleware:
    """ASGI middleware timing every HTTP request into `ApiMetrics` (pure ASGI: no body buffering)."""

    def __init__(self, app, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            # FastAPI puts the matched route in the scope; anything else (a 404) is one series.
            template = getattr(route, "path", None) or "(unmatched)"
            self.metrics.observe(scope["method"], template, status, time.perf_counter() - started)


def job_and_dataset(job: str, key: str) -> tuple[str, str, str]:
    """(stage, dataset, count) of one count key of a run: the batch names its stages
    `2/4 silver access_logs`, a job run alone is `silver-access-logs`, and the bronze
    stage prefixes its keys with the dataset (`access_logs_lines`)."""
    name = re.sub(r"^\d+/\d+\s+", "", job).replace("-", "_").replace(" ", "_")
    dataset = ""
    for candidate in NAMES:  # job names and count keys mention the feeds
        if candidate in name:
            dataset, name = candidate, name.replace(candidate, "").strip("_") or name
        # ... but gold's `product_views_daily_rows` names a table, not a dataset's count.
        elif key.startswith(candidate + "_") and not key.startswith(candidate + "_daily"):
            dataset, key = candidate, key[len(candidate) + 1 :]
    return name, dataset, key


# The jobs that land a feed in bronze, and the counts that are its records.
LANDING_JOBS = frozenset({"bronze", "ingest", "ingest_mongo", "stream"})
LANDING_COUNTS = frozenset({"lines", "rows", "docs"})


class PipelineCollector(Collector):
    """Figures of `_meta/job_runs` and of the exported gold, computed at scrape time.

    `runs` returns the recorded runs (None when unreadable: the figures are left out);
    `gold` returns the export's freshness row (raises when the database is down);
    `landing_intervals` is each feed's longest quiet time in seconds (the alert's threshold).
    """

    def __init__(
        self,
        runs: Callable[[], list[JobRunRow] | None],
        gold: Callable[[], dict],
        landing_intervals: dict[str, float] | None = None,
    ) -> None:
        self.runs = runs
        self.gold = gold
        self.landing_intervals = landing_intervals or {}

    def collect(self) -> Iterable:
        yield from self._gold()
        yield from self._runs()
        interval = GaugeMetricFamily(
            "lakehouse_feed_landing_interval_seconds",
            "The longest a feed may land nothing before it is late (metrics.landing_interval_minutes)",
            labels=("dataset",),
        )
        for dataset, seconds in sorted(self.landing_intervals.items()):
            interval.add_metric([dataset], seconds)
        yield interval

    def _gold(self) -> Iterable:
        up = GaugeMetricFamily("lakehouse_gold_database_up", "1 if the exported gold database answered the scrape")
        latest = GaugeMetricFamily(
            "lakehouse_gold_latest_report_date_timestamp_seconds", "Midnight UTC of the latest report date exported"
        )
        exported = GaugeMetricFamily("lakehouse_gold_last_export_timestamp_seconds", "When the latest export committed")
        try:
            row = self.gold()
        except Exception:  # noqa: BLE001 - a scrape reports the outage, it does not fail
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        if row.get("latest_report_date"):
            day = date.fromisoformat(str(row["latest_report_date"])[:10])
            latest.add_metric([], datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
            yield latest
        if row.get("last_exported_at"):
            exported.add_metric([], _utc_seconds(str(row["last_exported_at"])))
            yield exported

    def _runs(self) -> Iterable:
        rows = self.runs()
        if rows is None:
            return
        runs = CounterMetricFamily("lakehouse_job_runs", "Recorded job runs", labels=("job", "dataset", "status"))
        total = CounterMetricFamily(
            "lakehouse_job_rows", "Sum of a count (rows read, written, quarantined, ...) over the successful runs",
            labels=("job", "dataset", "count"),
        )
        last = GaugeMetricFamily(
            "lakehouse_job_last_run_rows", "A count of the latest successful run", labels=("job", "dataset", "count")
        )
        success = GaugeMetricFamily(
            "lakehouse_job_last_success_timestamp_seconds", "When the latest successful run finished", labels=("job", "dataset")
        )
        duration = GaugeMetricFamily(
            "lakehouse_job_last_run_duration_seconds", "Duration of the latest successful run", labels=("job", "dataset")
        )
        landed = GaugeMetricFamily(
            "lakehouse_feed_last_landed_timestamp_seconds",
            "When the latest run that landed records of the feed in bronze finished (a running stream: its endpoint's last batch)",
            labels=("dataset",),
        )
        landed_at: dict[str, float] = {}
        failed = GaugeMetricFamily(
            "lakehouse_job_last_run_failed", "1 if the latest run of the job, ok or not, did not succeed", labels=("job", "dataset")
        )
        newest: dict[tuple[str, str], JobRunRow] = {}
        run_counts: dict[tuple[str, str, str], int] = {}
        sums: dict[tuple[str, str, str], int] = {}
        latest: dict[tuple[str, str], tuple[JobRunRow, dict[str, int]]] = {}
        for row in rows:
            datasets: dict[tuple[str, str], dict[str, int]] = {}
            for key, value in row.counts.items():
                job, dataset, count = job_and_dataset(row.job, key)
                datasets.setdefault((job, dataset), {})[count] = value
            if not datasets:
                job, dataset, _ = job_and_dataset(row.job, "")
                datasets[(job, dataset)] = {}
            for (job, dataset), counts in datasets.items():
                run_counts[(job, dataset, row.status)] = run_counts.get((job, dataset, row.status), 0) + 1
                if row.finished_at and ((job, dataset) not in newest or newest[(job, dataset)].finished_at < row.finished_at):
                    newest[(job, dataset)] = row
                if row.status != "ok":
                    continue
                for count, value in counts.items():
                    sums[(job, dataset, count)] = sums.get((job, dataset, count), 0) + value
                    if job in LANDING_JOBS and count in LANDING_COUNTS and value > 0 and dataset and row.finished_at:
                        landed_at[dataset] = max(landed_at.get(dataset, 0.0), row.finished_at.timestamp())
                seen = latest.get((job, dataset))
                if row.finished_at and (seen is None or seen[0].finished_at < row.finished_at):
                    latest[(job, dataset)] = (row, counts)
        for labels, value in sorted(run_counts.items()):
            runs.add_metric(list(labels), value)
        for labels, value in sorted(sums.items()):
            total.add_metric(list(labels), value)
        for (job, dataset), (row, counts) in sorted(latest.items()):
            success.add_metric([job, dataset], row.finished_at.timestamp())
            duration.add_metric([job, dataset], row.seconds or 0.0)
            for count, value in sorted(counts.items()):
                last.add_metric([job, dataset, count], value)
        for dataset, seconds in sorted(landed_at.items()):
            landed.add_metric([dataset], seconds)
        for (job, dataset), row in sorted(newest.items()):
            failed.add_metric([job, dataset], 0 if row.status == "ok" else 1)
        yield from (runs, total, last, success, duration, landed, failed)


def _utc_seconds(text: str) -> float:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # exported_at has no zone: the pipeline runs in UTC
    return moment.timestamp()
