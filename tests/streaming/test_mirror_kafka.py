"""`lakehouse mirror` against a real remote cluster with SASL: remote topic -> our topic ->
bronze -> silver, each event exactly once in silver, also across a SIGKILL of the mirror
that `lakehouse supervise` recovers from by itself.

The "remote" is the run's broker (tests/stack.py) through its SASL_PLAINTEXT listener
(PLAIN and SCRAM-SHA-512), reading topics of its own; our side is its plain listener. The
mirror runs as its own process (`python -m lakehouse.jobs.mirror`, what `lakehouse mirror`
runs), the bronze stream and silver in this one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from lakehouse.config import project_root
from lakehouse.feeds.product_views import silver as silver_product_views
from lakehouse.io import delta, files
from lakehouse.io import kafka as kafka_io
from lakehouse.jobs.runtime import JobRun
from lakehouse.jobs.stream_kafka import StreamOptions, run_streams
from lakehouse_dev.services import kafka
from tests.stack import SASL_PASSWORD, SASL_USER
from tests.streaming.conftest import (
    kill_group,
    stack_config,
    stack_env,
    use_stack,
    wait_for,
    wait_group_gone,
)

pytestmark = pytest.mark.services

USER, PASSWORD = SASL_USER, SASL_PASSWORD
T0 = 1709290000  # 2024-03-01 10:46:40 UTC
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"


@pytest.fixture
def remote(stack):
    """The broker playing the remote cluster: PLAINTEXT (to feed it) + SASL_PLAINTEXT."""
    return stack.kafka


def event(i: int, tag: str) -> dict:
    """Event `i` in seed 004's shape: ids of every kind (a tenth without), `ip` or `remote_ip`,
    ISO time with an offset or epoch seconds, a nested field the mirror must keep."""
    ev: dict = {}
    kind = i % 10
    if kind == 1:
        ev["_id"] = {"$oid": f"{i:024x}"}
    elif kind == 2:
        ev["event_id"] = f"evt-{tag}-{i}"
    elif kind != 0:
        ev["_id"] = f"{tag}{i:020d}"
    ev["ip" if i % 2 == 0 else "remote_ip"] = f"81.2.69.{i % 200}"
    ev["user_agent"] = UA
    ev["device_id"] = f"dev-{i % 23}"
    ev["store_id"] = str(i % 5)
    ev["product_id"] = str(100 + i % 37)
    ev["referrer_url"] = "https://www.google.com/search?q=ring"
    if i % 3 == 0:
        ev["timestamp"] = datetime.fromtimestamp(T0 + 60 * i, timezone(timedelta(hours=7))).isoformat()
    else:
        ev["time_stamp"] = T0 + 60 * i
    ev["collection"] = "view_product_detail"
    if i % 4 == 0:
        ev["option"] = [{"option_label": "size", "value_label": str(i % 9)}]
    return ev


def produce_remote(remote: kafka.KafkaServer, topic: str, start: int, n: int, tag: str) -> None:
    records = [(None, json.dumps(event(i, tag)).encode()) for i in range(start, start + n)]
    stats = kafka_io.send_paced(remote.bootstrap, topic, records, None)
    assert stats.errors == 0 and stats.acknowledged == n


def expected_silver(remote: kafka.KafkaServer, topic: str, n: int, tag: str) -> list[tuple]:
    """(event_id, product_id, device_id, remote_ip, event_ts) of events 0..n-1: an event
    without id gets the hash of its place in the remote topic, wherever the mirror put it."""
    cluster, _partitions = kafka_io.check_cluster(remote.bootstrap, kafka_io.KafkaAuth(), topic)
    places = remote_places(remote, topic)
    rows = []
    for i in range(n):
        ev = event(i, tag)
        if "_id" in ev:
            event_id = ev["_id"]["$oid"] if isinstance(ev["_id"], dict) else ev["_id"]
        elif "event_id" in ev:
            event_id = ev["event_id"]
        else:
            p, o = places[json.dumps(ev).encode()]
            event_id = hashlib.sha256(f"kafka:{cluster}/{topic}:{p}:{o}".encode()).hexdigest()
        utc = datetime.fromtimestamp(T0 + 60 * i, UTC).replace(tzinfo=None)
        rows.append((event_id, ev["product_id"], ev["device_id"], f"81.2.69.{i % 200}", utc))
    return sorted(rows)


def remote_places(remote: kafka.KafkaServer, topic: str) -> dict[bytes, tuple[int, int]]:
    """{value: (partition, offset)} of every record of the remote topic."""
    from confluent_kafka import Consumer

    consumer = Consumer({"bootstrap.servers": remote.bootstrap, "group.id": f"check-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})  # fmt: skip
    total = sum(kafka_io.latest_offsets(remote.bootstrap, topic).values())
    places: dict[bytes, tuple[int, int]] = {}
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + 60
        while len(places) < total and time.monotonic() < deadline:
            for message in consumer.consume(1000, timeout=1):
                if message.error() is None:
                    places[message.value()] = (message.partition(), message.offset())
    finally:
        consumer.close()
    assert len(places) == total
    return places


def silver_rows(spark, config) -> list[tuple]:
    table = delta.read_table(spark, config.table_path("silver", "product_views"))
    return sorted(tuple(r) for r in table.select("event_id", "product_id", "device_id", "remote_ip", "event_ts").collect())


def bronze_then_silver(spark, config) -> None:
    """The local topic -> bronze (the stream, catch-up) -> silver, in this process."""
    run_streams(spark, config, StreamOptions(("product_views",), "availableNow", None), JobRun("stream"))
    silver_product_views.run(spark, config, JobRun("silver"))


def start_mirror(stack, name: str, remote: kafka.KafkaServer, *args: str, password: str = PASSWORD, log_path) -> subprocess.Popen:
    """The mirror as its own process (so a test can SIGKILL it), password in the environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")}
    env |= stack_env(stack, name) | {"LAKEHOUSE_HOME": str(project_root()), "LAKEHOUSE_SPARK_MASTER": "local[2]",
                                     "LAKEHOUSE_MIRROR_SASL_PASSWORD": password}  # fmt: skip
    handle = open(log_path, "ab")  # noqa: SIM115 - closed with the process by the caller
    return subprocess.Popen(
        [sys.executable, "-m", "lakehouse.jobs.mirror", "--from-bootstrap", remote.sasl_bootstrap,
         "--security-protocol", "SASL_PLAINTEXT", "--sasl-username", USER, *args],
        env=env, stdout=handle, stderr=subprocess.STDOUT, cwd=project_root(), start_new_session=True,
    )  # fmt: skip


