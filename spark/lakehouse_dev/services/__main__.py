"""The local service stack in one command: PostgreSQL, Kafka (KRaft), MinIO and a Spark
standalone cluster (a master and 2 workers) on loopback; on request FerretDB (a
MongoDB-wire server for `lakehouse ingest-mongo`) and a SASL listener on Kafka (a source
for `lakehouse mirror` to try against).

    python -m lakehouse_dev.services up|down|status [--only postgres,kafka,minio,spark,ferretdb]
    LAKEHOUSE_MIRROR_SASL_PASSWORD=... python -m lakehouse_dev.services up --only kafka --kafka-sasl-port 9094

Ports, topics and the bucket come from the `cluster` profile of conf/lakehouse.yaml (the
`services` profile plus spark.master): kafka.bootstrap_servers, kafka.topics, s3.endpoint,
the bucket of `warehouse`, export.url, spark.master; so the jobs run with
LAKEHOUSE_PROFILE=services (driver-local Spark) or LAKEHOUSE_PROFILE=cluster find what this
started.
State and logs live under `<project>/.data/<service>/` (gitignored). Start and stop are
idempotent; `up` starts what is down and leaves running servers alone. Credentials come
from LAKEHOUSE_S3_ACCESS_KEY / LAKEHOUSE_S3_SECRET_KEY / LAKEHOUSE_EXPORT_PASSWORD, with
documented development defaults for these loopback-only servers.

`--kafka-sasl-port P` opens Kafka's SASL_PLAINTEXT listener on P with one user,
$LAKEHOUSE_KAFKA_SASL_USER (default `mirror`), whose password is $LAKEHOUSE_MIRROR_SASL_PASSWORD:
the variable `lakehouse mirror` reads, so one export serves both ends of a trial (PLAIN and
SCRAM-SHA-512). `up` without `--only` starts the four core services; FerretDB (built from
source with Go on its first start, about 2 minutes) only when named; `down` stops all five.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from urllib.parse import urlparse

from lakehouse.config import Config, load_config
from lakehouse_dev.services import ferretdb, kafka, minio, postgres, spark

CORE = ("postgres", "kafka", "minio", "spark")
SERVICES = (*CORE, "ferretdb")
SASL_USER_ENV = "LAKEHOUSE_KAFKA_SASL_USER"
SASL_PASSWORD_ENV = "LAKEHOUSE_MIRROR_SASL_PASSWORD"  # the one `lakehouse mirror` reads


def _port(hostport: str) -> int:
    return int(hostport.rsplit(":", 1)[1])


def bucket_of(warehouse: str) -> str:
    """`lakehouse` for `s3a://lakehouse/warehouse`."""
    return urlparse(warehouse).netloc


def sasl_listener(port: int, environ: dict[str, str]) -> kafka.SaslListener:
    """The SASL listener of `--kafka-sasl-port`: one user, its password from the environment."""
    password = environ.get(SASL_PASSWORD_ENV, "")
    if not password:
        raise RuntimeError(f"--kafka-sasl-port needs the SASL user's password in ${SASL_PASSWORD_ENV}")
    return kafka.SaslListener(port, {environ.get(SASL_USER_ENV) or "mirror": password})


def up(config: Config, only: tuple[str, ...], sasl: kafka.SaslListener | None = None) -> None:
    if "postgres" in only:
        port = urlparse(config.export.url.removeprefix("jdbc:")).port or postgres.DEFAULT_PORT
        server = postgres.start(port=port)
        print(f"postgres: up on {server.host}:{server.port} db={server.database} user={server.user}", flush=True)
    if "kafka" in only:
        broker = kafka.start(
            port=_port(config.kafka.bootstrap_servers),
            topics={topic: 2 for topic in config.kafka.topics.values()},
            sasl=sasl,
        )
        print(f"kafka: up on {broker.bootstrap} topics={','.join(config.kafka.topics.values())}", flush=True)
        if broker.sasl_bootstrap:
            print(f"kafka: SASL_PLAINTEXT (PLAIN, SCRAM-SHA-512) on {broker.sasl_bootstrap} user={next(iter(sasl.users))}", flush=True)
    if "minio" in only:
        store = minio.start(port=urlparse(config.s3.endpoint).port, buckets=(bucket_of(config.warehouse),))
        print(f"minio: up on {store.endpoint} bucket={bucket_of(config.warehouse)}", flush=True)
    if "spark" in only:
        cluster = spark.start(port=urlparse(config.spark_master).port or spark.DEFAULT_PORT)
        print(f"spark: up on {cluster.master_url} with {cluster.alive_workers()} workers ALIVE "
              f"(status {cluster.webui}/json/)", flush=True)
    if "ferretdb" in only:
        mongo = ferretdb.start()
        print(f"ferretdb: up on {mongo.uri} (lakehouse ingest-mongo --uri {mongo.uri} ...)", flush=True)


def down(only: tuple[str, ...]) -> None:
    for name, module in (("ferretdb", ferretdb), ("spark", spark), ("minio", minio), ("kafka", kafka), ("postgres", postgres)):
        if name in only:
            was_up = module.status()
            module.stop()
            print(f"{name}: {'stopped' if was_up else 'already down'}", flush=True)


def status(only: tuple[str, ...]) -> bool:
    all_up = True
    for name, module in (("postgres", postgres), ("kafka", kafka), ("minio", minio), ("spark", spark), ("ferretdb", ferretdb)):
        if name in only:
            running = module.status()
            all_up &= running
            print(f"{name}: {'up' if running else 'down'}")
    return all_up


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lakehouse_dev.services", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("up", "down", "status"))
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(SERVICES)} (default: {','.join(CORE)}; down: all)")
    parser.add_argument("--kafka-sasl-port", type=int, help=f"up: also a SASL_PLAINTEXT listener on this port (password from ${SASL_PASSWORD_ENV})")
    args = parser.parse_args(argv)
    default = SERVICES if args.action == "down" else CORE
    only = tuple(s.strip() for s in args.only.split(",") if s.strip()) if args.only else default
    unknown = set(only) - set(SERVICES)
    if unknown:
        parser.error(f"unknown service(s): {', '.join(sorted(unknown))}")
    config = load_config(profile="cluster")
    started = time.monotonic()
    try:
        if args.action == "up":
            sasl = sasl_listener(args.kafka_sasl_port, dict(os.environ)) if args.kafka_sasl_port else None
            up(config, only, sasl)
            print(f"services up in {time.monotonic() - started:.0f}s; run jobs with LAKEHOUSE_PROFILE=services (or cluster)", flush=True)
        elif args.action == "down":
            down(only)
        else:
            return 0 if status(only) else 3
    except RuntimeError as exc:
        print(f"services: {args.action} failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
