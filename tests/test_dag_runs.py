"""The DAGs run for real: `airflow dags test` (Airflow's own venv, SQLite metadata) submits
each task with spark-submit; the jobs write Delta tables on MinIO and export to PostgreSQL,
the run's servers (tests/stack.py).

Each costly proof once:
- the daily DAG's whole run on a Spark standalone cluster (a master and 2 workers; profile
  `cluster`: the executors get the packed Python environment of `make setup`, nothing from
  the test's venv): gold equals the plain-Python oracle and PostgreSQL holds it;
- a re-run of that day whose writing ends (ingest, export) change nothing;
- a failing quality gate that keeps export from running (the tasks before it marked done);
- the stream catch-up DAG landing Kafka records in bronze and silver exactly once.
The last three are about the DAGs' wiring and arguments, not the cluster: they submit to
`local[2]` (profile `services`), about half the cost of a cluster application each.
Day-after and re-run behaviour of the jobs themselves is proven by the batch tests.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from lakehouse.config import load_config, project_root
from lakehouse.executor_env import archive_path
from lakehouse.feeds.access_logs import silver as silver_access_logs
from lakehouse.io import delta
from lakehouse.io import kafka as kafka_io
from lakehouse.jobs import ingest_files
from lakehouse.jobs.runtime import JobRun
from lakehouse.session import configure_s3a
from lakehouse_dev.services import kafka
from tests.conftest import SAMPLES
from tests.reference_gold import reference_access_logs, reference_product_views
from tests.stack import BUCKET

pytestmark = [pytest.mark.services, pytest.mark.airflow]

ROOT = project_root()
AIRFLOW = ROOT / ".venv-airflow" / "bin" / "airflow"
GOLD_COLUMNS = {
    "endpoint_daily": "report_date, endpoint, requests, unique_ips, status_4xx, status_5xx, bytes",
    "top_ips_daily": "report_date, ip, requests",
    "product_views_daily": "report_date, product_id, view_count, unique_visitors",
    "country_views_daily": "report_date, country, view_count, unique_visitors",
    "referrer_views_daily": "report_date, referrer_host, view_count, unique_visitors",
}
DAILY_TASKS = ["ingest_access_logs", "ingest_product_views", "silver_access_logs", "silver_product_views",
               "gold_daily", "quality_gate", "export_gold"]


@pytest.fixture(scope="module")
def airflow(stack, tmp_path_factory):
    """The environment of an Airflow home (migrated SQLite) whose jobs run on `local[2]`
    (`on_cluster` points them at the run's cluster)."""
    if not AIRFLOW.exists():
        pytest.fail(f"{AIRFLOW} not found: run `make airflow-setup`")
    home = tmp_path_factory.mktemp("airflow-home")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "LAKEHOUSE_"))}
    env.pop("PYTHONPATH", None)
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__LOGGING__LOGGING_LEVEL="WARNING",
        AIRFLOW_CONN_SPARK_DEFAULT=json.dumps({"conn_type": "spark", "host": "local[2]"}),
        LAKEHOUSE_HOME=str(ROOT),
        LAKEHOUSE_PROFILE="services",
        LAKEHOUSE_TASK_RETRIES="0",
        LAKEHOUSE_QUICK_JIT="1",
        LAKEHOUSE_S3__ENDPOINT=stack.minio.endpoint,
        LAKEHOUSE_S3_ACCESS_KEY=stack.minio.access_key,
        LAKEHOUSE_S3_SECRET_KEY=stack.minio.secret_key,
        LAKEHOUSE_KAFKA__BOOTSTRAP_SERVERS=stack.kafka.bootstrap,
    )
    migrate = subprocess.run([str(AIRFLOW), "db", "migrate"], env=env, capture_output=True, text=True, timeout=300)
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    return env


def on_cluster(env: dict, stack) -> dict:
    """`env` with the jobs submitted to the run's Spark cluster in the `cluster` profile."""
    if not archive_path().is_file():
        pytest.fail(f"{archive_path()} not found: run `make setup`")
    cluster = stack.spark_cluster
    assert cluster.alive_workers() == 2
    host, port = cluster.master_url.rsplit(":", 1)
    # One executor per application (a worker's single core): on 2 cores a second executor
    # JVM only competes with the first for the CPU.
    return dict(env, LAKEHOUSE_PROFILE="cluster", LAKEHOUSE_SPARK_CONF=json.dumps({"spark.cores.max": "1"}),
                AIRFLOW_CONN_SPARK_DEFAULT=json.dumps({"conn_type": "spark", "host": host, "port": int(port)}))


