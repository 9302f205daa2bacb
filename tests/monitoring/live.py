"""A real Prometheus on the shipped configuration, scraping a test's real endpoints."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import yaml

from lakehouse.config import project_root
from lakehouse_dev.services import prometheus


@contextmanager
def scraping(stack, targets: dict[str, str]) -> Iterator[prometheus.PrometheusServer]:
    """Prometheus run on conf/prometheus/prometheus.yml (its alert rules included), its jobs
    pointed at `targets` ({job name: "host:port"}; the others left out), scraping every
    second, in the run's stack folder (stopped with the stack, the watchdog included)."""
    conf = project_root() / "conf" / "prometheus"
    config = yaml.safe_load((conf / "prometheus.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(conf / name) for name in config["rule_files"]]
    config["scrape_configs"] = [
        job | {"static_configs": [{"targets": [targets[job["job_name"]]]}]}
        for job in config["scrape_configs"]
        if job["job_name"] in targets
    ]
    assert {job["job_name"] for job in config["scrape_configs"]} == set(targets), "a target of no shipped job"
    base = stack.base / "prometheus"
    base.mkdir(parents=True, exist_ok=True)
    (base / "prometheus.yml").write_text(yaml.safe_dump(config))
    server = prometheus.start(base, base / "prometheus.yml")
    try:
        yield server
    finally:
        prometheus.stop(base)
