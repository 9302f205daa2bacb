"""The run's real servers, one of each per test run, started lazily on loopback.

PostgreSQL, MinIO, Kafka (with a SASL listener beside its plain one), FerretDB and a Spark
standalone cluster (a master and 2 workers): each starts the first time a test asks for it,
on free ports, under `.data/test-run-<id>/`, and all stop when the run ends. Tests keep out
of each other's data by name, never by a server of their own:

- PostgreSQL: `stack.database(name)`, a database per test;
- MinIO: the bucket `BUCKET`, a prefix per test (`s3a://lakehouse/<name>`);
- Kafka: topics per test (`<name>.<dataset>`);
- FerretDB: a database per test.

Nothing is left behind: the session fixture stops what it started; SIGTERM is turned into
Ctrl-C so that happens on a stopped run too; and a watchdog process (tests/watchdog.py)
stops the servers when the pytest process is gone, however it ended (SIGKILL included).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

from lakehouse.config import project_root
from lakehouse_dev.services import ferretdb, kafka, minio, postgres, prometheus
from lakehouse_dev.services import spark as spark_cluster
from lakehouse_dev.services.process import free_ports

BUCKET = "lakehouse"
PG_PASSWORD = "run-test"
SASL_USER = "mirror"
SASL_PASSWORD = f"pw-{uuid.uuid4().hex[:12]}"
# The broker's SASL users: the mirror's, and one whose quotes and backslashes must survive
# the JAAS and properties quoting.
SASL_USERS = {SASL_USER: SASL_PASSWORD, "alice": 'al"ice\\pw'}
# Services in the order they are stopped (the reverse of a typical start).
SERVICES = ("prometheus", "spark", "ferretdb", "kafka", "minio", "postgres")


class Stack:
    """The servers of one test run; each attribute starts its server on first use."""

    def __init__(self, base: Path | None = None):
        self.base = base or project_root() / ".data" / f"test-run-{uuid.uuid4().hex[:8]}"
        self.ports: dict[str, int] = {}
        self._servers: dict[str, object] = {}
        self._databases: dict[str, postgres.PostgresServer] = {}
        self._watchdog: subprocess.Popen | None = None

    def dir(self, service: str) -> Path:
        return self.base / service

    def _port(self, *names: str) -> list[int]:
        missing = [n for n in names if n not in self.ports]
        self.ports |= dict(zip(missing, free_ports(len(missing)), strict=True))
        return [self.ports[n] for n in names]

    def _started(self, service: str, start) -> object:
        if service not in self._servers:
            if (tier := os.environ.get("LAKEHOUSE_TEST_TIER")) in ("fast", "in-process"):
                raise RuntimeError(f"the {tier} tier starts no server, but a test asked for {service}: mark it `services`")
            self._ensure_watchdog()
            began = time.monotonic()
            self._servers[service] = start()
            print(f"\n[stack] {service} up in {time.monotonic() - began:.1f}s", flush=True)
        return self._servers[service]

    # --- the servers ------------------------------------------------------------------

    @property
    def postgres(self) -> postgres.PostgresServer:
        return self._started("postgres", self._start_postgres)

    def _start_postgres(self):
        (port,) = self._port("postgres")
        return postgres.start(self.dir("postgres"), port=port, password=PG_PASSWORD)

    @property
    def minio(self) -> minio.MinioServer:
        return self._started("minio", self._start_minio)

    def _start_minio(self):
        port, console = self._port("minio", "console")
        return minio.start(self.dir("minio"), port=port, console_port=console, buckets=(BUCKET,))

    @property
    def kafka(self) -> kafka.KafkaServer:
        return self._started("kafka", self._start_kafka)

    def _start_kafka(self):
        port, controller = self._port("kafka", "controller")
        return kafka.start(self.dir("kafka"), port=port, controller_port=controller, sasl=self.kafka_sasl)

    @property
    def kafka_sasl(self) -> kafka.SaslListener:
        (port,) = self._port("kafka_sasl")
        return kafka.SaslListener(port, SASL_USERS)

    @property
    def ferretdb(self) -> ferretdb.FerretServer:
        return self._started("ferretdb", self._start_ferretdb)

    def _start_ferretdb(self):
        (port,) = self._port("ferretdb")
        return ferretdb.start(self.dir("ferretdb"), port=port)

    @property
    def spark_cluster(self) -> spark_cluster.SparkCluster:
        return self._started("spark", self._start_spark)

    def _start_spark(self):
        port, webui = self._port("spark", "spark_webui")
        return spark_cluster.start(self.dir("spark"), port=port, webui_port=webui, worker_webui_ports=False)

    # --- a test's own share -----------------------------------------------------------

    def database(self, name: str) -> postgres.PostgresServer:
        """A PostgreSQL database of the test's own (created on first use), as the `lakehouse` role."""
        if name not in self._databases:
            server = self.postgres
            self._databases[name] = postgres.start(server.base_dir, port=server.port, database=name, password=PG_PASSWORD)
        return self._databases[name]

    # --- faults -----------------------------------------------------------------------

    def restart_kafka(self, down_seconds: float, kill: bool = False) -> None:
        """Stop the broker (SIGKILL with `kill`), wait, start it again on the same ports."""
        self.kafka  # noqa: B018 - started if it was not
        kafka.stop(self.dir("kafka"), kill=kill)
        time.sleep(down_seconds)
        del self._servers["kafka"]
        self.kafka  # noqa: B018

    def restart_minio(self, down_seconds: float) -> None:
        self.minio  # noqa: B018
        minio.stop(self.dir("minio"))
        time.sleep(down_seconds)
        del self._servers["minio"]
        self.minio  # noqa: B018

    # --- lifetime ---------------------------------------------------------------------

    def _ensure_watchdog(self) -> None:
        if self._watchdog is None:
            self.base.mkdir(parents=True, exist_ok=True)
            # Its own session: a Ctrl-C to the terminal's process group leaves it to clean up.
            self._watchdog = subprocess.Popen(
                [sys.executable, "-m", "tests.watchdog", str(os.getpid()), str(self.base)],
                cwd=project_root(), start_new_session=True, stdin=subprocess.DEVNULL,
            )

    def close(self) -> None:
        """Stop every server this run started and remove their folders."""
        stop_all(self.base)
        self._servers.clear()
        if self._watchdog is not None:
            self._watchdog.terminate()
            self._watchdog.wait(10)
            self._watchdog = None
        shutil.rmtree(self.base, ignore_errors=True)


