"""The DAGs run for real.

One DAG through Airflow itself: `airflow dags test` (Airflow's own venv, SQLite metadata)
runs lakehouse_daily, each task a spark-submit to a Spark standalone cluster (a master and
2 workers; profile `cluster`: the executors get the packed Python environment of `make
setup`, nothing from the test's venv); the jobs write Delta tables on MinIO and export to
PostgreSQL (the run's servers, tests/stack.py):
- the access logs' silver on the cluster through Airflow (its executors classify user agents
  in Python from the packed environment), the other tasks as their parsed jobs in-process
  (the files ingested beforehand): gold equals the plain-Python oracle and PostgreSQL holds it;
- a re-run of that day after a silver row was lost behind the pipeline's back: the ingest
  (the same file offered again) changes nothing, the quality gate (through Airflow, on
  `local[2]`) fails its task, and the export does not run (PostgreSQL keeps the first run's rows).

The other DAGs' runs are about their wiring and arguments, which the same `spark_job`
submits alike: each task of the DAG as Airflow parses it runs its job's `main()` with the
task's own arguments, in dependency order, in the test's Spark session (a spark-submit per
task adds 20-60 s of a cold JVM each and proves nothing the daily run does not):
- the stream catch-up DAG lands Kafka records in bronze and silver exactly once;
- the IP sightings' 10-minute DAG takes what the collector sent to Kafka to
  `ip_geolocation` in PostgreSQL.
Day-after and re-run behaviour of the jobs themselves is proven by the batch tests.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import time
import uuid
from contextlib import closing
from importlib import import_module
from pathlib import Path

import pytest

from lakehouse.config import load_config, project_root
from lakehouse.executor_env import archive_path
from lakehouse.io import delta
from lakehouse.io import kafka as kafka_io
from lakehouse.jobs import ingest_files
from lakehouse.jobs.runtime import JobRun
from lakehouse.session import configure_s3a
from lakehouse_dev.services import kafka
from tests.conftest import SAMPLES
from tests.dag_probe import parse_dags
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
def airflow_env(stack, tmp_path_factory):
    """The environment of an Airflow home whose jobs run on `local[2]` (`on_cluster` points
    them at the run's cluster), against the run's servers."""
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
    return env


@pytest.fixture(scope="module")
def airflow(airflow_env):
    """`airflow_env` with its home's metadata database (SQLite) migrated."""
    migrate = subprocess.run([str(AIRFLOW), "db", "migrate"], env=airflow_env, capture_output=True, text=True, timeout=300)
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    return airflow_env


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


def dags_test(env: dict, dag_id: str, day: str, conf: dict | None = None,
              mark_success: str | None = None) -> tuple[float, dict[str, str]]:
    """`airflow dags test` (tasks matching `mark_success` marked done, not run): seconds
    taken and the state of each task of the run, as Airflow recorded them."""
    started = time.monotonic()
    cmd = [str(AIRFLOW), "dags", "test", dag_id, day, *(["-c", json.dumps(conf)] if conf else []),
           *(["--mark-success-pattern", mark_success] if mark_success else [])]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    seconds = time.monotonic() - started
    # From the metadata database (SQLite) itself: each `airflow tasks states-for-dag-run`
    # costs seconds of Airflow start-up. The newest run of the DAG is this one.
    with closing(sqlite3.connect(Path(env["AIRFLOW_HOME"]) / "airflow.db")) as db:
        tasks = dict(db.execute(
            "SELECT task_id, state FROM task_instance WHERE dag_id = ? AND run_id = "
            "(SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1)", (dag_id, dag_id),
        ).fetchall())  # fmt: skip
    print(f"{dag_id} {day}: {seconds:.0f}s {tasks}")
    return seconds, tasks | {"_output": proc.stdout[-4000:] + proc.stderr[-4000:]}


def run_in_process(monkeypatch, env: dict, dag_id: str, tmp_path: Path, done: str | None = None,
                   day: str | None = None) -> dict[str, int]:  # fmt: skip
    """Each task of `dag_id` as Airflow parses it with `env`'s settings: its job's `main()`
    with the task's own arguments, in dependency order, in this process's Spark session,
    with the LAKEHOUSE_* settings of `env`. The exit code of each task run; none runs after
    a failure. Tasks whose id matches the regex `done` ran already (not run, not listed);
    `{{ ds }}` in an argument is `day` (the run's logical date), as Airflow renders it."""
    dag = parse_dags(env, tmp_path)["dags"][dag_id]
    for name in [k for k in os.environ if k.startswith("LAKEHOUSE_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        if name.startswith("LAKEHOUSE_"):
            monkeypatch.setenv(name, value)
    tasks, codes = dag["tasks"], {}
    finished = {t for t in tasks if done and re.fullmatch(done, t)}
    while len(codes) + len(finished) < len(tasks):
        ready = sorted(t for t, spec in tasks.items()
                       if t not in codes and t not in finished and set(spec["upstream"]) <= set(codes) | finished)  # fmt: skip
        assert ready, f"{dag_id}: no task is ready: {tasks}"
        task, spec = ready[0], tasks[ready[0]]
        application = Path(spec["application"])
        args = [a.replace("{{ ds }}", day) if day else a for a in spec["application_args"]]
        assert application.parent == ROOT / "spark" / "lakehouse" / "jobs", spec
        assert not any("{{" in a for a in args), f"{task}: templated arguments are not rendered here: {args}"
        started = time.monotonic()
        codes[task] = import_module(f"lakehouse.jobs.{application.stem}").main(args)
        print(f"{dag_id}.{task}: {application.stem} {' '.join(args)}: code {codes[task]} in {time.monotonic() - started:.1f}s")
        if codes[task] != 0:
            break
    return codes


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


def test_daily_dag_on_the_cluster_matches_the_oracle_and_its_rerun_after_a_lost_row_stops_at_the_gate(
    spark, stack, airflow, monkeypatch, tmp_path
):
    env, cfg, pg = setup_run(stack, airflow, spark, "daily")
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    env = dict(env, LAKEHOUSE_INCOMING=str(incoming))  # the folder the ingest tasks may read
    shutil.copy(SAMPLES / "access.log", incoming / "access.log")
    shutil.copy(SAMPLES / "product_views.jsonl", incoming / "product_views.jsonl")
    conf = {"incoming": str(incoming)}

    # The ingest tasks' job in-process; the cluster runs the access logs' silver through
    # Airflow (its executors classify user agents in Python from the packed environment: what
    # only the cluster proves; the product views' silver does the same and would prove it
    # twice); then the other silver, gold, the gate and the export run as their parsed tasks'
    # jobs in-process (the driver's work, as every other DAG's test runs them: four cluster
    # applications fewer).
    for dataset, name in (("access_logs", "access.log"), ("product_views", "product_views.jsonl")):
        ingest_files.ingest(spark, cfg, dataset, str(incoming / name), JobRun("ingest"), within=str(incoming))
    in_process = "silver_product_views|gold_daily|quality_gate|export_gold"
    _, states = dags_test(on_cluster(env, stack), "lakehouse_daily", "2024-03-02", conf, mark_success=f"ingest_.*|{in_process}")
    assert ran(states) == dict.fromkeys(DAILY_TASKS, "success"), states["_output"]
    codes = run_in_process(monkeypatch, env, "lakehouse_daily", tmp_path, done="ingest_.*|silver_access_logs", day="2024-03-02")
    assert codes == dict.fromkeys(in_process.split("|"), 0)

    access = reference_access_logs([SAMPLES / "access.log"], "combined")
    views = reference_product_views([SAMPLES / "product_views.jsonl"])
    expected = {t: oracle_rows(access if t in ("endpoint_daily", "top_ips_daily") else views, t) for t in GOLD_COLUMNS}
    for table in GOLD_COLUMNS:
        assert gold_rows(spark, cfg, table) == expected[table], table
        assert postgres_rows(pg, table) == expected[table], table
    assert pg.psql("SELECT sum(requests) FROM endpoint_daily").strip() == str(access["counts"]["silver"])

    # A silver row lost behind the pipeline's back, then a re-run of the day: its ingest (the
    # same file offered again, in-process) changes nothing; the quality gate, through Airflow,
    # finds bronze no longer reconciled with silver and fails its task; the export does not run.
    bronze_version = delta.table_version(spark, cfg.table_path("bronze", "access_logs"))
    silver = cfg.table_path("silver", "access_logs")
    lost = delta.read_table(spark, silver).where("event_date = DATE '2024-03-02'").orderBy("event_id").first()
    spark.sql(f"DELETE FROM delta.`{silver}` WHERE event_id = '{lost.event_id}'")
    ingest_files.ingest(spark, cfg, "access_logs", str(incoming / "access.log"), JobRun("ingest"), within=str(incoming))
    _, states = dags_test(env, "lakehouse_daily", "2024-03-02", conf, mark_success="ingest_.*|silver_.*|gold_daily")
    assert ran(states) == dict.fromkeys(DAILY_TASKS, "success") | {
        "quality_gate": "failed", "export_gold": "upstream_failed"}, states["_output"]
    assert delta.table_version(spark, cfg.table_path("bronze", "access_logs")) == bronze_version
    assert delta.read_table(spark, cfg.table_path("bronze", "access_logs")).count() == 3000
    results = delta.read_table(spark, cfg.table_path("_meta", "quality_results")).where("rule = 'access_logs_reconcile'")
    assert sorted((r.rows_failing, r.passed) for r in results.collect()) == [(0, True), (1, False)]
    for table in GOLD_COLUMNS:
        assert postgres_rows(pg, table) == expected[table], table


def test_stream_catchup_dag_lands_kafka_records_once(spark, stack, airflow_env, monkeypatch, tmp_path):
    env, cfg, _pg = setup_run(stack, airflow_env, spark, "catchup")
    topics = {"access_logs": f"al_{uuid.uuid4().hex[:6]}", "product_views": f"pv_{uuid.uuid4().hex[:6]}"}
    env = dict(env, LAKEHOUSE_KAFKA__TOPICS__ACCESS_LOGS=topics["access_logs"],
               LAKEHOUSE_KAFKA__TOPICS__PRODUCT_VIEWS=topics["product_views"])
    bootstrap = stack.kafka.bootstrap
    kafka.create_topics(bootstrap, {t: 2 for t in topics.values()})
    for dataset, name in (("access_logs", "access.log"), ("product_views", "product_views.jsonl")):
        lines = (SAMPLES / name).read_bytes().split(b"\n")[:400]  # bytes: the samples hold non-UTF-8 lines
        stats = kafka_io.send_paced(bootstrap, topics[dataset], ((None, line) for line in lines), None)
        assert stats.acknowledged == 400

    codes = run_in_process(monkeypatch, env, "lakehouse_stream_catchup", tmp_path)
    assert codes == {"stream_availablenow": 0, "silver_access_logs": 0, "silver_product_views": 0}

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


def test_in_the_services_profile_the_collector_and_the_10_minute_dag_meet_on_kafka(spark, stack, airflow_env, monkeypatch, tmp_path):
    """`ip_events.sink` (auto: kafka in this profile) decides where the collector writes and
    where the 10-minute DAG's bronze task reads: what it accepts reaches silver, and
    `ip_geolocation` in PostgreSQL in the same run."""
    import httpx

    from lakehouse.api.app import create_app
    from lakehouse.io.ip_sink import sink_from
    from tests.api.conftest import running

    env, cfg, pg = setup_run(stack, airflow_env, spark, "collector")
    topic = f"collector_{uuid.uuid4().hex[:6]}"
    env = dict(env, LAKEHOUSE_KAFKA__TOPICS__IP_EVENTS=topic)
    cfg = load_config(profile="services", environ=env)
    assert cfg.ip_events.sink == "kafka"
    kafka.create_topics(stack.kafka.bootstrap, {topic: 2})
    with running(create_app(cfg, sink=sink_from(cfg))) as url, httpx.Client(base_url=url, timeout=30) as http:
        answer = http.post("/ingest-ips", json={"ips": ["81.2.69.160", "89.160.20.112", "2001:db8::1"]})
        assert answer.status_code == 202, answer.text

    codes = run_in_process(monkeypatch, env, "lakehouse_ip_events_every_10_min", tmp_path)
    assert codes == dict.fromkeys(("bronze_ip_events", "silver_ip_events", "gold_ip_events", "export_current"), 0)
    silver = delta.read_table(spark, cfg.table_path("silver", "ip_events")).select("ip").collect()
    sent = ["2001:db8::1", "81.2.69.160", "89.160.20.112"]
    assert sorted(r.ip for r in silver) == sent
    located = delta.read_table(spark, cfg.table_path("gold", "ip_geolocation")).select("ip", "country").collect()
    assert sorted(r.ip for r in located) == sent
    assert pg.psql("SELECT ip || '|' || coalesce(country, '') FROM ip_geolocation ORDER BY ip").split() == sorted(
        f"{r.ip}|{r.country or ''}" for r in located
    )
