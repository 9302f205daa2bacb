"""Offsets removed from Kafka before the stream read them: loud, recorded, policy applied.

Retention is simulated with Kafka's own DeleteRecords (what retention does to old
segments), on a real broker.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from lakehouse.io import delta, kafka
from lakehouse.jobs.runtime import JobRun
from lakehouse.jobs.stream_kafka import DataLossError, StreamOptions, run_streams
from tests.streaming.conftest import stack_config, use_stack

pytestmark = pytest.mark.services


def send(spark, config, start: int, n: int) -> None:
    values = [(None, f"record {i}".encode()) for i in range(start, start + n)]
    stats = kafka.send_paced(config.kafka.bootstrap_servers, config.kafka.topics["access_logs"], values, None)
    assert stats.acknowledged == n


@pytest.mark.parametrize("fail_on_data_loss", [True, False])
def test_lost_offsets_are_recorded_and_the_policy_applies(spark, stack, fail_on_data_loss):
    name = f"loss{int(fail_on_data_loss)}"
    config = stack_config(stack, name, partitions=1)
    config = replace(config, kafka=replace(config.kafka, fail_on_data_loss=fail_on_data_loss))
    use_stack(spark, config)
    topic = config.kafka.topics["access_logs"]
    options = StreamOptions(("access_logs",), "availableNow", None)

    send(spark, config, 0, 10)
    run_streams(spark, config, options, JobRun("first"))
    send(spark, config, 10, 10)  # offsets 10..19, never read ...
    kafka.delete_records(config.kafka.bootstrap_servers, topic, {0: 15})  # ... 10..14 removed
    assert kafka.earliest_offsets(config.kafka.bootstrap_servers, topic) == {0: 15}

    run = JobRun("second")
    bronze = config.table_path("bronze", "access_logs")
    if fail_on_data_loss:
        with pytest.raises(DataLossError, match="5 record"):
            run_streams(spark, config, options, run)
        assert delta.read_table(spark, bronze).count() == 10  # nothing skipped silently
    else:
        run_streams(spark, config, options, run)
        offsets = sorted(r[0] for r in delta.read_table(spark, bronze).select("offset").collect())
        assert offsets == list(range(10)) + list(range(15, 20))
        assert run.counts["access_logs_records_lost"] == 5
    gaps = delta.read_table(spark, config.table_path("_meta", "stream_gaps")).collect()
    assert [(g["topic"], g["partition"], g["lost_from"], g["lost_to"], g["records_lost"], g["policy"]) for g in gaps] == [
        (topic, 0, 10, 15, 5, "fail" if fail_on_data_loss else "skip")
    ]
