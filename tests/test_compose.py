"""docker-compose.yml, validated by the Compose specification's own loader and kept
consistent with the local stack.

The loader is compose-go (github.com/compose-spec/compose-go, what Docker Compose v2 is
built on), driven by the small program in tests/compose/: it parses the file, checks it
against the Compose schema, interpolates ${VAR} from an env file and checks references
between services and volumes; the resolved project comes back as JSON. It is built once
per machine with `go build` into ~/.cache/lakehouse/compose-check/<hash of its source>/,
reusing Go's module and build caches.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from lakehouse.config import load_config
from lakehouse_dev.services import kafka

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / "tests" / "compose"
COMPOSE = ROOT / "docker-compose.yml"
SAMPLE_ENV = TOOL / "sample.env"
AIRFLOW_SERVICES = ("airflow-init", "airflow-api-server", "airflow-scheduler", "airflow-dag-processor")
WORKERS = ("spark-worker-1", "spark-worker-2")


def compose_check() -> Path:
    source = b"".join((TOOL / name).read_bytes() for name in ("main.go", "go.mod", "go.sum"))
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    binary = cache / "lakehouse" / "compose-check" / hashlib.sha256(source).hexdigest()[:16] / "compose-check"
    if not binary.is_file():
        go = shutil.which("go")
        assert go, "Go is needed to build the compose validator (tests/compose)"
        binary.parent.mkdir(parents=True, exist_ok=True)
        build = subprocess.run([go, "build", "-o", str(binary), "."], cwd=TOOL, capture_output=True, text=True,
                               env=os.environ | {"CGO_ENABLED": "0"}, timeout=900)
        assert build.returncode == 0, build.stderr
    return binary


def load(env_file: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(compose_check()), str(COMPOSE), str(env_file)], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def project() -> dict:
    loaded = load(SAMPLE_ENV)
    assert loaded.returncode == 0, loaded.stderr
    return json.loads(loaded.stdout)


def required_variables() -> set[str]:
    return set(re.findall(r"\$\{(\w+):\?", COMPOSE.read_text()))


def test_compose_file_loads_with_the_sample_env(project):
    assert project["name"] == "lakehouse"
    assert {"spark-master", *WORKERS, "kafka", "minio", "postgres", *AIRFLOW_SERVICES} <= set(project["services"])


def test_every_required_secret_is_in_the_sample_env_and_missing_ones_are_named(tmp_path):
    sample = {line.split("=", 1)[0] for line in SAMPLE_ENV.read_text().splitlines() if "=" in line and not line.startswith("#")}
    assert required_variables() == sample
    empty = tmp_path / "empty.env"
    empty.write_text("")
    refused = load(empty)
    assert refused.returncode == 1
    for name in required_variables():
        assert f"required variable {name} is missing" in refused.stderr


def test_images_are_pinned(project):
    for name, service in project["services"].items():
        image = service["image"]
        assert ":" in image and not image.endswith((":latest", ":local")) or image == "lakehouse:local", (name, image)
        if image == "lakehouse:local":
            assert "build" in service, f"{name}: the local image must be built here"


def test_kafka_matches_the_local_broker(project):
    broker = project["services"]["kafka"]
    assert broker["image"] == f"apache/kafka:{kafka.kafka_version()}"
    assert int(broker["environment"]["KAFKA_MESSAGE_MAX_BYTES"]) == kafka.MESSAGE_MAX_BYTES
    assert int(broker["environment"]["KAFKA_REPLICA_FETCH_MAX_BYTES"]) == kafka.MESSAGE_MAX_BYTES


def test_two_workers_and_airflow_see_the_incoming_files_at_one_path(project):
    services = project["services"]
    def mounts(name):
        return {v["target"]: v["source"] for v in services[name].get("volumes", [])}
    incoming = services["airflow-scheduler"]["environment"]["LAKEHOUSE_INCOMING"]
    for name in (*WORKERS, *AIRFLOW_SERVICES):
        assert mounts(name).get(incoming) == str(ROOT / "sample_logs"), name
    for name in WORKERS:
        assert "spark://spark-master:7077" in services[name]["command"], name
    assert (ROOT / "sample_logs" / "access.log").is_file() and (ROOT / "sample_logs" / "product_views.jsonl").is_file()


def test_airflow_gets_the_dags_the_profile_and_every_secret_the_config_names(project):
    compose = load_config(profile="compose", environ={})
    secrets = {compose.export.password_env, compose.s3.access_key_env, compose.s3.secret_key_env}
    dags = {p.name for p in (ROOT / "dags").glob("lakehouse_*.py")}
    assert dags == {"lakehouse_daily.py", "lakehouse_stream_catchup.py", "lakehouse_maintenance.py", "lakehouse_feeds.py",
                    "lakehouse_sources.py"}
    for name in AIRFLOW_SERVICES:
        service = project["services"][name]
        env = service["environment"]
        assert env["LAKEHOUSE_PROFILE"] == "compose", name
        mounts = {v["target"]: v["source"] for v in service.get("volumes", [])}
        assert mounts[env["AIRFLOW__CORE__DAGS_FOLDER"]] == str(ROOT / "dags"), name
        for secret in secrets:
            assert env.get(secret), f"{name} lacks {secret}"


SOURCES = {"collector": "serve", "poller": "poll", "stream": "stream", "stream-windows": "stream-windows"}


def test_the_long_running_sources_restart_by_themselves_with_the_dags_settings(project):
    services = project["services"]
    scheduler = services["airflow-scheduler"]
    shared = {k: v for k, v in scheduler["environment"].items() if k.startswith("LAKEHOUSE_")}
    conf = next(v["source"] for v in scheduler["volumes"] if v["target"] == "/opt/lakehouse/conf")
    for name, command in SOURCES.items():
        source = services[name]
        assert source["restart"] == "unless-stopped", name
        assert source["entrypoint"][-1] == "/opt/lakehouse/.venv/bin/lakehouse" and source["command"][0] == command, name
        assert "--single-child" in source["entrypoint"], f"{name}: a stop must reach the job, not its JVM"
        assert source["image"] == scheduler["image"], name
        env = {k: v for k, v in source["environment"].items() if k.startswith("LAKEHOUSE_")}
        assert {k: env.get(k) for k in shared} == shared, f"{name} reads other settings than the DAGs"
        assert {v["target"]: v["source"] for v in source["volumes"]}["/opt/lakehouse/conf"] == conf, name
    # Listening beyond loopback, the collector needs its key (serve refuses to start without).
    assert len(services["collector"]["environment"]["LAKEHOUSE_API_KEY"]) >= 32
    # Every topic a source writes or the stream reads exists before they start.
    created = services["kafka-topics"]["command"][0]
    for topic in load_config(profile="compose", environ={}).kafka.topics.values():
        assert f" {topic}" in created.split(";")[0], topic


def test_the_mirror_runs_only_when_asked_for_with_its_remote_from_the_env():
    import yaml

    mirror = yaml.safe_load(COMPOSE.read_text())["services"]["mirror"]
    assert mirror["profiles"] == ["mirror"] and mirror["restart"] == "unless-stopped"
    assert mirror["command"][:3] == ["mirror", "--from-bootstrap", "${MIRROR_BOOTSTRAP:-}"]
    from lakehouse.jobs.mirror import PASSWORD_ENV

    assert PASSWORD_ENV in mirror["environment"]


def test_prometheus_and_grafana_read_the_monitoring_files_of_conf(project):
    """Prometheus runs conf/prometheus/compose.yml (its targets: test_prometheus.py) with the
    collector's key as a file; Grafana gets the data source and the dashboard provisioned."""
    import yaml

    services = project["services"]
    prom = services["prometheus"]
    mounts = {v["target"]: v["source"] for v in prom["volumes"]}
    assert Path(mounts["/etc/prometheus/conf"]) == ROOT / "conf" / "prometheus"
    assert "--config.file=/etc/prometheus/conf/compose.yml" in prom["command"]
    key_file = yaml.safe_load((ROOT / "conf" / "prometheus" / "compose.yml").read_text())["scrape_configs"][0]
    assert [c["target"] for c in prom["configs"]] == [key_file["authorization"]["credentials_file"]]
    assert project["configs"][prom["configs"][0]["source"]]["content"] == services["collector"]["environment"]["LAKEHOUSE_API_KEY"]
    # The streaming jobs run the compose profile, whose metrics ports compose.yml scrapes.
    assert {services[name]["environment"]["LAKEHOUSE_PROFILE"] for name in ("stream", "stream-windows")} == {"compose"}
    grafana = services["grafana"]
    mounts = {v["target"]: Path(v["source"]) for v in grafana["volumes"] if v["type"] == "bind"}
    assert mounts["/etc/grafana/provisioning"] == ROOT / "conf" / "grafana" / "provisioning"
    dashboards = yaml.safe_load((ROOT / "conf/grafana/provisioning/dashboards/lakehouse.yml").read_text())
    assert mounts[dashboards["providers"][0]["options"]["path"]] == ROOT / "conf" / "grafana" / "dashboards"
    source = yaml.safe_load((ROOT / "conf/grafana/provisioning/datasources/prometheus.yml").read_text())["datasources"][0]
    assert source["url"] == "http://prometheus:9090"
    dashboard = json.loads((ROOT / "conf/grafana/dashboards/lakehouse.json").read_text())
    assert {panel["datasource"]["uid"] for panel in dashboard["panels"]} == {source["uid"]}
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == "sample-grafana-password"