def local_count(config) -> int:
    return sum(kafka_io.latest_offsets(config.kafka.bootstrap_servers, config.kafka.topics["product_views"]).values())


def _tail(path) -> str:
    return path.read_text(errors="replace")[-4000:] if path.exists() else ""


def remote_topic_and_local_stack(spark, stack, remote, topic: str, n: int, name: str, tmp_path):
    """`n` events in a new remote topic; the local stack's config for `name` and a log path."""
    kafka.create_topics(remote, {topic: 2})
    produce_remote(remote, topic, 0, n, name)
    config = stack_config(stack, name, datasets=("product_views",))
    use_stack(spark, config)
    return config, tmp_path / "mirror.log"


def rewind_last_commit(spark, checkpoint: str) -> int:
    """Make the checkpoint say its last committed batch never committed, as if the SIGKILL
    had landed between the sink's write and the commit (so the restart writes it again);
    returns that batch's id."""
    committed = max(int(c) for c in files.child_names(spark, f"{checkpoint}/commits") if c.isdigit())
    for folder, first in (("commits", committed), ("offsets", committed + 1)):
        for child in files.child_names(spark, f"{checkpoint}/{folder}"):
            batch = child.lstrip(".").split(".")[0]
            if batch.isdigit() and int(batch) >= first:
                fs, path = files.filesystem(spark, f"{checkpoint}/{folder}/{child}")
                fs.delete(path, False)
    return committed


