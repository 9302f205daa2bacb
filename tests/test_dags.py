"""Smoke tests: every DAG in dags/ loads in Airflow's own venv, and lakehouse_daily is wired right.

Airflow lives in `.venv-airflow` (its Spark provider's `pyspark-client` clashes with
`pyspark`), so the DAGs are parsed there, in a subprocess, the way the DAG processor
does it: a DagBag over dags/, then each DAG serialized. No Airflow database is needed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lakehouse.config import load_config
from lakehouse.jobs.check import load_rules
from lakehouse.transforms.gold import CURRENT_TABLES, GOLD_TABLES
from tests.dag_probe import AIRFLOW_PYTHON, DAGS, parse_dags

pytestmark = pytest.mark.airflow

ROOT = Path(__file__).resolve().parents[1]


EXPECTED_UPSTREAM = {
    "ingest_access_logs": [],
    "ingest_product_views": [],
    "silver_access_logs": ["ingest_access_logs"],
    "silver_product_views": ["ingest_product_views"],
    "gold_daily": ["silver_access_logs", "silver_product_views"],
    "quality_gate": ["gold_daily"],
    "export_gold": ["quality_gate"],
}


MISSING_VENV = (
    f"{AIRFLOW_PYTHON} not found: the DAG smoke tests need Airflow's own venv; "
    "run `make airflow-setup` first"
)


def test_airflow_venv_is_installed() -> None:
    assert AIRFLOW_PYTHON.exists(), MISSING_VENV


@pytest.fixture(scope="module")
def parsed(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """What Airflow sees in dags/, parsed once in the Airflow venv."""
    if not AIRFLOW_PYTHON.exists():
        pytest.fail(MISSING_VENV)
    # A clean environment: no stray AIRFLOW_*/LAKEHOUSE_* settings from the caller, so
    # the DAGs are checked with their defaults (project folder found from dags/).
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "LAKEHOUSE_"))}
    return parse_dags(env, tmp_path_factory.mktemp("airflow"))


def test_every_dag_file_imports_without_errors(parsed: dict) -> None:
    assert parsed["import_errors"] == {}


def test_every_dag_file_defines_a_dag(parsed: dict) -> None:
    files = {str(p) for p in DAGS.glob("*.py") if not p.name.startswith("_")}
    assert len(files) == 5
    loaded = {d["fileloc"] for d in parsed["dags"].values()}
    assert files, "no DAG files found in dags/"
    assert files - loaded == set(), "files that define no DAG"


def test_dag_files_raise_no_warnings(parsed: dict) -> None:
    assert parsed["warnings"] == {}


def test_dag_files_do_not_import_spark_or_the_package_at_parse_time(parsed: dict) -> None:
    assert parsed["heavy_modules"] == []


def test_every_dag_is_documented_and_runs_one_at_a_time(parsed: dict) -> None:
    for dag_id, dag in parsed["dags"].items():
        assert dag["has_doc"], f"{dag_id} has no doc_md"
        assert dag["catchup"] is False, f"{dag_id} catches up"
        assert dag["max_active_runs"] == 1, f"{dag_id} allows concurrent runs"


def test_lakehouse_daily_has_the_expected_tasks_and_dependencies(parsed: dict) -> None:
    dag = parsed["dags"]["lakehouse_daily"]
    assert {tid: t["upstream"] for tid, t in dag["tasks"].items()} == EXPECTED_UPSTREAM


def test_stream_catchup_and_maintenance_dags(parsed: dict) -> None:
    catchup = parsed["dags"]["lakehouse_stream_catchup"]
    assert {tid: t["upstream"] for tid, t in catchup["tasks"].items()} == {
        "stream_availablenow": [],
        "silver_access_logs": ["stream_availablenow"],
        "silver_product_views": ["stream_availablenow"],
    }
    # Only its two datasets: the feeds' DAGs catch theirs up on their own checkpoints.
    assert catchup["tasks"]["stream_availablenow"]["application_args"][:6] == [
        "--trigger", "availableNow", "--dataset", "access_logs", "--dataset", "product_views",
    ]
    assert list(parsed["dags"]["lakehouse_maintenance"]["tasks"]) == ["maintain"]


def test_gold_and_export_tasks_update_assets(parsed: dict) -> None:
    # Every gold table the package builds is the outlet of exactly one DAG's gold task: the
    # one that recomputes its source.
    gold_tasks = {
        "lakehouse_daily": ("gold_daily", ("access_logs", "product_views"), "export_gold"),
        "lakehouse_web_events_daily": ("gold_web_events", ("web_events",), "export_gold"),
        "lakehouse_api_ticks_daily": ("gold_api_ticks", ("api_ticks",), "export_gold"),
        "lakehouse_ip_events_every_10_min": ("gold_ip_events", ("ip_events",), "export_current"),
    }
    built = {t: source for t, (source, _build) in GOLD_TABLES.items()} | {t: s for t, (s, _keys) in CURRENT_TABLES.items()}
    seen = []
    for dag_id, (task_id, sources, export) in gold_tasks.items():
        tasks = parsed["dags"][dag_id]["tasks"]
        expected = sorted(t for t, source in built.items() if source in sources)
        assert sorted(tasks[task_id]["outlets"]) == [f"lakehouse://warehouse/gold/{t}" for t in expected], dag_id
        assert sorted(tasks[export]["outlets"]) == [f"lakehouse://export/{t}" for t in expected], dag_id
        if "quality_gate" in tasks:
            assert tasks["quality_gate"]["outlets"] == []
        sources_args = tasks[task_id]["application_args"]
        assert [sources_args[i + 1] for i, a in enumerate(sources_args) if a == "--source"] == list(sources), dag_id
        seen += expected
    assert sorted(seen) == sorted(built) and (len(GOLD_TABLES), len(CURRENT_TABLES)) == (15, 1)
    tasks = parsed["dags"]["lakehouse_daily"]["tasks"]
    assert tasks["silver_access_logs"]["outlets"] == ["lakehouse://warehouse/silver/access_logs"]


def test_feed_dags_land_hourly_and_aggregate_daily(parsed: dict) -> None:
    for feed in ("web_events", "api_ticks"):
        hourly = parsed["dags"][f"lakehouse_{feed}_hourly"]
        assert {tid: t["upstream"] for tid, t in hourly["tasks"].items()} == {f"bronze_{feed}": [], f"silver_{feed}": [f"bronze_{feed}"]}
        bronze = hourly["tasks"][f"bronze_{feed}"]
        # The job reads where the feed's producer writes (one setting of the config, read
        # when the task runs): nothing in the DAG may choose otherwise.
        assert Path(bronze["application"]).name == "bronze_feed.py"
        assert bronze["application_args"] == ["--dataset", feed, "--profile", "local"]
        assert hourly["tasks"][f"silver_{feed}"]["outlets"] == [f"lakehouse://warehouse/silver/{feed}"]
        assert Path(hourly["tasks"][f"silver_{feed}"]["application"]).is_file()
        daily = parsed["dags"][f"lakehouse_{feed}_daily"]
        assert daily["timetable"] == "CronDataIntervalTimetable"
        assert {tid: t["upstream"] for tid, t in daily["tasks"].items()} == {
            f"gold_{feed}": [], "quality_gate": [f"gold_{feed}"], "export_gold": ["quality_gate"],
        }
        assert daily["tasks"][f"gold_{feed}"]["application_args"][:2] == ["--report-date", "{{ ds }}"]


def test_ip_geolocation_is_landed_refreshed_and_exported_every_10_minutes(parsed: dict) -> None:
    dag = parsed["dags"]["lakehouse_ip_events_every_10_min"]
    assert dag["timetable"] == "DeltaTriggerTimetable" and dag["schedule_seconds"] == 600
    assert {tid: t["upstream"] for tid, t in dag["tasks"].items()} == {
        "bronze_ip_events": [], "silver_ip_events": ["bronze_ip_events"],
        "gold_ip_events": ["silver_ip_events"], "export_current": ["gold_ip_events"],
    }
    assert dag["tasks"]["gold_ip_events"]["application_args"] == ["--source", "ip_events", "--profile", "local"]
    assert dag["tasks"]["export_current"]["application_args"] == ["--current", "--profile", "local"]
    assert "lakehouse_ip_events_daily" not in parsed["dags"] and "lakehouse_ip_events_hourly" not in parsed["dags"]


def test_sources_are_checked_for_freshness_and_the_mongo_backfill_waits_to_be_unpaused(parsed: dict) -> None:
    fresh = parsed["dags"]["lakehouse_sources_fresh"]
    assert fresh["paused_on_creation"] is False
    check = fresh["tasks"]["sources_fresh"]
    assert Path(check["application"]).name == "check.py" and check["application_args"][:2] == ["--group", "sources"]
    # Every rule it runs is a freshness rule of a feed's bronze table, failing the task.
    rules = [r for r in load_rules(load_config(environ={})) if r.group == "sources"]
    assert rules and {(r.kind, r.action, r.table.split("/")[0]) for r in rules} == {("freshness", "fail", "bronze")}
    mongo = parsed["dags"]["lakehouse_mongo_backfill"]
    assert mongo["paused_on_creation"] is True
    task = mongo["tasks"]["ingest_mongo"]
    assert Path(task["application"]).name == "ingest_mongo.py"
    assert task["application_args"] == ["--database", "kafka_data_db", "--collection", "product_views_records", "--profile", "local"]


def test_lakehouse_daily_runs_on_daily_data_intervals(parsed: dict) -> None:
    # Data intervals make {{ ds }} the day that just ended, not the one just starting.
    assert parsed["dags"]["lakehouse_daily"]["timetable"] == "CronDataIntervalTimetable"


def test_lakehouse_daily_submits_project_jobs_with_the_spark_venv(parsed: dict) -> None:
    tasks = parsed["dags"]["lakehouse_daily"]["tasks"]
    for task_id, task in tasks.items():
        assert task["operator"] == "SparkSubmitOperator", task_id
        assert task["retries"] == 1, task_id
        assert task["has_timeout"], task_id
        assert task["spark_binary"] == str(ROOT / ".venv" / "bin" / "spark-submit"), task_id
        assert task["env_vars"]["LAKEHOUSE_HOME"] == str(ROOT), task_id
        assert task["env_vars"]["PYSPARK_PYTHON"] == str(ROOT / ".venv" / "bin" / "python"), task_id
        application = Path(task["application"])
        assert application.parent == ROOT / "spark" / "lakehouse" / "jobs", task_id
        assert application.is_file(), f"{task_id} submits a missing job: {application}"


def test_lakehouse_daily_job_arguments(parsed: dict) -> None:
    tasks = parsed["dags"]["lakehouse_daily"]["tasks"]
    args = {task_id: task["application_args"] for task_id, task in tasks.items()}
    assert args["gold_daily"][:2] == ["--report-date", "{{ ds }}"]
    assert args["quality_gate"][:2] == ["--date", "{{ ds }}"]
    assert args["ingest_access_logs"][:2] == ["--dataset", "access_logs"]
    assert args["ingest_product_views"][:2] == ["--dataset", "product_views"]
    # The files may not leave the configured incoming folder, whatever a run's params say.
    for task_id in ("ingest_access_logs", "ingest_product_views"):
        within = args[task_id][args[task_id].index("--within") + 1]
        assert within.startswith("{{ var.value.get('lakehouse_incoming', ") and "params" not in within, within
    for task_id, task_args in args.items():
        assert task_args[-2:] == ["--profile", "local"], task_id


def test_main_venv_has_no_airflow() -> None:
    # The reason for the subprocess: Airflow's pyspark-client must stay out of this venv.
    probe = "import importlib.util, sys; sys.exit(importlib.util.find_spec('airflow') is not None)"
    assert subprocess.run([sys.executable, "-c", probe]).returncode == 0
