"""Shared fixtures: one SparkSession for the whole run, tuned for tiny data, and one stack
of real servers (tests/stack.py), started lazily for the tests marked `services`.

The tiers (marks registered in pyproject.toml): `make test-fast` runs what carries none of
SLOW_MARKS; `make test` runs everything.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from lakehouse.config import load_config
from lakehouse_dev.services.process import free_ports  # noqa: F401 - the tests import it from here

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_logs"


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config):
    # A run stopped with SIGTERM (a CI or `timeout` limit) ends as on Ctrl-C: pytest tears
    # the fixtures down, so the servers they started stop (tests/watchdog.py covers SIGKILL).
    signal.signal(signal.SIGTERM, _interrupt)


# A test that reaches one of these fixtures, however indirectly, is in that tier; a fixture
# asked for at run time (request.getfixturevalue) needs the mark written out.
TIER_OF_FIXTURE = {"stack": "services", "browser": "browser"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        for fixture, mark in TIER_OF_FIXTURE.items():
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(mark)


def pytest_runtest_setup(item):
    # Some libraries (nbclient) put back the default SIGTERM handler when they are done.
    signal.signal(signal.SIGTERM, _interrupt)


@pytest.fixture(scope="session")
def stack():
    """The run's servers (tests/stack.py): each starts when a test first uses it."""
    from tests.stack import Stack

    servers = Stack()
    try:
        yield servers
    finally:
        servers.close()


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
            # Expressions evaluated interpreted: each new query shape costs a Janino compile
            # and then the JIT's work on the class, which a few inline rows never pay back
            # (a batch test used 18 % less CPU: 177 s against 215 s, status + check). The
            # production settings keep codegen (`make bench` measures them).
            "spark.sql.codegen.wholeStage": "false",
            "spark.sql.codegen.factoryMode": "NO_CODEGEN",
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


