"""Shared fixtures: one SparkSession for the whole run, tuned for tiny data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lakehouse.config import load_config
from lakehouse.services.process import free_ports  # noqa: F401 - the tests import it from here

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_logs"


@pytest.fixture(scope="session")
def config():
    return load_config(profile="local", environ={k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")})


@pytest.fixture(scope="session")
def spark(config):
    from lakehouse.session import get_spark

    session = get_spark(
        config,
        app_name="lakehouse-tests",
        extra_conf={
            "spark.master": "local[2]",
            "spark.sql.shuffle.partitions": "2",
            "spark.default.parallelism": "2",
            "spark.databricks.delta.snapshotPartitions": "2",
            "spark.sql.sources.parallelPartitionDiscovery.parallelism": "2",
        },
    )
    yield session
    session.stop()


@pytest.fixture
def warehouse_config(config, tmp_path):
    """A config whose warehouse (and SQLite export) is a fresh temp folder."""
    return config.with_warehouse(str(tmp_path / "warehouse"))


def bronze_rows(spark, records: list[dict]):
    """Bronze-shaped rows: every column of the bronze contract, those not given null."""
    from lakehouse.transforms.bronze import BRONZE_SCHEMA

    names = BRONZE_SCHEMA.fieldNames()
    unknown = {k for r in records for k in r} - set(names)
    assert not unknown, f"not bronze columns: {unknown}"
    return spark.createDataFrame([tuple(r.get(n) for n in names) for r in records], BRONZE_SCHEMA)


