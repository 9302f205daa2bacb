"""/metrics scraped over HTTP and parsed with the Prometheus client's own parser."""

from __future__ import annotations

import random
import string
import time
from dataclasses import replace

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from lakehouse.api.app import create_app
from lakehouse.api.metrics import job_and_dataset
from tests.api.conftest import running, sqlite_gold


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """{(sample name, labels): value} of a scrape."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(scrape: dict, name: str, **labels) -> float | None:
    return scrape.get((name, frozenset(labels.items())))


def stream_endpoint_names() -> set[str]:
    """The sample names a streaming job's endpoint serves once a micro-batch finished."""
    from lakehouse.jobs.stream_metrics import endpoint
    from lakehouse.jobs.stream_progress import BatchProgress
    from lakehouse_dev.services.process import free_ports

    port = free_ports()[0]
    with endpoint("127.0.0.1", port) as metrics:
        metrics.observe("access_logs", "access_logs", BatchProgress(0, 10, 0.5, {0: 10}, 0, {}, {0: 0}))
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return {name for name, _labels in samples(text)}


@pytest.fixture
def warehouse(config, tmp_path):
    """A config on a fresh warehouse whose export holds the test's gold rows."""
    cfg = config.with_warehouse(str(tmp_path / "warehouse"))
    (tmp_path / "warehouse").mkdir()
    sqlite_gold(cfg, tmp_path / "warehouse" / "lakehouse.db")
    return cfg


def test_requests_are_counted_and_timed_per_route_template_and_status(warehouse):
    with running(create_app(warehouse)) as url, httpx.Client(base_url=url, timeout=10) as client:
        for _ in range(3):
            assert client.get("/analytics/top_ips").status_code == 200
        assert client.get("/analytics/top_ips", params={"limit": 0}).status_code == 422
        assert client.get("/no/such/route/123").status_code == 404
        scrape = samples(client.get("/metrics").text)

    def requests(route, status):
        return value(scrape, "lakehouse_api_requests_total", method="GET", route=route, status=status)

    assert requests("/analytics/top_ips", "2xx") == 3
    assert requests("/analytics/top_ips", "4xx") == 1
    assert requests("(unmatched)", "4xx") == 1
    assert value(scrape, "lakehouse_api_request_duration_seconds_count", method="GET", route="/analytics/top_ips") == 4
    assert value(scrape, "lakehouse_api_request_duration_seconds_sum", method="GET", route="/analytics/top_ips") > 0
    assert value(scrape, "lakehouse_api_request_duration_seconds_bucket", method="GET", route="/analytics/top_ips", le="+Inf") == 4
    # The gold export's freshness: 2024-03-03 is the latest report date, exported 2024-03-04 02:30 UTC.
    assert value(scrape, "lakehouse_gold_database_up") == 1
    assert value(scrape, "lakehouse_gold_latest_report_date_timestamp_seconds") == 1709424000  # 2024-03-03T00:00Z
    assert value(scrape, "lakehouse_gold_last_export_timestamp_seconds") == 1709519400  # 2024-03-04T02:30Z
    # No job has run in this warehouse: no pipeline figures, and no error either.
    assert not any(name.startswith("lakehouse_job_") for name, _ in scrape)


def test_no_request_adds_a_series_whatever_its_method_or_path(warehouse):
    """uvicorn takes any token as a method and any path: neither may become a label value."""
    rng = random.Random(7)
    letters = string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~"
    with running(create_app(warehouse)) as url, httpx.Client(base_url=url, timeout=10) as client:
        assert client.get("/analytics/top_ips").status_code == 200
        assert client.get("/nothing/here").status_code == 404
        assert client.request("BREW", "/analytics/top_ips").status_code == 405
        assert client.request("BREW", "/nothing/here").status_code == 404
        client.get("/metrics")  # the scrape's own series
        before = set(samples(client.get("/metrics").text))
        for _ in range(1000):
            method = "".join(rng.choice(letters) for _ in range(rng.randint(1, 200)))
            path = "/" + "/".join("".join(rng.choice(string.ascii_lowercase) for _ in range(8)) for _ in range(rng.randint(1, 4)))
            client.request(method, rng.choice([path, "/analytics/top_ips"]))
        scrape = client.get("/metrics").text
    assert set(samples(scrape)) == before
    assert ('lakehouse_api_requests_total{method="other",route="/analytics/top_ips",status="4xx"}') in scrape


