"""What Airflow sees in dags/: the DAG files parsed in Airflow's own venv (`.venv-airflow`:
its Spark provider's `pyspark-client` clashes with `pyspark`), in a subprocess, the way the
DAG processor does it: a DagBag over dags/, then each DAG serialized. No Airflow database."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DAGS = ROOT / "dags"
AIRFLOW_PYTHON = ROOT / ".venv-airflow" / "bin" / "python"

# Runs inside .venv-airflow: parses dags/ and writes what the tests check as JSON.
PROBE = r"""
import json, sys
from airflow.dag_processing.dagbag import DagBag
from airflow.serialization.serialized_objects import DagSerialization

dags_folder, out = sys.argv[1], sys.argv[2]
# As Airflow's BundleDagBag (DAG processor, workers) does: the bundle's folder on sys.path,
# so DAG files import their shared helpers (dags/_lakehouse.py).
sys.path.append(dags_folder)
bag = DagBag(dag_folder=dags_folder, safe_mode=False, load_op_links=False)
errors = dict(bag.import_errors)
dags = {}
for dag_id, dag in bag.dags.items():
    try:
        DagSerialization.to_dict(dag)
    except Exception as exc:
        errors[dag.fileloc] = f"serialization failed: {exc!r}"
    dags[dag_id] = {
        "fileloc": dag.fileloc,
        "catchup": dag.catchup,
        "timetable": type(dag.timetable).__name__,
        "max_active_runs": dag.max_active_runs,
        "paused_on_creation": bool(dag.is_paused_upon_creation),
        "schedule_seconds": getattr(getattr(dag.timetable, "delta", None), "total_seconds", lambda: None)(),
        "has_doc": bool(dag.doc_md and dag.doc_md.strip()),
        "tasks": {
            t.task_id: {
                "upstream": sorted(t.upstream_task_ids),
                "operator": type(t).__name__,
                "retries": t.retries,
                "has_timeout": t.execution_timeout is not None,
                "application": getattr(t, "application", None),
                "application_args": getattr(t, "application_args", None),
                "spark_binary": getattr(t, "_spark_binary", None),
                "env_vars": getattr(t, "env_vars", None),
                "outlets": [a.uri for a in t.outlets],
            }
            for t in dag.tasks
        },
    }
heavy = sorted(m for m in ("pyspark", "lakehouse", "pandas") if m in sys.modules)
json.dump(
    {
        "import_errors": errors,
        "warnings": {k: list(v) for k, v in bag.captured_warnings.items()},
        "dags": dags,
        "heavy_modules": heavy,
    },
    open(out, "w"),
)
"""


def parse_dags(environ: dict[str, str], tmp: Path) -> dict:
    """The probe's answer for `environ` (the DAG files read LAKEHOUSE_* settings when parsed):
    import errors, warnings, and per DAG its settings and tasks."""
    env = {k: v for k, v in environ.items() if not k.startswith("AIRFLOW")}
    env.pop("PYTHONPATH", None)
    env.update(
        AIRFLOW_HOME=str(tmp / "home"),
        AIRFLOW__CORE__DAGS_FOLDER=str(DAGS),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__LOGGING__LOGGING_LEVEL="WARNING",
    )
    out = tmp / "dagbag.json"
    proc = subprocess.run(
        [str(AIRFLOW_PYTHON), "-c", PROBE, str(DAGS), str(out)], env=env, cwd=tmp, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, f"DAG probe failed:\n{proc.stdout}\n{proc.stderr}"
    return json.loads(out.read_text())
