"""Samples -> Kafka -> bronze on MinIO -> silver -> gold -> PostgreSQL, on real servers.

The gold tables must equal what the plain-Python oracle computes from the same files
(the batch path is held to the same oracle in tests/jobs/test_batch_end_to_end.py).
"""

from __future__ import annotations

import pytest

from lakehouse.feeds.access_logs import silver as silver_access_logs
from lakehouse.feeds.product_views import silver as silver_product_views
from lakehouse.io import delta, kafka
from lakehouse.jobs import export_gold, gold_daily, produce
from lakehouse.jobs.runtime import JobRun
from lakehouse.jobs.stream_kafka import StreamOptions, run_streams
from tests.conftest import SAMPLES
from tests.jobs.test_batch_end_to_end import rows_of
from tests.reference_gold import reference_access_logs, reference_product_views
from tests.streaming.conftest import bronze_offsets, stack_config, use_stack

pytestmark = pytest.mark.services

ACCESS = SAMPLES / "access.log"
VIEWS = SAMPLES / "product_views.jsonl"


def line_count(path) -> int:
    return path.read_bytes().count(b"\n")


@pytest.fixture(scope="module")
def streamed(spark, stack):
    config = stack_config(stack, "e2e")
    use_stack(spark, config)
    sent = {
        "access_logs": produce.produce_file(spark, config, "access_logs", str(ACCESS), config.kafka.topics["access_logs"], None, JobRun("p")),
        "product_views": produce.produce_file(spark, config, "product_views", str(VIEWS), config.kafka.topics["product_views"], None, JobRun("p")),
    }
    stream_run = JobRun("stream")
    run_streams(spark, config, StreamOptions(("access_logs", "product_views"), "availableNow", 1000), stream_run)
    runs = {name: JobRun(name) for name in ("access", "views", "gold", "export")}
    silver_access_logs.run(spark, config, runs["access"])
    silver_product_views.run(spark, config, runs["views"])
    gold_daily.run(spark, config, runs["gold"])
    export_gold.run(spark, config, runs["export"])
    return {"config": config, "sent": sent, "stream": stream_run, "runs": runs}


def test_every_message_lands_in_bronze_once(spark, streamed):
    config = streamed["config"]
    assert streamed["sent"] == {"access_logs": line_count(ACCESS), "product_views": line_count(VIEWS)}
    for dataset, sent in streamed["sent"].items():
        end = kafka.latest_offsets(config.kafka.bootstrap_servers, config.kafka.topics[dataset])
        expected = sorted((p, o) for p, n in end.items() for o in range(n))
        assert sum(end.values()) == sent
        assert bronze_offsets(spark, config, dataset) == expected
    # maxOffsetsPerTrigger=1000 split the 3000 records of each topic into several batches
    assert streamed["stream"].counts["access_logs_batches"] >= 3
    assert streamed["stream"].counts["access_logs_rows"] == line_count(ACCESS)


def test_silver_counts_add_up(streamed):
    oracle = reference_access_logs([ACCESS], "combined")["counts"]
    access = streamed["runs"]["access"].counts
    # An empty line arrives as an empty message: quarantined ("empty message"); a line of
    # blanks is still a counted skip, as in the batch path.
    empty = sum(1 for line in ACCESS.read_bytes().split(b"\n")[:-1] if line.rstrip(b"\r") == b"")
    assert empty >= 1
    assert access["read"] == oracle["read"]
    assert access["quarantined"] == oracle["quarantined"] + empty
    assert access["skipped_blank"] == oracle["skipped_blank"] - empty
    assert access["written"] == oracle["silver"]
    assert access["duplicates"] == oracle["duplicates"]


@pytest.mark.parametrize("table", ["endpoint_daily", "top_ips_daily"])
def test_access_log_gold_matches_the_batch_oracle(spark, streamed, table):
    expected = reference_access_logs([ACCESS], "combined")[table]
    columns = list(expected[0].keys())
    got = [r.asDict() for r in delta.read_table(spark, streamed["config"].table_path("gold", table)).collect()]
    assert rows_of(got, columns) == rows_of(expected, columns)


@pytest.mark.parametrize(
    "table",
    ["product_views_daily", "country_views_daily", "referrer_views_daily", "store_views_daily", "referrer_url_views_daily"],
)
def test_product_view_gold_matches_the_batch_oracle(spark, streamed, table):
    expected = reference_product_views([VIEWS])[table]
    columns = list(expected[0].keys())
    got = [r.asDict() for r in delta.read_table(spark, streamed["config"].table_path("gold", table)).collect()]
    assert rows_of(got, columns) == rows_of(expected, columns)


def test_postgres_holds_gold_once(stack, streamed):
    oracle = reference_access_logs([ACCESS], "combined")
    pg = stack.database("e2e")
    assert int(pg.psql("SELECT count(*) FROM endpoint_daily")) == len(oracle["endpoint_daily"])
    assert int(pg.psql("SELECT sum(requests) FROM endpoint_daily")) == oracle["counts"]["silver"]
    views = reference_product_views([VIEWS])
    assert int(pg.psql("SELECT count(*) FROM product_views_daily")) == len(views["product_views_daily"])


def test_second_catch_up_run_finds_nothing_new(spark, streamed):
    config = streamed["config"]
    before = delta.table_version(spark, config.table_path("bronze", "access_logs"))
    run = JobRun("stream again")
    run_streams(spark, config, StreamOptions(("access_logs",), "availableNow", 1000), run)
    assert run.counts.get("access_logs_rows", 0) == 0
    assert delta.table_version(spark, config.table_path("bronze", "access_logs")) == before


def test_status_shows_no_lag_once_the_stream_caught_up(spark, streamed):
    from lakehouse.jobs.status import collect_status

    config = streamed["config"]
    lag = collect_status(spark, config, days=1)["stream_lag"]
    expected = []
    for dataset in ("access_logs", "product_views"):
        topic = config.kafka.topics[dataset]
        for partition, end in sorted(kafka.latest_offsets(config.kafka.bootstrap_servers, topic).items()):
            expected.append({"topic": topic, "partition": partition, "end_offset": end, "stream_offset": end, "lag": 0})
    assert lag == expected
    assert sum(row["end_offset"] for row in lag) == line_count(ACCESS) + line_count(VIEWS)