def test_pipeline_figures_come_from_the_job_runs_spark_recorded(spark, warehouse):
    from lakehouse.jobs.runtime import JobRun

    before = time.time()
    bronze = JobRun("1/4 bronze")
    bronze.add(access_logs_lines=3000, product_views_lines=1200, access_logs_files_read=1)
    bronze.record(spark, warehouse)
    for written in (2900, 100):
        silver = JobRun("2/4 silver access_logs")
        silver.add(read=written + 60, quarantined=50, duplicates=10, written=written)
        silver.record(spark, warehouse)
    failed = JobRun("export")
    failed.add(dates_exported=1)
    failed.record(spark, warehouse, status="failed")
    after = time.time()

    with running(create_app(warehouse)) as url, httpx.Client(base_url=url, timeout=10) as client:
        client.get("/metrics")  # the second scrape shows the first one's request
        scrape = samples(client.get("/metrics").text)

    # Every metric the alert rules and the Grafana dashboard name is in a real scrape of the
    # API or of a streaming job's endpoint: a renamed metric fails here, not on a blank panel.
    from tests.monitoring.names import referenced

    assert referenced() - {name for name, _labels in scrape} - stream_endpoint_names() == set()
    assert value(scrape, "lakehouse_job_runs_total", job="silver", dataset="access_logs", status="ok") == 2
    assert value(scrape, "lakehouse_job_runs_total", job="export", dataset="", status="failed") == 1
    # Sums over the successful runs; the failed run's counts are left out.
    assert value(scrape, "lakehouse_job_rows_total", job="silver", dataset="access_logs", count="written") == 3000
    assert value(scrape, "lakehouse_job_rows_total", job="silver", dataset="access_logs", count="read") == 3120
    assert value(scrape, "lakehouse_job_rows_total", job="silver", dataset="access_logs", count="quarantined") == 100
    assert value(scrape, "lakehouse_job_rows_total", job="bronze", dataset="access_logs", count="lines") == 3000
    assert value(scrape, "lakehouse_job_rows_total", job="bronze", dataset="product_views", count="lines") == 1200
    assert value(scrape, "lakehouse_job_rows_total", job="export", dataset="", count="dates_exported") is None
    # The latest successful run of each job: its counts, when it finished.
    assert value(scrape, "lakehouse_job_last_run_rows", job="silver", dataset="access_logs", count="written") == 100
    finished = value(scrape, "lakehouse_job_last_success_timestamp_seconds", job="silver", dataset="access_logs")
    assert before - 1 <= finished <= after + 1
    assert value(scrape, "lakehouse_job_last_success_timestamp_seconds", job="export", dataset="") is None
    # The latest run of each job, whatever its status (the JobRunFailed alert).
    assert value(scrape, "lakehouse_job_last_run_failed", job="export", dataset="") == 1
    assert value(scrape, "lakehouse_job_last_run_failed", job="silver", dataset="access_logs") == 0
    # A feed landed by the bronze run; silver's rows are not a landing.
    assert before - 1 <= value(scrape, "lakehouse_feed_last_landed_timestamp_seconds", dataset="access_logs") <= after + 1
    assert value(scrape, "lakehouse_feed_last_landed_timestamp_seconds", dataset="web_events") is None
    # The alert's thresholds, from metrics.landing_interval_minutes.
    assert value(scrape, "lakehouse_feed_landing_interval_seconds", dataset="api_ticks") == 30 * 60
    assert value(scrape, "lakehouse_feed_landing_interval_seconds", dataset="access_logs") == 1560 * 60


def test_a_new_run_shows_up_after_the_ttl(spark, warehouse):
    from lakehouse.jobs.runtime import JobRun

    JobRun("gold").record(spark, warehouse)
    with running(create_app(warehouse, job_runs_ttl=0)) as url, httpx.Client(base_url=url, timeout=10) as client:
        first = samples(client.get("/metrics").text)
        JobRun("gold").record(spark, warehouse)
        second = samples(client.get("/metrics").text)
    assert value(first, "lakehouse_job_runs_total", job="gold", dataset="", status="ok") == 1
    assert value(second, "lakehouse_job_runs_total", job="gold", dataset="", status="ok") == 2


def test_an_unreadable_s3_warehouse_leaves_the_pipeline_figures_out(config, tmp_path, caplog):
    # Nothing listens on this endpoint: the scrape answers without job figures and logs why.
    from tests.conftest import free_ports

    cfg = replace(
        config,
        warehouse="s3a://lakehouse/warehouse",
        s3=replace(config.s3, endpoint=f"http://127.0.0.1:{free_ports()[0]}"),
        export=replace(config.export, url=f"jdbc:sqlite:{tmp_path}/lakehouse.db"),
    )
    sqlite_gold(cfg, tmp_path / "lakehouse.db")
    with running(create_app(cfg)) as url, httpx.Client(base_url=url, timeout=60) as client:
        response = client.get("/metrics")
    assert response.status_code == 200
    scrape = samples(response.text)
    assert value(scrape, "lakehouse_gold_database_up") == 1
    assert not any(name.startswith("lakehouse_job_") for name, _ in scrape)
    assert "pipeline metrics skipped: cannot read s3://lakehouse/warehouse/_meta/job_runs" in caplog.text


@pytest.mark.parametrize(
    ("job", "key", "expected"),
    [
        ("2/4 silver access_logs", "written", ("silver", "access_logs", "written")),
        ("silver-product-views", "quarantined", ("silver", "product_views", "quarantined")),
        ("1/4 bronze", "access_logs_lines", ("bronze", "access_logs", "lines")),
        ("stream", "product_views_rows", ("stream", "product_views", "rows")),
        ("3/4 gold", "endpoint_daily_rows", ("gold", "", "endpoint_daily_rows")),
        ("3/4 gold", "product_views_daily_rows", ("gold", "", "product_views_daily_rows")),
        ("3/4 gold", "product_views_dates_refreshed", ("gold", "product_views", "dates_refreshed")),
        # every registered feed, not only the first two
        ("silver-web-events", "written", ("silver", "web_events", "written")),
        ("bronze", "ip_events_lines", ("bronze", "ip_events", "lines")),
        ("3/4 gold", "api_ticks_dates_refreshed", ("gold", "api_ticks", "dates_refreshed")),
    ],
)
def test_job_names_and_count_keys_give_stage_dataset_and_count(job, key, expected):
    assert job_and_dataset(job, key) == expected
