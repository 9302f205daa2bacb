"""Helpers of the streaming tests, on the run's real servers (tests/stack.py).

Each test gets its own topics, warehouse prefix and PostgreSQL database (by its name), so
tests do not see each other's data.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from lakehouse.config import Config, project_root
from lakehouse.io import delta
from tests.stack import Stack, stack_config, stack_env, use_stack  # noqa: F401 - used by the tests


def start_stream(stack: Stack, name: str, *args: str, log_path: Path) -> subprocess.Popen:
    """`lakehouse stream` as its own process (so a test can SIGKILL it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")}
    env |= stack_env(stack, name) | {"LAKEHOUSE_HOME": str(project_root())}
    env["LAKEHOUSE_SPARK_MASTER"] = "local[2]"
    handle = open(log_path, "ab")  # noqa: SIM115 - closed with the process by the caller
    return subprocess.Popen(
        [sys.executable, "-m", "lakehouse", "stream", *args],
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
        cwd=project_root(),
        start_new_session=True,  # its own process group: kill_group takes its JVM too
    )


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL a job started in its own process group, its JVM included (a child that outlives
    a killed Python by seconds, still writing batches and commits, as a killed container's
    would not), and wait until none of the group is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(30)
    wait_group_gone(proc.pid)


def wait_group_gone(pgid: int, timeout: float = 30) -> None:
    """Wait until no process of group `pgid` is left (its leader reaped by its parent)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    raise AssertionError(f"process group {pgid} still alive after SIGKILL")


def bronze_offsets(spark, config: Config, dataset: str) -> list[tuple[int, int]]:
    """(partition, offset) of every bronze row of `dataset`, sorted (duplicates kept)."""
    path = config.table_path("bronze", dataset)
    if not delta.table_exists(spark, path):
        return []
    return sorted((r[0], r[1]) for r in delta.read_table(spark, path).select("partition", "offset").collect())


def wait_for(check, timeout: float, interval: float = 1.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)