def setup_run(stack, airflow, spark, name: str):
    """Environment, config and PostgreSQL database of one test: its own warehouse and tables."""
    pg = stack.database(name)
    env = dict(airflow, LAKEHOUSE_WAREHOUSE=f"s3a://{BUCKET}/dags-{name}", LAKEHOUSE_EXPORT__URL=pg.jdbc_url,
               LAKEHOUSE_EXPORT__USER=pg.user, LAKEHOUSE_EXPORT_PASSWORD=pg.password)
    cfg = load_config(profile="services", environ=env)
    configure_s3a(spark, cfg, bucket=BUCKET)
    return env, cfg, pg


def _json(stdout: str):
    """The JSON document of an `airflow ... -o json` answer (its last line; warnings come before)."""
    return json.loads(stdout.strip().splitlines()[-1])


def dags_test(env: dict, dag_id: str, day: str, conf: dict | None = None,
              mark_success: str | None = None) -> tuple[float, dict[str, str]]:
    """`airflow dags test` (tasks matching `mark_success` marked done, not run): seconds
    taken and the state of each task."""
    started = time.monotonic()
    cmd = [str(AIRFLOW), "dags", "test", dag_id, day, *(["-c", json.dumps(conf)] if conf else []),
           *(["--mark-success-pattern", mark_success] if mark_success else [])]
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


def ran(states: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in states.items() if k != "_output"}


def test_daily_dag_on_the_cluster_matches_the_oracle_and_a_rerun_changes_nothing(spark, stack, airflow, tmp_path):
    env, cfg, pg = setup_run(stack, airflow, spark, "daily")
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    env = dict(env, LAKEHOUSE_INCOMING=str(incoming))  # the folder the ingest tasks may read
    shutil.copy(SAMPLES / "access.log", incoming / "access.log")
    shutil.copy(SAMPLES / "product_views.jsonl", incoming / "product_views.jsonl")
    conf = {"incoming": str(incoming)}

    _, states = dags_test(on_cluster(env, stack), "lakehouse_daily", "2024-03-02", conf)
    assert ran(states) == dict.fromkeys(DAILY_TASKS, "success"), states["_output"]

    access = reference_access_logs([SAMPLES / "access.log"], "combined")
    views = reference_product_views([SAMPLES / "product_views.jsonl"])
    expected = {t: oracle_rows(access if t in ("endpoint_daily", "top_ips_daily") else views, t) for t in GOLD_COLUMNS}
    for table in GOLD_COLUMNS:
        assert gold_rows(spark, cfg, table) == expected[table], table
        assert postgres_rows(pg, table) == expected[table], table
    assert pg.psql("SELECT sum(requests) FROM endpoint_daily").strip() == str(access["counts"]["silver"])

    # A re-run of the day through the DAG: its ends that write, ingest (the same file offered
    # again) and export, run for real; what lies between is the batch tests' to prove.
    bronze_version = delta.table_version(spark, cfg.table_path("bronze", "access_logs"))
    _, states = dags_test(env, "lakehouse_daily", "2024-03-02", conf,
                          mark_success="ingest_product_views|silver_.*|gold_daily|quality_gate")
    assert ran(states) == dict.fromkeys(DAILY_TASKS, "success"), states["_output"]
    assert delta.table_version(spark, cfg.table_path("bronze", "access_logs")) == bronze_version
    assert delta.read_table(spark, cfg.table_path("bronze", "access_logs")).count() == 3000
    for table in GOLD_COLUMNS:
        assert postgres_rows(pg, table) == expected[table], table