def stop_all(base: Path) -> list[str]:
    """Stop the servers of a run's folder (whichever were started); returns the errors."""
    errors = []
    stops = {
        "prometheus": lambda d: prometheus.stop(d, kill=True),
        "spark": lambda d: spark_cluster.stop(d),
        "ferretdb": lambda d: ferretdb.stop(d, kill=True),
        "kafka": lambda d: kafka.stop(d, kill=True),
        "minio": lambda d: minio.stop(d, kill=True),
        "postgres": lambda d: postgres.stop(d),
    }
    for service in SERVICES:
        folder = base / service
        if folder.is_dir():
            try:
                stops[service](folder)
            except Exception as error:  # noqa: BLE001 - stop the others anyway
                errors.append(f"{service}: {error}")
    return errors


def stack_env(stack: Stack, name: str) -> dict[str, str]:
    """Environment of a job run against the stack: profile services, the test's topics
    (`<name>.<dataset>`), warehouse prefix (`s3a://lakehouse/<name>`) and database (`name`)."""
    from lakehouse.feeds import NAMES
    from lakehouse_dev.services.process import free_ports

    pg = stack.database(name)
    # The services profile's fixed metrics ports, made free ones: tests run side by side.
    metrics_ports = dict(zip(("STREAM", "STREAM_WINDOWS", "MIRROR"), free_ports(3), strict=True))
    return {
        "LAKEHOUSE_PROFILE": "services",
        "LAKEHOUSE_WAREHOUSE": f"s3a://{BUCKET}/{name}",
        "LAKEHOUSE_KAFKA__BOOTSTRAP_SERVERS": stack.kafka.bootstrap,
        **{f"LAKEHOUSE_KAFKA__TOPICS__{d.upper()}": f"{name}.{d}" for d in NAMES},
        "LAKEHOUSE_S3__ENDPOINT": stack.minio.endpoint,
        "LAKEHOUSE_S3_ACCESS_KEY": stack.minio.access_key,
        "LAKEHOUSE_S3_SECRET_KEY": stack.minio.secret_key,
        "LAKEHOUSE_EXPORT__URL": pg.jdbc_url,
        "LAKEHOUSE_EXPORT__USER": pg.user,
        "LAKEHOUSE_EXPORT_PASSWORD": pg.password,
        **{f"LAKEHOUSE_METRICS__{job}_PORT": str(port) for job, port in metrics_ports.items()},
    }


def stack_config(stack: Stack, name: str, partitions: int = 2,
                 datasets: tuple[str, ...] = ("access_logs", "product_views")):
    """The services-profile config of one test (the topics of `datasets` are created here)."""
    from lakehouse.config import load_config

    config = load_config(profile="services", environ=stack_env(stack, name))
    kafka.create_topics(stack.kafka, {config.kafka.topics[d]: partitions for d in datasets})
    return config


def use_stack(spark, config) -> None:
    """Point the shared test session's S3A at the stack's MinIO."""
    from lakehouse.session import configure_s3a

    configure_s3a(spark, config)