def supervise_mirror(stack, name: str, remote: kafka.KafkaServer, *args: str, delay: float, log_path,
                     metrics_port: int) -> subprocess.Popen:  # fmt: skip
    """`lakehouse supervise` running the mirror as its service (what the native stack does),
    its metrics endpoint on `metrics_port`."""
    line = shlex.join(["mirror", "--from-bootstrap", remote.sasl_bootstrap, "--security-protocol", "SASL_PLAINTEXT",
                       "--sasl-username", USER, *args])  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")}
    env |= stack_env(stack, name) | {"LAKEHOUSE_HOME": str(project_root()), "LAKEHOUSE_SPARK_MASTER": "local[2]",
                                     "LAKEHOUSE_MIRROR_SASL_PASSWORD": PASSWORD, "LAKEHOUSE_SUPERVISE__SERVICES__MIRROR": line,
                                     "LAKEHOUSE_SUPERVISE__RESTART_DELAY_SECONDS": str(delay),
                                     "LAKEHOUSE_METRICS__MIRROR_PORT": str(metrics_port),
                                     # SIGTERM lets the batch in flight finish: on a loaded 2-core
                                     # machine that outlasted the default 20 s (CI), then SIGKILL.
                                     "LAKEHOUSE_SUPERVISE__STOP_TIMEOUT_SECONDS": "60"}  # fmt: skip
    handle = open(log_path, "ab")  # noqa: SIM115 - closed with the process by the caller
    return subprocess.Popen([sys.executable, "-m", "lakehouse", "supervise", "--service", "mirror"], env=env,
                            stdout=handle, stderr=subprocess.STDOUT, cwd=project_root(), start_new_session=True)  # fmt: skip


def mirror_pids(log_path) -> list[int]:
    return [int(p) for p in re.findall(r"mirror: started \(pid (\d+)\)", log_path.read_text(errors="replace"))]