def test_failing_quality_gate_fails_its_task_and_stops_export(spark, stack, airflow, tmp_path):
    env, _cfg, pg = setup_run(stack, airflow, spark, "gate")
    # A warehouse of the test's own (local disk, its own Spark: bronze and silver are all
    # the gate's reconciliation reads), then a silver row lost behind the pipeline's back:
    # bronze no longer reconciles with silver. The DAG marks the tasks before the gate done
    # (nothing new would reach them) and runs the gate and export.
    warehouse = tmp_path / "warehouse"
    env = dict(env, LAKEHOUSE_WAREHOUSE=str(warehouse))
    cfg = load_config(profile="local", environ={}).with_warehouse(str(warehouse))
    log = tmp_path / "in" / "a.log"
    log.parent.mkdir()
    log.write_text(
        '203.0.113.9 - - [01/Mar/2024:10:00:00 +0000] "GET /a HTTP/1.1" 200 5 "-" "curl/8"\n'
        '203.0.113.9 - - [01/Mar/2024:10:00:01 +0000] "GET /b HTTP/1.1" 200 5 "-" "curl/8"\n'
    )
    ingest_files.ingest(spark, cfg, "access_logs", str(log), JobRun("ingest"))
    silver_access_logs.run(spark, cfg, JobRun("silver"))
    spark.sql(f"DELETE FROM delta.`{cfg.table_path('silver', 'access_logs')}` WHERE path = '/b'")

    _, states = dags_test(env, "lakehouse_daily", "2024-03-01", mark_success="ingest_.*|silver_.*|gold_daily")
    assert states["quality_gate"] == "failed", states["_output"]
    assert states["export_gold"] in ("upstream_failed", None), states["_output"]
    assert pg.psql("SELECT count(*) FROM information_schema.tables WHERE table_name = 'endpoint_daily'").strip() == "0"
    results = delta.read_table(spark, cfg.table_path("_meta", "quality_results")).where("rule = 'access_logs_reconcile'")
    assert [(r.rows_checked, r.rows_failing, r.passed) for r in results.collect()] == [(2, 1, False)]


def test_stream_catchup_dag_lands_kafka_records_once(spark, stack, airflow):
    env, cfg, _pg = setup_run(stack, airflow, spark, "catchup")
    topics = {"access_logs": f"al_{uuid.uuid4().hex[:6]}", "product_views": f"pv_{uuid.uuid4().hex[:6]}"}
    env = dict(env, LAKEHOUSE_KAFKA__TOPICS__ACCESS_LOGS=topics["access_logs"],
               LAKEHOUSE_KAFKA__TOPICS__PRODUCT_VIEWS=topics["product_views"])
    bootstrap = stack.kafka.bootstrap
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


def test_in_the_services_profile_the_collector_and_the_10_minute_dag_meet_on_kafka(spark, stack, airflow):
    """`ip_events.sink` (auto: kafka in this profile) decides where the collector writes and
    where the 10-minute DAG's bronze task reads: what it accepts reaches silver, and
    `ip_geolocation` in PostgreSQL in the same run."""
    import httpx

    from lakehouse.api.app import create_app
    from lakehouse.io.ip_sink import sink_from
    from tests.api.conftest import running

    env, cfg, pg = setup_run(stack, airflow, spark, "collector")
    topic = f"collector_{uuid.uuid4().hex[:6]}"
    env = dict(env, LAKEHOUSE_KAFKA__TOPICS__IP_EVENTS=topic)
    cfg = load_config(profile="services", environ=env)
    assert cfg.ip_events.sink == "kafka"
    kafka.create_topics(stack.kafka.bootstrap, {topic: 2})
    with running(create_app(cfg, sink=sink_from(cfg))) as url, httpx.Client(base_url=url, timeout=30) as http:
        answer = http.post("/ingest-ips", json={"ips": ["81.2.69.160", "89.160.20.112", "2001:db8::1"]})
        assert answer.status_code == 202, answer.text

    _, states = dags_test(env, "lakehouse_ip_events_every_10_min", "2024-03-02")
    tasks = ("bronze_ip_events", "silver_ip_events", "gold_ip_events", "export_current")
    assert ran(states) == dict.fromkeys(tasks, "success"), states["_output"]
    silver = delta.read_table(spark, cfg.table_path("silver", "ip_events")).select("ip").collect()
    sent = ["2001:db8::1", "81.2.69.160", "89.160.20.112"]
    assert sorted(r.ip for r in silver) == sent
    located = delta.read_table(spark, cfg.table_path("gold", "ip_geolocation")).select("ip", "country").collect()
    assert sorted(r.ip for r in located) == sent
    assert pg.psql("SELECT ip || '|' || coalesce(country, '') FROM ip_geolocation ORDER BY ip").split() == sorted(
        f"{r.ip}|{r.country or ''}" for r in located
    )
