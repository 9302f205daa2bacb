"""The Spark standalone cluster of lakehouse_dev.services.spark, on the run's cluster (tests/stack.py:
a master and 2 workers, which the DAG runs submit to)."""

from __future__ import annotations

import pytest

from lakehouse_dev.services import spark as spark_cluster

pytestmark = pytest.mark.services


def test_two_workers_register_and_a_second_start_finds_the_same_daemons(stack) -> None:
    cluster = stack.spark_cluster
    assert cluster.alive_workers() == 2
    assert spark_cluster.status(cluster.base_dir)
    again = spark_cluster.start(cluster.base_dir, port=stack.ports["spark"], webui_port=stack.ports["spark_webui"],
                                worker_webui_ports=False)
    assert again.pids == cluster.pids and len(again.pids) == 3
    assert spark_cluster.running_cluster(cluster.base_dir) == cluster