def test_a_killed_mirror_comes_back_by_itself_and_silver_holds_each_event_once(spark, stack, remote, tmp_path):
    """The mirror over SCRAM-SHA-512, supervised: SIGKILLed mid-stream (its last batch made to
    look uncommitted, so the restart writes it again), `lakehouse supervise` restarts it, the
    replay duplicates in Kafka, and silver holds each remote event once: record sets
    compared. (PLAIN's login is the broker's test and the wrong-password test's.)

    Meanwhile a real Prometheus, on the shipped configuration, scrapes the mirror's metrics
    endpoint and a real `lakehouse serve`: its HTTP API gives the restarted mirror's records
    in, which must be what it wrote to the local topic."""
    from lakehouse.api.app import create_app
    from lakehouse_dev.services import prometheus
    from lakehouse_dev.services.process import free_ports
    from tests.api.conftest import running
    from tests.monitoring.live import scraping

    name, n, more = "mirror_kill", 1500, 200
    topic = f"{name}.remote"
    config, log_path = remote_topic_and_local_stack(spark, stack, remote, topic, n, name, tmp_path)
    metrics_port = free_ports()[0]
    supervisor = supervise_mirror(stack, name, remote, "--sasl-mechanism", "SCRAM-SHA-512", "--from-topic", topic,
                                  "--trigger", "1 second", "--max-offsets-per-trigger", "300", delay=15, log_path=log_path,
                                  metrics_port=metrics_port)  # fmt: skip
    try:
        with running(create_app(config)) as api, scraping(
            stack, {"lakehouse-api": api.removeprefix("http://"), "lakehouse-mirror": f"127.0.0.1:{metrics_port}"}
        ) as prom:
            # Two batches in Kafka: the first is surely committed in the checkpoint.
            wait_for(lambda: local_count(config) >= 600 or supervisor.poll() is not None, 240, 0.2, "the first batches")
            assert supervisor.poll() is None, _tail(log_path)
            first = mirror_pids(log_path)[0]  # its own process group (its JVM in it)
            os.killpg(first, signal.SIGKILL)
            wait_group_gone(first)  # the supervisor reaps it
            killed_at = local_count(config)
            assert killed_at < n, "killed too late to test anything"
            # Within the restart delay: the checkpoint rewound as if the kill fell between the
            # sink's write and its commit.
            replayed = rewind_last_commit(spark, config.checkpoint(f"mirror_{topic}"))
            produce_remote(remote, topic, n, more, name)
            wait_for(lambda: len(mirror_pids(log_path)) == 2, 60, 0.5, "the supervisor to restart the mirror")

            def caught_up() -> bool:  # past everything once (`more` included) and quiet for 3 triggers
                before = local_count(config)
                time.sleep(3)
                return before > n + more and local_count(config) == before

            wait_for(caught_up, 300, 0, "the restarted mirror to catch up")
            written_since_kill = local_count(config) - killed_at
            in_prometheus = prometheus.query(prom, 'lakehouse_stream_rows_total{job="lakehouse-mirror", dataset="mirror"}')
            api_up = prometheus.query(prom, 'up{job="lakehouse-api"}')
            thresholds = prometheus.query(prom, 'lakehouse_feed_landing_interval_seconds{dataset="api_ticks"}')
            rules = prometheus.api(prom, "rules")
    finally:
        supervisor.terminate()
        assert supervisor.wait(120) == 0, _tail(log_path)
    output = log_path.read_text(errors="replace")
    assert "mirror: exited with code -9" in output and "restart 1 in 15.0s" in output
    assert "mirror: stopped (code 0)" in output  # SIGTERM: the batch in flight finished, the JVM stopped by the job
    assert local_count(config) > n + more, f"batch {replayed} was not written twice"  # at least once
    assert PASSWORD not in output
    # The restarted mirror's counter (from 0 at its start), as Prometheus scraped it.
    assert [float(r["value"][1]) for r in in_prometheus] == [written_since_kill]
    assert [r["value"][1] for r in api_up] == ["1"]
    assert [float(r["value"][1]) for r in thresholds] == [30 * 60]
    assert len([rule for group in rules["groups"] for rule in group["rules"]]) == 9  # the shipped alerts loaded
    bronze_then_silver(spark, config)
    assert silver_rows(spark, config) == expected_silver(remote, topic, n + more, name)  # exactly once


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "PLAIN"])
def test_wrong_password_fails_fast_naming_the_mechanism(stack, remote, tmp_path, mechanism):
    log_path = tmp_path / "mirror.log"
    started = time.monotonic()
    proc = start_mirror(stack, "mirror_denied", remote, "--sasl-mechanism", mechanism, "--from-topic", "any",
                        password="not-the-password", log_path=log_path)  # fmt: skip
    try:
        code = proc.wait(60)
    finally:
        kill_group(proc)
    output = log_path.read_text(errors="replace").strip()
    assert code != 0 and time.monotonic() - started < 30, output
    assert len(output.splitlines()) == 1, output
    assert f"authentication failed with SASL mechanism {mechanism}" in output
    assert remote.sasl_bootstrap in output and "not-the-password" not in output


def test_spark_options_quote_the_password_and_never_show_it():
    auth = kafka_io.KafkaAuth("SASL_SSL", "SCRAM-SHA-512", "mirror", 'p"w\\d', ca_file="/etc/ca.pem")
    assert auth.spark_options() == {
        "kafka.security.protocol": "SASL_SSL",
        "kafka.sasl.mechanism": "SCRAM-SHA-512",
        "kafka.sasl.jaas.config": 'org.apache.kafka.common.security.scram.ScramLoginModule required '
        'username="mirror" password="p\\"w\\\\d";',
        "kafka.ssl.truststore.type": "PEM",
        "kafka.ssl.truststore.location": "/etc/ca.pem",
    }
    assert 'p"w' not in repr(auth) and "p\"w" not in auth.describe()
