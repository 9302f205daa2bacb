"""The real service stack for the streaming tests: Kafka (KRaft), MinIO and PostgreSQL.

Started once for the whole run on loopback ports of its own, under `.data/test-stack-*`,
and stopped at the end. Each test gets its own topics and warehouse prefix, so tests do
not see each other's data.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from lakehouse.config import Config, load_config, project_root
from lakehouse.io import delta
from lakehouse.services import kafka, minio, postgres
from tests.conftest import free_ports

BUCKET = "lakehouse"


@dataclass
class Stack:
    base: Path
    kafka: kafka.KafkaServer
    minio: minio.MinioServer
    pg: postgres.PostgresServer
    ports: dict[str, int]

    @property
    def kafka_dir(self) -> Path:
        return self.base / "kafka"

    @property
    def minio_dir(self) -> Path:
        return self.base / "minio"

    def restart_kafka(self, down_seconds: float) -> None:
        kafka.stop(self.kafka_dir)
        time.sleep(down_seconds)
        self.kafka = kafka.start(self.kafka_dir, port=self.ports["kafka"], controller_port=self.ports["controller"])

    def restart_minio(self, down_seconds: float) -> None:
        minio.stop(self.minio_dir)
        time.sleep(down_seconds)
        self.minio = minio.start(self.minio_dir, port=self.ports["minio"], console_port=self.ports["console"], buckets=(BUCKET,))


@pytest.fixture(scope="session")
def stack():
    base = project_root() / ".data" / f"test-stack-{uuid.uuid4().hex[:8]}"
    ports = dict(zip(("kafka", "controller", "minio", "console", "postgres"), free_ports(5), strict=True))
    started = []
    try:
        k = kafka.start(base / "kafka", port=ports["kafka"], controller_port=ports["controller"])
        started.append(lambda: kafka.stop(base / "kafka"))
        m = minio.start(base / "minio", port=ports["minio"], console_port=ports["console"], buckets=(BUCKET,))
        started.append(lambda: minio.stop(base / "minio"))
        pg = postgres.start(base / "postgres", port=ports["postgres"], password="stream-test")
        started.append(lambda: postgres.stop(base / "postgres"))
        yield Stack(base, k, m, pg, ports)
    finally:
        for stop in reversed(started):
            stop()
        shutil.rmtree(base, ignore_errors=True)


def stack_env(stack: Stack, name: str) -> dict[str, str]:
    """Environment for a job run against the stack: profile services, this test's topics/prefix."""
    return {
        "LAKEHOUSE_PROFILE": "services",
        "LAKEHOUSE_WAREHOUSE": f"s3a://{BUCKET}/{name}",
        "LAKEHOUSE_KAFKA__BOOTSTRAP_SERVERS": stack.kafka.bootstrap,
        "LAKEHOUSE_KAFKA__TOPICS__ACCESS_LOGS": f"{name}.access_logs",
        "LAKEHOUSE_KAFKA__TOPICS__PRODUCT_VIEWS": f"{name}.product_views",
        "LAKEHOUSE_KAFKA__TOPICS__WEB_EVENTS": f"{name}.web_events",
        "LAKEHOUSE_KAFKA__TOPICS__API_TICKS": f"{name}.api_ticks",
        "LAKEHOUSE_KAFKA__TOPICS__IP_EVENTS": f"{name}.ip_events",
        "LAKEHOUSE_S3__ENDPOINT": stack.minio.endpoint,
        "LAKEHOUSE_S3_ACCESS_KEY": stack.minio.access_key,
        "LAKEHOUSE_S3_SECRET_KEY": stack.minio.secret_key,
        "LAKEHOUSE_EXPORT__URL": stack.pg.jdbc_url,
        "LAKEHOUSE_EXPORT__USER": stack.pg.user,
        "LAKEHOUSE_EXPORT_PASSWORD": stack.pg.password,
    }


def stack_config(
    stack: Stack, name: str, partitions: int = 2, datasets: tuple[str, ...] = ("access_logs", "product_views")
) -> Config:
    """The services-profile config of one test (the topics of `datasets` are created here)."""
    env = stack_env(stack, name)
    config = load_config(profile="services", environ=env)
    kafka.create_topics(stack.kafka, {config.kafka.topics[d]: partitions for d in datasets})
    return config


def use_stack(spark, config: Config) -> None:
    """Point the shared test session's S3A at the stack's MinIO."""
    from lakehouse.session import configure_s3a

    configure_s3a(spark, config)


def start_stream(stack: Stack, name: str, *args: str, log_path: Path) -> subprocess.Popen:
    """`lakehouse stream` as its own process (so a test can SIGKILL it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")}
    env |= stack_env(stack, name) | {"LAKEHOUSE_HOME": str(project_root())}
    env["LAKEHOUSE_SPARK_MASTER"] = "local[2]"
    handle = open(log_path, "ab")  # noqa: SIM115 - closed with the process by the caller
    return subprocess.Popen(
        [sys.executable, "-m", "lakehouse", "stream", *args],
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
        cwd=project_root(),
    )


def bronze_offsets(spark, config: Config, dataset: str) -> list[tuple[int, int]]:
    """(partition, offset) of every bronze row of `dataset`, sorted (duplicates kept)."""
    path = config.table_path("bronze", dataset)
    if not delta.table_exists(spark, path):
        return []
    return sorted((r[0], r[1]) for r in delta.read_table(spark, path).select("partition", "offset").collect())


def wait_for(check, timeout: float, interval: float = 1.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)
