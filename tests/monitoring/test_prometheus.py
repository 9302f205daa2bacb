"""conf/prometheus/ checked by Prometheus's own promtool (Debian's package, unpacked by
lakehouse_dev.services.prometheus): the configurations load, the rules parse, and every
alert fires on the synthetic series of alerts_test.yml and stays silent on healthy ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakehouse.config import project_root
from lakehouse_dev.services import prometheus

CONF = project_root() / "conf" / "prometheus"
HERE = Path(__file__).parent


def passes(*args: str, cwd: Path = CONF) -> str:
    result = prometheus.promtool(*args, cwd=cwd)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def test_the_native_configuration_loads_with_its_rules():
    assert "SUCCESS: 1 rule files found" in passes("check", "config", "prometheus.yml")


def test_the_compose_configuration_loads_with_its_rules():
    # --syntax-only: its API-key file exists only in the container (compose writes it).
    assert "SUCCESS: compose.yml is valid" in passes("check", "config", "--syntax-only", "compose.yml")


def test_the_rules_parse():
    assert "SUCCESS: 9 rules found" in passes("check", "rules", "alerts.yml")


def test_every_alert_fires_on_a_failure_and_none_on_a_healthy_pipeline():
    assert "SUCCESS" in passes("test", "rules", "alerts_test.yml", cwd=HERE)


def test_a_rule_test_can_fail(tmp_path):
    """The rule tests are not vacuous: a wrong expectation is a failure."""
    broken = (HERE / "alerts_test.yml").read_text().replace('"lakehouse-mirror is 150000 offsets behind on views"',
                                                            '"lakehouse-mirror is 1 offsets behind on views"')
    rules = tmp_path / "conf" / "prometheus"
    rules.mkdir(parents=True)
    (rules / "alerts.yml").write_text((CONF / "alerts.yml").read_text())
    tests = tmp_path / "tests" / "monitoring"
    tests.mkdir(parents=True)
    (tests / "alerts_test.yml").write_text(broken)
    result = prometheus.promtool("test", "rules", "alerts_test.yml", cwd=tests)
    assert result.returncode == 1
    assert "alertname: StreamLagHigh" in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("name", "profile", "hosts"),
    [
        ("prometheus.yml", "services", ["127.0.0.1"] * 4),
        ("compose.yml", "compose", ["collector", "stream", "stream-windows", "mirror"]),
    ],
)
def test_each_configuration_scrapes_the_ports_its_profile_serves_with_the_same_rules(name, profile, hosts):
    import yaml

    from lakehouse.config import load_config

    config = yaml.safe_load((CONF / name).read_text())
    settings = load_config(profile, environ={})
    assert config["rule_files"] == ["alerts.yml"]
    jobs = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    ports = (settings.api.port, settings.metrics.stream_port, settings.metrics.stream_windows_port, settings.metrics.mirror_port)
    assert jobs == {
        job: [f"{host}:{port}"]
        for job, host, port in zip(
            ("lakehouse-api", "lakehouse-stream", "lakehouse-stream-windows", "lakehouse-mirror"), hosts, ports, strict=True
        )
    }


def test_the_metric_names_of_an_expression_leave_out_labels_functions_and_numbers():
    from tests.monitoring.names import metric_names, referenced

    expr = 'histogram_quantile(0.95, sum by (le, route) (rate(a_bucket{job="x", count="y"}[5m]))) / ignoring (count) b > 0.05'
    assert metric_names(expr) == {"a_bucket", "b"}
    assert metric_names('time() - max by (dataset) (c or d{job="lakehouse-stream"}) > on (dataset) group_left e') == {"c", "d", "e"}
    assert {"lakehouse_stream_lag_offsets", "lakehouse_api_request_duration_seconds_bucket"} <= referenced()
