"""The DAGs run for real: `airflow dags test` (Airflow's own venv, SQLite metadata) submits
every task with spark-submit to a Spark standalone cluster (a master and 2 workers),
which writes Delta tables on MinIO and exports to PostgreSQL, all started here on
loopback (free ports, own folders). The executors get the packed Python environment of
`make setup` (profile `cluster`), nothing from the test's venv.

Checked: gold equals the plain-Python oracle (tests/reference_gold.py) and PostgreSQL
holds it; the next day's run and a re-run of a day change nothing; a failing quality gate
fails its task and keeps export from running; the stream catch-up DAG lands Kafka
records in bronze and silver exactly once.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from lakehouse.config import load_config, project_root
from lakehouse.executor_env import archive_path
from lakehouse.io import delta
from lakehouse.io import kafka as kafka_io
from lakehouse.jobs.batch import run_batch
from lakehouse.services import kafka, minio, postgres
from lakehouse.services import spark as spark_cluster
from lakehouse.session import configure_s3a
from tests.conftest import SAMPLES, free_ports
from tests.reference_gold import reference_access_logs, reference_product_views

pytestmark = pytest.mark.services

ROOT = project_root()
AIRFLOW = ROOT / ".venv-airflow" / "bin" / "airflow"
BUCKET = "dagruns"
PASSWORD = "dag-test"
GOLD_COLUMNS = {
    "endpoint_daily": "report_date, endpoint, requests, unique_ips, status_4xx, status_5xx, bytes",
    "top_ips_daily": "report_date, ip, requests",
    "product_views_daily": "report_date, product_id, view_count, unique_visitors",
    "country_views_daily": "report_date, country, view_count, unique_visitors",
    "referrer_views_daily": "report_date, referrer_host, view_count, unique_visitors",
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """PostgreSQL, MinIO, Kafka, a Spark master with 2 workers, and an Airflow home."""
    if not AIRFLOW.exists():
        pytest.fail(f"{AIRFLOW} not found: run `make airflow-setup`")
    if not archive_path().is_file():
        pytest.fail(f"{archive_path()} not found: run `make setup`")
    base = ROOT / ".data" / f"test-dags-{uuid.uuid4().hex[:8]}"
    pg_port, s3_port, s3_console, kafka_port, kafka_ctrl, master_port, master_ui = free_ports(7)
    pg = postgres.start(base / "postgres", port=pg_port, password=PASSWORD)
    store = minio.start(base / "minio", s3_port, s3_console, buckets=(BUCKET,))
    broker = kafka.start(base / "kafka", port=kafka_port, controller_port=kafka_ctrl)
    cluster = spark_cluster.start(base / "spark", port=master_port, webui_port=master_ui, worker_webui_ports=False)
    assert cluster.alive_workers() == 2
    # Idempotent: starting it again finds the same daemons.
    assert spark_cluster.start(base / "spark", port=master_port, webui_port=master_ui, worker_webui_ports=False).pids == cluster.pids
    home = tmp_path_factory.mktemp("airflow-home")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "LAKEHOUSE_"))}
    env.pop("PYTHONPATH", None)
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__LOGGING__LOGGING_LEVEL="WARNING",
        AIRFLOW_CONN_SPARK_DEFAULT=json.dumps({"conn_type": "spark", "host": "spark://127.0.0.1", "port": master_port}),
        LAKEHOUSE_HOME=str(ROOT),
        LAKEHOUSE_PROFILE="cluster",
        LAKEHOUSE_TASK_RETRIES="0",
        LAKEHOUSE_QUICK_JIT="1",
        LAKEHOUSE_S3__ENDPOINT=store.endpoint,
        LAKEHOUSE_S3_ACCESS_KEY=store.access_key,
        LAKEHOUSE_S3_SECRET_KEY=store.secret_key,
        LAKEHOUSE_EXPORT__USER=pg.user,
        LAKEHOUSE_EXPORT_PASSWORD=PASSWORD,
        LAKEHOUSE_KAFKA__BOOTSTRAP_SERVERS=broker.bootstrap,
    )
    migrate = subprocess.run([str(AIRFLOW), "db", "migrate"], env=env, capture_output=True, text=True, timeout=300)
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    yield {"pg": pg, "store": store, "broker": broker, "env": env, "base": base}
    spark_cluster.stop(base / "spark")
    kafka.stop(base / "kafka", kill=True)
    minio.stop(base / "minio", kill=True)
    postgres.stop(base / "postgres")
    shutil.rmtree(base, ignore_errors=True)


class Schema:
    """One test's PostgreSQL schema: the export's tables land there (JDBC `currentSchema`)."""

    def __init__(self, pg, name: str):
        self.pg, self.name = pg, name
        pg.psql(f"CREATE SCHEMA {name}")
        self.jdbc_url = f"{pg.jdbc_url}?currentSchema={name}"

    def psql(self, sql: str) -> str:
        return self.pg.psql(f"SET search_path TO {self.name};\n{sql}").removeprefix("SET\n")


def setup_run(stack, spark, name: str) -> tuple[dict, object, Schema]:
    """Environment, config and PostgreSQL schema of one test: its own warehouse and tables."""
    pg = Schema(stack["pg"], name)
    env = dict(stack["env"], LAKEHOUSE_WAREHOUSE=f"s3a://{BUCKET}/{name}", LAKEHOUSE_EXPORT__URL=pg.jdbc_url)
    cfg = load_config(profile="cluster", environ=env)
    configure_s3a(spark, cfg, bucket=BUCKET)
    return env, cfg, pg


def _json(stdout: str):
    """The JSON document of an `airflow ... -o json` answer (its last line; warnings come before)."""
    return json.loads(stdout.strip().splitlines()[-1])


def dags_test(env: dict, dag_id: str, day: str, conf: dict | None = None) -> tuple[float, dict[str, str]]:
    """`airflow dags test`: seconds taken and the state of each task."""
    started = time.monotonic()
    cmd = [str(AIRFLOW), "dags", "test", dag_id, day, *(["-c", json.dumps(conf)] if conf else [])]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    seconds = time.monotonic() - started
    states = subprocess.run(
        [str(AIRFLOW), "tasks", "states-for-dag-run", dag_id, f"manual__{day}", "-o", "json"],
        env=env, capture_output=True, text=True, timeout=120,
    )
    if states.returncode != 0:  # the run id format differs: take the newest run of the DAG
        runs = subprocess.run([str(AIRFLOW), "dags", "list-runs", dag_id, "-o", "json"], env=env, capture_output=True, text=True, timeout=120)
        # This day's runs (any of its dates is the day); the newest by run id (manual__<time>).
        # Not by start_date: `dags test` sets it to the logical date, so a later day would win.
        ours = [r for r in _json(runs.stdout) if any(str(v).startswith(day) for v in r.values())]
        run_id = max(ours, key=lambda r: r["run_id"])["run_id"]
        states = subprocess.run([str(AIRFLOW), "tasks", "states-for-dag-run", dag_id, run_id, "-o", "json"],
                                env=env, capture_output=True, text=True, timeout=120)
    tasks = {t["task_id"]: t["state"] for t in _json(states.stdout)}
    print(f"{dag_id} {day}: {seconds:.0f}s {tasks}")
    return seconds, tasks | {"_output": proc.stdout[-4000:] + proc.stderr[-4000:]}


def gold_rows(spark, cfg, table: str) -> list[tuple]:
    df = delta.read_table(spark, cfg.table_path("gold", table)).selectExpr(*GOLD_COLUMNS[table].split(", "))
    return sorted(tuple(str(v) for v in r) for r in df.collect())


def oracle_rows(oracle: dict, table: str) -> list[tuple]:
    return sorted(tuple(str(r[c]) for c in GOLD_COLUMNS[table].split(", ")) for r in oracle[table])


def postgres_rows(pg, table: str) -> list[tuple]:
    out = pg.psql(f"SELECT {GOLD_COLUMNS[table]} FROM {table}")
    return sorted(tuple(line.split("|")) for line in out.splitlines() if line)


def test_daily_dag_on_the_cluster_matches_the_oracle_and_reruns_change_nothing(spark, stack, tmp_path):
    env, cfg, pg = setup_run(stack, spark, "daily")
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    shutil.copy(SAMPLES / "access.log", incoming / "access.log")
    shutil.copy(SAMPLES / "product_views.jsonl", incoming / "product_views.jsonl")
    conf = {"incoming": str(incoming)}

    seconds, states = dags_test(env, "lakehouse_daily", "2024-03-02", conf)
    assert {k: v for k, v in states.items() if k != "_output"} == dict.fromkeys(
        ["ingest_access_logs", "ingest_product_views", "silver_access_logs", "silver_product_views", "gold_daily",
         "quality_gate", "export_gold"], "success"), states["_output"]

    access = reference_access_logs([SAMPLES / "access.log"], "combined")
    views = reference_product_views([SAMPLES / "product_views.jsonl"])
    expected = {t: oracle_rows(access if t in ("endpoint_daily", "top_ips_daily") else views, t) for t in GOLD_COLUMNS}
    for table in GOLD_COLUMNS:
        assert gold_rows(spark, cfg, table) == expected[table], table
        assert postgres_rows(pg, table) == expected[table], table
    assert pg.psql("SELECT sum(requests) FROM endpoint_daily").strip() == str(access["counts"]["silver"])

    # The next day (same files offered again: already in) and a re-run of the first day.
    for day in ("2024-03-03", "2024-03-02"):
        _, states = dags_test(env, "lakehouse_daily", day, conf)
        assert set(states.values()) - {states["_output"]} == {"success"}, states["_output"]
        for table in GOLD_COLUMNS:
            assert gold_rows(spark, cfg, table) == expected[table], (day, table)
            assert postgres_rows(pg, table) == expected[table], (day, table)
    bronze = delta.read_table(spark, cfg.table_path("bronze", "access_logs")).count()
    assert bronze == 3000


def test_failing_quality_gate_fails_its_task_and_stops_export(spark, stack, tmp_path):
    env, cfg, pg = setup_run(stack, spark, "gate")
    log = tmp_path / "in" / "a.log"
    log.parent.mkdir()
    log.write_text(
        '203.0.113.9 - - [01/Mar/2024:10:00:00 +0000] "GET /a HTTP/1.1" 200 5 "-" "curl/8"\n'
        '203.0.113.9 - - [01/Mar/2024:10:00:01 +0000] "GET /b HTTP/1.1" 200 5 "-" "curl/8"\n'
    )
    # A warehouse built by the test's own (local) Spark, then a silver row lost behind the
    # pipeline's back: bronze no longer reconciles with silver.
    run_batch(spark, replace(cfg, spark_master="local[2]"), str(log), None, export=False)
    spark.sql(f"DELETE FROM delta.`{cfg.table_path('silver', 'access_logs')}` WHERE path = '/b'")
    empty = tmp_path / "nothing-new"
    for feed in ("access", "views"):
        (empty / feed).mkdir(parents=True)

    _, states = dags_test(env, "lakehouse_daily", "2024-03-01",
                          {"incoming": str(empty), "access_logs": "access", "product_views": "views"})
    assert states["ingest_access_logs"] == "success", states["_output"]
    assert states["gold_daily"] == "success", states["_output"]
    assert states["quality_gate"] == "failed", states["_output"]
    assert states["export_gold"] in ("upstream_failed", None), states["_output"]
    assert pg.psql("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'gate' AND table_name = 'endpoint_daily'").strip() == "0"
    results = delta.read_table(spark, cfg.table_path("_meta", "quality_results")).where("rule = 'access_logs_reconcile'")
    assert [(r.rows_checked, r.rows_failing, r.passed) for r in results.collect()] == [(2, 1, False)]


def test_stream_catchup_dag_lands_kafka_records_once(spark, stack):
    env, cfg, _pg = setup_run(stack, spark, "catchup")
    topics = {"access_logs": f"al_{uuid.uuid4().hex[:6]}", "product_views": f"pv_{uuid.uuid4().hex[:6]}"}
    env = dict(env, LAKEHOUSE_KAFKA__TOPICS__ACCESS_LOGS=topics["access_logs"],
               LAKEHOUSE_KAFKA__TOPICS__PRODUCT_VIEWS=topics["product_views"])
    bootstrap = stack["broker"].bootstrap
    kafka.create_topics(bootstrap, {t: 2 for t in topics.values()})
    for dataset, name in (("access_logs", "access.log"), ("product_views", "product_views.jsonl")):
        lines = (SAMPLES / name).read_bytes().split(b"\n")[:400]  # bytes: the samples hold non-UTF-8 lines
        stats = kafka_io.send_paced(bootstrap, topics[dataset], ((None, line) for line in lines), None)
        assert stats.acknowledged == 400

    _, states = dags_test(env, "lakehouse_stream_catchup", "2024-03-02")
    assert set(states.values()) - {states["_output"]} == {"success"}, states["_output"]

    access = reference_access_logs([_first_lines(SAMPLES / "access.log", 400)], "combined")
    views = reference_product_views([_first_lines(SAMPLES / "product_views.jsonl", 400)])
    count = {layer: {d: delta.read_table(spark, cfg.table_path(layer, d)).count() for d in topics}
             for layer in ("bronze", "silver")}
    assert count["bronze"] == {"access_logs": 400, "product_views": 400}
    assert count["silver"] == {"access_logs": access["counts"]["silver"], "product_views": views["counts"]["silver"]}


def _first_lines(path: Path, n: int) -> Path:
    out = Path(os.environ.get("TMPDIR", "/tmp")) / f"first-{n}-{uuid.uuid4().hex[:6]}-{path.name}"
    out.write_bytes(b"\n".join(path.read_bytes().split(b"\n")[:n]) + b"\n")
    return out
