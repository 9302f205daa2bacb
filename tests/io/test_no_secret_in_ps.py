"""No process's command line holds the S3 secret while a job runs on an s3a:// warehouse.

PySpark turns every SparkSession.builder setting into a `--conf k=v` argument of the JVM it
launches, readable by any local user with `ps`; the keys must reach S3A another way.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.stack import stack_env

from lakehouse.config import project_root

pytestmark = pytest.mark.services


def command_lines() -> list[str]:
    lines = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            lines.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            continue
    return lines


def test_a_services_job_puts_no_s3_key_on_any_command_line(stack, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")}
    env |= stack_env(stack, "ps_secret") | {"LAKEHOUSE_HOME": str(project_root()), "LAKEHOUSE_SPARK_MASTER": "local[1]"}
    secret = env["LAKEHOUSE_S3_SECRET_KEY"]
    assert len(secret) >= 8
    log = tmp_path / "check.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "lakehouse", "check"], env=env, stdout=out,
                                stderr=subprocess.STDOUT, cwd=project_root())
    seen_jvm, leaked = False, []
    try:
        while proc.poll() is None:
            lines = command_lines()
            seen_jvm = seen_jvm or any("org.apache.spark.deploy.SparkSubmit" in line for line in lines)
            leaked += [line for line in lines if secret in line]
            time.sleep(0.1)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, log.read_text()[-3000:]
    assert seen_jvm, "the job's JVM was never seen: the test proves nothing"
    assert leaked == []
    # The job did reach the bucket with those keys: its run is recorded there.
    assert "check:" in log.read_text()
