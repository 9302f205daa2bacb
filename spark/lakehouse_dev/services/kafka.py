"""A real local Apache Kafka broker for tests, benchmarks and the local stack (no Docker).

    python -m lakehouse_dev.services.kafka up|down|status [--port N] [--controller-port N] [--base-dir DIR]

One JVM in KRaft combined mode (broker and controller, node 1), run straight from the Maven
Central jars pinned in conf/kafka.pom.xml; they are resolved once per machine into
`~/.cache/lakehouse/kafka-<version>/lib` (again only when the POM changes). State lives in one
base dir (default `<project root>/.data/kafka`): `server.properties` and `log4j2.properties`
(rewritten on every start), the partitions and metadata log in `data/` (formatted on first
start only, so topics and records survive restarts), the broker's output in `kafka.log` and its
pid in `kafka.pid`. The broker listens on 127.0.0.1 only: clients on port 19092 by default, the
controller on 19093. Topics are never auto-created; `start(topics=...)` or `create_topics`
makes them. Optionally (`start(sasl=SaslListener(port, users))`, off by default) a third
listener, SASL_PLAINTEXT on another loopback port, authenticates clients with PLAIN or
SCRAM-SHA-512 (the setup of a remote cluster a mirror reads from, for tests); the broker's
own traffic stays on PLAINTEXT. Administration (topics, offsets, deleting records) goes through a client library
(confluent-kafka) in this process; the benchmark helpers run Kafka's own performance tools
(Producer/ConsumerPerformance) in short-lived JVMs, as the reference figures.

From Python: `server = start(topics={"access_logs": 2}); server.bootstrap; stop()`.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from lakehouse import jars
from lakehouse.config import project_root
from lakehouse.feeds import FEEDS
from lakehouse.io import kafka as kafka_io
from lakehouse_dev.services import process

SERVICE = "kafka"
HOST = "127.0.0.1"
DEFAULT_PORT = 19092
DEFAULT_CONTROLLER_PORT = 19093
# The topics of the feeds `lakehouse stream` reads by default, 2 partitions each.
DEFAULT_TOPICS: Mapping[str, int] = {name: 2 for name, feed in FEEDS.items() if feed.streamed_by_default}
NODE_ID = 1
BROKER_HEAP = "512m"
# Logs bigger than this are moved to kafka.log.1 at the next start.
MAX_LOG_BYTES = 32 * 1024 * 1024
# Records up to 16 MB (a huge log line or event must reach bronze, not be refused); the
# compose stack's broker is set alike (tests/test_compose.py checks).
MESSAGE_MAX_BYTES = 16 * 1024 * 1024
BROKER_JVM_OPTS = (
    # As kafka-server-start.sh / kafka-run-class.sh do.
    "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent", "-XX:MaxInlineLevel=15", "-Djava.awt.headless=true",
)
# Admin tools do a few requests and exit: start fast rather than run fast.
ADMIN_JVM_OPTS = ("-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xshare:auto")
PERF_JVM_OPTS = ("-Xmx512m", "-XX:+UseG1GC", "-Djava.awt.headless=true")

_TOOLS = "org.apache.kafka.tools."
BROKER_LOG4J = """\
# Written by lakehouse_dev.services.kafka on every start; edits are overwritten.
# Everything goes to stdout, which the service manager appends to kafka.log.
status = error
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.stdout.ref = STDOUT
logger.request.name = kafka.request.logger
logger.request.level = warn
logger.request.additivity = false
logger.request.appenderRef.stdout.ref = STDOUT
"""
# The tools print their results on stdout; their own logging must not end up there.
TOOLS_LOG4J = """\
# Written by lakehouse_dev.services.kafka: Kafka command-line tools log warnings to stderr only.
status = error
appender.stderr.type = Console
appender.stderr.name = STDERR
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = STDERR
"""


@dataclass(frozen=True)
class SaslListener:
    """The optional SASL_PLAINTEXT listener: its loopback port and the users it accepts.

    Each user of `users` ({name: password}) can log in with PLAIN and with SCRAM-SHA-512.
    PLAIN users are JAAS entries of server.properties (rewritten on every start, so the
    passwords sit in that file: a test broker's, never a production secret); SCRAM
    credentials live in the cluster metadata, upserted at each start.
    """

    port: int
    users: Mapping[str, str]

    MECHANISMS = ("PLAIN", "SCRAM-SHA-512")


@dataclass(frozen=True)
class KafkaServer:
    """A running broker: `bootstrap` is what clients pass as bootstrap.servers;
    `sasl_bootstrap` the SASL_PLAINTEXT listener's address when it has one."""

    bootstrap: str
    base_dir: Path
    pid: int
    sasl_bootstrap: str | None = None

    @property
    def port(self) -> int:
        return int(self.bootstrap.rpartition(":")[2])

    @property
    def log_file(self) -> Path:
        return process.log_file(self.base_dir, SERVICE)


def pom_file() -> Path:
    return project_root() / "conf" / "kafka.pom.xml"


def kafka_version() -> str:
    """The Kafka version pinned in conf/kafka.pom.xml (`<kafka.version>`)."""
    match = re.search(r"<kafka\.version>\s*([^<\s]+)\s*</kafka\.version>", pom_file().read_text())
    if match is None:
        raise RuntimeError(f"no <kafka.version> property in {pom_file()}")
    return match.group(1)


def cache_dir() -> Path:
    """Per-machine home of the Kafka jars: `~/.cache/lakehouse/kafka-<version>` (XDG_CACHE_HOME)."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "lakehouse" / f"kafka-{kafka_version()}"


def ensure_jars(quiet: bool = True) -> Path:
    """The lib dir holding the Kafka jars, resolving conf/kafka.pom.xml with Maven if needed.

    Shared by every clone on the machine; a POM edit (stamped by hash) fetches again. Takes
    ~10-40 s the first time (less when ~/.m2 has the jars already), then nothing.
    """
    cache = cache_dir()
    lib = jars.resolve_pom(pom_file(), cache / "lib", label=SERVICE, quiet=quiet,
                           lock_file=cache / "lib.lock")
    tools_log4j = cache / "tools-log4j2.properties"
    if not tools_log4j.is_file() or tools_log4j.read_text() != TOOLS_LOG4J:
        tmp = tools_log4j.with_name(f"{tools_log4j.name}.{os.getpid()}")
        tmp.write_text(TOOLS_LOG4J)
        tmp.replace(tools_log4j)
    return lib


def start(
    base_dir: Path | None = None,
    port: int = DEFAULT_PORT,
    controller_port: int = DEFAULT_CONTROLLER_PORT,
    topics: Mapping[str, int] | None = None,
    timeout: float = 90,
    sasl: SaslListener | None = None,
) -> KafkaServer:
    """Start (or reuse) the broker of `base_dir`, wait until it answers, create `topics`.

    `topics` maps names to partition counts; missing ones are created (replication factor 1),
    existing ones are left as they are. Idempotent: a broker already running on `base_dir`
    with the same ports is reused. The storage is formatted on the first start only.
    `sasl` adds the SASL_PLAINTEXT listener (see SaslListener); its SCRAM users are
    created (or their passwords reset) once the broker answers.

    Raises RuntimeError, with the tail of kafka.log where useful, when a port is taken by
    another process, the broker of `base_dir` runs on other ports, or it does not start and
    answer within `timeout` seconds.
    """
    base = process.resolve_base(SERVICE, base_dir)
    deadline = time.monotonic() + timeout
    base.mkdir(parents=True, exist_ok=True)
    with _locked(base):
        pid = _running_pid(base)
        if pid is None:
            pid = _launch(base, port, controller_port, deadline, sasl)
        else:
            running = _configured_ports(base)
            if running != (port, controller_port):
                raise RuntimeError(
                    f"kafka of {base} is already running on ports {running[0]}/{running[1]} "
                    f"(client/controller), not {port}/{controller_port}; stop it first or use "
                    "those ports"
                )
            running_sasl = _configured_sasl_port(base)
            if running_sasl != (sasl.port if sasl else None):
                raise RuntimeError(
                    f"kafka of {base} is already running with SASL listener port {running_sasl}, "
                    f"not {sasl.port if sasl else None}; stop it first"
                )
        _wait_ready(base, pid, port, deadline)
    server = KafkaServer(f"{HOST}:{port}", base, pid, f"{HOST}:{sasl.port}" if sasl else None)
    if sasl is not None:
        _upsert_scram_users(server.bootstrap, sasl.users, timeout=max(deadline - time.monotonic(), 10))
    if topics:
        create_topics(server, topics, timeout=max(deadline - time.monotonic(), 10))
    return server


def stop(base_dir: Path | None = None, timeout: float = 30, kill: bool = False) -> None:
    """Stop the broker of `base_dir`; does nothing if it is not running.

    SIGTERM makes Kafka shut down cleanly (flush, close the logs, no recovery at the next
    start); a broker still alive after `timeout` seconds is SIGKILLed. `kill=True` sends
    SIGKILL straight away, like a crash (for fault tests); the next start recovers the logs.
    """
    base = process.resolve_base(SERVICE, base_dir)
    if not base.is_dir():
        return
    with _locked(base):
        pid = _running_pid(base)
        clean = pid is not None and process.terminate(f"kafka of {base}", pid, timeout, kill=kill)
        _forget(base, pid)
        _settle_broker_archive(base, keep=clean)


def status(base_dir: Path | None = None) -> bool:
    """Whether the broker of `base_dir` is running (its pid file names a live kafka.Kafka)."""
    return _running_pid(process.resolve_base(SERVICE, base_dir)) is not None


def running_server(base_dir: Path | None = None) -> KafkaServer | None:
    """The running broker of `base_dir` (not checked for readiness), or None."""
    base = process.resolve_base(SERVICE, base_dir)
    pid = _running_pid(base)
    if pid is None:
        return None
    sasl_port = _configured_sasl_port(base)
    return KafkaServer(f"{HOST}:{_configured_ports(base)[0]}", base, pid, f"{HOST}:{sasl_port}" if sasl_port else None)


# --- admin: through the client library of `io/kafka.py` ---------------------------------------


def list_topics(bootstrap: str | KafkaServer, timeout: float = 60) -> set[str]:
    """Names of the non-internal topics."""
    return kafka_io.list_topics(_bootstrap(bootstrap), timeout)


def create_topics(server: str | KafkaServer, topics: Mapping[str, int], timeout: float = 60) -> list[str]:
    """Create the missing topics of `topics` ({name: partitions}); the names created."""
    return kafka_io.create_topics(_bootstrap(server), topics, timeout)


def topic_end_offsets(bootstrap: str | KafkaServer, topic: str, timeout: float = 60) -> dict[int, int]:
    """{partition: log end offset} of `topic` (the offset the next record will get)."""
    return kafka_io.latest_offsets(_bootstrap(bootstrap), topic, timeout)


def topic_start_offsets(bootstrap: str | KafkaServer, topic: str, timeout: float = 60) -> dict[int, int]:
    """{partition: log start offset} of `topic` (the oldest record still kept)."""
    return kafka_io.earliest_offsets(_bootstrap(bootstrap), topic, timeout)


def produce(bootstrap: str | KafkaServer, topic: str, values: Iterable[str], timeout: float = 60) -> None:
    """Write one record per item of `values` (no key, UTF-8), acks=all; RuntimeError unless all are acknowledged."""
    stats = kafka_io.send_paced(_bootstrap(bootstrap), topic, ((None, v.encode()) for v in values), None)
    if stats.errors or stats.acknowledged != stats.sent:
        raise RuntimeError(f"kafka produce to {topic!r}: {stats.acknowledged} of {stats.sent} acknowledged")


# --- benchmark helpers (Kafka's own performance tools, the reference figures) ---------------


def producer_perf(
    bootstrap: str | KafkaServer,
    topic: str,
    records: int,
    record_size: int = 100,
    throughput: int = -1,
    timeout: float = 300,
) -> dict[str, float]:
    """Run Kafka's ProducerPerformance: `records` random records of `record_size` bytes.

    Returns its final summary: records, records_per_s, mb_per_s, avg_latency_ms,
    max_latency_ms, p50_ms, p95_ms, p99_ms, p999_ms. `throughput=-1` is unthrottled.
    """
    out = _tool("ProducerPerformance", [
        "--bootstrap-server", _bootstrap(bootstrap), "--topic", topic, "--num-records",
        str(records), "--record-size", str(record_size), "--throughput", str(throughput),
        "--command-property", "acks=all",
    ], timeout=timeout, jvm_opts=PERF_JVM_OPTS)
    # The last line sums up the run, e.g. "1000 records sent, 742.39 records/sec (0.04 MB/sec),
    # 479.72 ms avg latency, 1099.00 ms max latency, 516 ms 50th, 543 ms 95th, 544 ms 99th,
    # 1099 ms 99.9th." (earlier lines are the 5 s progress reports).
    summary = re.findall(
        r"^(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, "
        r"([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99\.9th",
        out, re.M,
    )
    if not summary:
        raise RuntimeError(f"cannot parse ProducerPerformance output:\n{out}")
    keys = ("records", "records_per_s", "mb_per_s", "avg_latency_ms", "max_latency_ms",
            "p50_ms", "p95_ms", "p99_ms", "p999_ms")
    return {k: float(v) for k, v in zip(keys, summary[-1], strict=True)}


def consumer_perf(
    bootstrap: str | KafkaServer, topic: str, messages: int, timeout: float = 300
) -> dict[str, float]:
    """Kafka's own consumer ceiling: ConsumerPerformance reading `messages` records of `topic`.

    One consumer in a fresh group, from the earliest offsets, records not deserialised. Returns
    elapsed_s (wall time from its start to its end, rebalance included), mb, mb_per_s,
    messages, msgs_per_s, rebalance_ms, fetch_ms, fetch_mb_per_s and fetch_msgs_per_s (the
    same rates without the group join). Raises RuntimeError if fewer than `messages` records
    arrive (ConsumerPerformance would report the short run, with a 10 s idle wait in it).
    """
    out = _tool("ConsumerPerformance", [
        "--bootstrap-server", _bootstrap(bootstrap), "--topic", topic,
        "--num-records", str(messages), "--timeout", "10000",
    ], timeout=timeout, jvm_opts=PERF_JVM_OPTS)
    lines = [line for line in out.splitlines() if line.strip()]
    header_at = next((i for i, line in enumerate(lines) if line.startswith("start.time")), None)
    if header_at is None or header_at + 1 >= len(lines):
        raise RuntimeError(f"cannot parse ConsumerPerformance output:\n{out}")
    header = [h.strip() for h in lines[header_at].split(",")]
    row = dict(zip(header, (v.strip() for v in lines[header_at + 1].split(",")), strict=False))
    fmt = "%Y-%m-%d %H:%M:%S:%f"
    elapsed = datetime.strptime(row["end.time"], fmt) - datetime.strptime(row["start.time"], fmt)
    result = {
        "elapsed_s": elapsed.total_seconds(),
        "mb": float(row["data.consumed.in.MB"]),
        "mb_per_s": float(row["MB.sec"]),
        "messages": float(row["data.consumed.in.nMsg"]),
        "msgs_per_s": float(row["nMsg.sec"]),
        "rebalance_ms": float(row["rebalance.time.ms"]),
        "fetch_ms": float(row["fetch.time.ms"]),
        "fetch_mb_per_s": float(row["fetch.MB.sec"]),
        "fetch_msgs_per_s": float(row["fetch.nMsg.sec"]),
    }
    if result["messages"] < messages:
        raise RuntimeError(
            f"ConsumerPerformance read {result['messages']:.0f} of {messages} records of "
            f"{topic!r} before its 10 s idle timeout:\n{out}"
        )
    return result


# --- internals ---------------------------------------------------------------------------


def _log(base: Path) -> Path:
    return process.log_file(base, SERVICE)


def _pid_file(base: Path) -> Path:
    return base / f"{SERVICE}.pid"


def _properties(base: Path) -> Path:
    return base / "server.properties"


def _data_dir(base: Path) -> Path:
    return base / "data"


def _bootstrap(server: str | KafkaServer) -> str:
    return server.bootstrap if isinstance(server, KafkaServer) else server


def _locked(base: Path):
    """Serialise start/stop of one base dir across processes."""
    return process.locked(base / f".{SERVICE}.lock")


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    if home and os.access(Path(home) / "bin" / "java", os.X_OK):
        return str(Path(home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise RuntimeError("java not found: Kafka needs Java 17+ (apt-get install openjdk-17-jre-headless)")
    return found


def _running_pid(base: Path) -> int | None:
    """Pid of the live broker of `base`: the pid file's process, if it runs kafka.Kafka on
    this base dir's server.properties (so a recycled pid is not mistaken for it)."""
    pid = process.read_pid(_pid_file(base))
    if pid is None or not process.alive(pid):
        return None
    cmd = process.cmdline(pid)
    if cmd and not ("kafka.Kafka" in cmd and str(_properties(base)) in cmd):
        return None
    return pid


def _configured_ports(base: Path) -> tuple[int, int]:
    """(client port, controller port) from the `listeners` line of server.properties."""
    text = _properties(base).read_text()
    # [=,] before the name: SASL_PLAINTEXT:// must not pass for PLAINTEXT://.
    client = re.search(r"^listeners=(?:.*,)?PLAINTEXT://[^,:]+:(\d+)", text, re.M)
    ctrl = re.search(r"^listeners=(?:.*,)?CONTROLLER://[^,:]+:(\d+)", text, re.M)
    if client is None or ctrl is None:
        raise RuntimeError(f"no PLAINTEXT/CONTROLLER listeners in {_properties(base)}")
    return int(client.group(1)), int(ctrl.group(1))


def _configured_sasl_port(base: Path) -> int | None:
    """The SASL_PLAINTEXT listener's port from server.properties (None: no such listener)."""
    with contextlib.suppress(FileNotFoundError):
        found = re.search(r"^listeners=(?:.*,)?SASL_PLAINTEXT://[^,:]+:(\d+)", _properties(base).read_text(), re.M)
        return int(found.group(1)) if found else None
    return None


def _jaas_quote(text: str) -> str:
    """`text` as a JAAS option value (a double-quoted string)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _sasl_properties(sasl: SaslListener) -> str:
    """The server.properties lines of the SASL_PLAINTEXT listener (PLAIN and SCRAM-SHA-512)."""
    for name in sasl.users:
        if not re.fullmatch(r"[A-Za-z0-9._-]+", name):
            raise ValueError(f"SASL user name {name!r}: letters, digits, '.', '_' and '-' only")
    # Backslashes doubled once more: server.properties is a Java properties file.
    plain_users = " ".join(f"user_{name}={_jaas_quote(pw)}" for name, pw in sasl.users.items()).replace("\\", "\\\\")
    return f"""
# The SASL_PLAINTEXT listener (clients only): PLAIN users are the user_<name> entries,
# SCRAM-SHA-512 credentials live in the cluster metadata (upserted at each start).
sasl.enabled.mechanisms={",".join(SaslListener.MECHANISMS)}
listener.name.sasl_plaintext.sasl.enabled.mechanisms={",".join(SaslListener.MECHANISMS)}
listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required {plain_users};
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
"""


def _upsert_scram_users(bootstrap: str, users: Mapping[str, str], timeout: float) -> None:
    """Create the SCRAM-SHA-512 credential of every user (a new password replaces the old one),
    through the PLAINTEXT listener, and wait until the broker knows them all."""
    from confluent_kafka.admin import (
        ScramCredentialInfo,
        ScramMechanism,
        UserScramCredentialUpsertion,
    )

    if not users:
        return
    admin = kafka_io._admin(bootstrap)
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096)
    futures = admin.alter_user_scram_credentials(
        [UserScramCredentialUpsertion(name, info, password.encode()) for name, password in users.items()],
        request_timeout=timeout,
    )
    kafka_io._wait(futures, timeout, "create SCRAM credentials")

    def known() -> bool:
        try:
            described = admin.describe_user_scram_credentials(list(users), request_timeout=5)
            return all(future.result(timeout=5) is not None for future in described.values())
        except Exception:  # noqa: BLE001 - not there yet
            return False

    if not process.wait_until(known, timeout, interval=0.2):
        raise RuntimeError(f"kafka at {bootstrap}: SCRAM users {sorted(users)} not visible in {timeout:.0f}s")


def _forget(base: Path, pid: int | None) -> None:
    process.forget(pid)
    _pid_file(base).unlink(missing_ok=True)


def _cluster_id() -> str:
    """A fresh cluster id, as `kafka-storage random-uuid` makes it (Uuid.randomUuid()).

    Base64url of 16 random bytes without padding; Kafka never hands out ids starting with
    "-" (they would read as command-line options), so neither do we.
    """
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def _server_properties(base: Path, port: int, controller_port: int, sasl: SaslListener | None = None) -> str:
    listeners = f"PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{controller_port}"
    protocols = "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
    if sasl is not None:
        listeners += f",SASL_PLAINTEXT://{HOST}:{sasl.port}"
        protocols += ",SASL_PLAINTEXT:SASL_PLAINTEXT"
    return f"""\
# Written by lakehouse_dev.services.kafka on every start; edits are overwritten.
# Single-node KRaft: this JVM is the broker and the only controller (node {NODE_ID}).
process.roles=broker,controller
node.id={NODE_ID}
controller.quorum.bootstrap.servers={HOST}:{controller_port}
listeners={listeners}
advertised.listeners={listeners}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map={protocols}
log.dirs={_data_dir(base)}

# One node: every replication factor and min ISR is 1.
num.partitions=2
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
auto.create.topics.enable=false
group.initial.rebalance.delay.ms=0
# After a SIGKILL the restarted broker cannot register until the dead one's session expires
# (default 9 s; heartbeats every 2 s): shorter, so fault tests restart faster.
broker.heartbeat.interval.ms=1000
broker.session.timeout.ms=6000

# A small machine and small local data.
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.segment.bytes=67108864
log.retention.hours=168
message.max.bytes={MESSAGE_MAX_BYTES}
replica.fetch.max.bytes={MESSAGE_MAX_BYTES}
""" + (_sasl_properties(sasl) if sasl is not None else "")


def _rotate_log(log: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        if log.stat().st_size > MAX_LOG_BYTES:
            log.replace(log.with_name(log.name + ".1"))


def _launch(base: Path, port: int, controller_port: int, deadline: float, sasl: SaslListener | None = None) -> int:
    """Check the ports, write the config, format the storage if new, start the JVM; its pid."""
    process.refuse_taken(f"kafka of {base}", HOST, (port, controller_port, *([sasl.port] if sasl else [])), _log(base))
    if port == controller_port:
        raise RuntimeError(f"client and controller ports must differ (both {port})")
    if sasl is not None and sasl.port in (port, controller_port):
        raise RuntimeError(f"the SASL port {sasl.port} must differ from the client and controller ports")
    lib = ensure_jars()
    java = _java()
    props = _properties(base)
    props.write_text(_server_properties(base, port, controller_port, sasl))
    if sasl is not None:
        props.chmod(0o600)  # it holds the PLAIN users' passwords
    log4j = base / "log4j2.properties"
    log4j.write_text(BROKER_LOG4J)
    log = _log(base)
    _rotate_log(log)
    classpath = f"{lib}/*"

    data = _data_dir(base)
    if not (data / "meta.properties").is_file():
        if data.exists() and any(data.iterdir()):
            raise RuntimeError(f"{data} is not empty but holds no formatted Kafka storage; remove it")
        try:
            proc = subprocess.run(
                [java, *ADMIN_JVM_OPTS, f"-Dlog4j2.configurationFile={cache_dir() / 'tools-log4j2.properties'}",
                 "-cp", classpath, "kafka.tools.StorageTool", "format", "-t", _cluster_id(),
                 "-c", str(props), "--standalone"],
                capture_output=True, text=True, check=False, cwd=base,
                timeout=max(deadline - time.monotonic(), 5),
            )
        except subprocess.TimeoutExpired:
            raise RuntimeError("kafka-storage format did not finish in time") from None
        if proc.returncode != 0:
            raise RuntimeError(
                f"kafka-storage format failed for {data} (exit {proc.returncode}):\n"
                f"{(proc.stdout + proc.stderr).strip()}"
            )

    _settle_broker_archive(base, keep=False)  # left over from a broker that died unseen
    cds, pending = _cds_options(lib, "broker", quiet=False)
    if pending is not None:
        _pending_archive(base).write_text(str(pending))
    child = process.launch(
        [java, f"-Xmx{BROKER_HEAP}", *BROKER_JVM_OPTS, *cds,
         f"-Dlog4j2.configurationFile={log4j}", "-cp", classpath, "kafka.Kafka", str(props)],
        cwd=base, env=os.environ, log=log,
    )
    process.write_pid(_pid_file(base), child.pid)
    return child.pid


def _archive(lib: Path, kind: str) -> Path:
    """The class-data-sharing archive of `kind` ("broker" or "tools") for this lib and JVM.

    It lives in the lib dir, so a re-fetched lib drops it; its name carries the java binary's
    identity, so a JDK upgrade makes a new one.
    """
    java = Path(_java()).resolve()
    key = hashlib.sha256(f"{java}:{java.stat().st_mtime_ns}".encode()).hexdigest()[:12]
    return lib / f"{kind}-{key}.jsa"


def _cds_options(lib: Path, kind: str, quiet: bool) -> tuple[list[str], Path | None]:
    """JVM options that load the archive of `kind`, or record one at exit if there is none.

    AppCDS (JDK 13+ dynamic archives) maps the classes loaded by an earlier run instead of
    parsing ~45 jars again: a tool starts in ~1 s instead of ~2 s, the broker ~3 s sooner.
    When recording, the second value is the file the JVM writes at exit (see _settle_archive).
    `quiet` turns off the JVM's own log lines, which would otherwise mix into a tool's stdout
    (e.g. when the archive does not match the JVM any more: it is then just not used).
    """
    opts = ["-Xlog:disable", "-Xlog:all=error:stderr"] if quiet else []
    archive = _archive(lib, kind)
    if archive.is_file():
        return [*opts, f"-XX:SharedArchiveFile={archive}"], None
    pending = lib / f".{kind}-{uuid.uuid4().hex}.jsa.tmp"
    return [*opts, f"-XX:ArchiveClassesAtExit={pending}"], pending


def _settle_archive(pending: Path | None, lib: Path, kind: str, keep: bool) -> None:
    """Install an archive recorded by a JVM that exited normally (`keep`), else delete it."""
    if pending is None:
        return
    with contextlib.suppress(OSError):
        if keep and pending.stat().st_size > 0:
            pending.replace(_archive(lib, kind))
        else:
            pending.unlink()


def _pending_archive(base: Path) -> Path:
    return base / "kafka.cds-pending"


def _settle_broker_archive(base: Path, keep: bool) -> None:
    """Deal with the archive the stopped broker of `base` was told to record, if any."""
    marker = _pending_archive(base)
    with contextlib.suppress(OSError):
        pending = Path(marker.read_text().strip())
        _settle_archive(pending, pending.parent, "broker", keep)
    marker.unlink(missing_ok=True)


def _wait_ready(base: Path, pid: int, port: int, deadline: float) -> None:
    process.wait_started(
        f"kafka of {base} on {HOST}:{port}", pid, lambda: kafka_io.answers(f"{HOST}:{port}"),
        deadline, log=_log(base), pid_file=_pid_file(base),
    )


def _tool(
    name: str,
    args: list[str],
    *,
    timeout: float,
    input: str | None = None,
    jvm_opts: Iterable[str] = ADMIN_JVM_OPTS,
) -> str:
    """Run Kafka tool `org.apache.kafka.tools.<name>`; its stdout, or RuntimeError."""
    lib = ensure_jars()
    cds, pending = _cds_options(lib, "tools", quiet=True)
    cmd = [_java(), *jvm_opts, *cds,
           f"-Dlog4j2.configurationFile={cache_dir() / 'tools-log4j2.properties'}",
           "-cp", f"{lib}/*", _TOOLS + name, *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, input=input,
                              stdin=None if input is not None else subprocess.DEVNULL,
                              timeout=max(timeout, 1))
    except subprocess.TimeoutExpired:
        _settle_archive(pending, lib, "tools", keep=False)
        raise RuntimeError(f"kafka {name} {' '.join(args)} did not finish within {timeout:.0f}s") from None
    _settle_archive(pending, lib, "tools", keep=proc.returncode == 0)
    if proc.returncode != 0:
        raise RuntimeError(
            f"kafka {name} {' '.join(args)} failed (exit {proc.returncode}):\n"
            f"{(proc.stderr.strip() or proc.stdout.strip())[-4000:]}"
        )
    return proc.stdout


# --- CLI ---------------------------------------------------------------------------------


def _up(base: Path, args: argparse.Namespace) -> str:
    server = start(base, port=args.port, controller_port=args.controller_port, topics=DEFAULT_TOPICS, timeout=args.timeout)
    topics = ", ".join(f"{t}({n})" for t, n in DEFAULT_TOPICS.items())
    return f"{server.bootstrap} pid {server.pid} topics {topics}"


def _where(base: Path) -> str | None:
    server = running_server(base)
    return None if server is None else f"{server.bootstrap} pid {server.pid}"


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="client port (up only)")
    parser.add_argument("--controller-port", type=int, default=DEFAULT_CONTROLLER_PORT, help="KRaft controller port (up only)")


CLI = process.ServiceCli(
    SERVICE,
    "Run the local Kafka broker (KRaft combined mode) used by tests and benchmarks.",
    90,
    _arguments,
    _up,
    _where,
    stop,
    killable=True,
)


main = CLI.main


if __name__ == "__main__":
    raise SystemExit(main())
