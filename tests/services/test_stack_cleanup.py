"""A test run leaves no server behind: stopped with SIGTERM (as a CI or `timeout` limit
does) it stops them itself; killed outright (SIGKILL) its watchdog does.

Each case runs a child pytest whose one test starts a server of its stack (FerretDB, the
quickest to start) and waits; the child is then stopped, and the server must be gone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lakehouse.config import project_root
from lakehouse_dev.services.process import pid_alive

pytestmark = pytest.mark.services

CHILD_TEST = '''
import os
import time

import pytest


@pytest.mark.services
def test_holds_a_server(stack):
    server = stack.ferretdb
    with open(os.environ["STACK_PROBE"] + ".tmp", "w") as probe:
        probe.write(f"{server.pid} {stack.base}")
    os.rename(os.environ["STACK_PROBE"] + ".tmp", os.environ["STACK_PROBE"])
    time.sleep(600)
'''


def child_run(tmp_path: Path) -> tuple[subprocess.Popen, int, Path]:
    """A child pytest holding a FerretDB of its own stack: the process, the server's pid and
    the run's folder."""
    test = tmp_path / "test_child.py"
    test.write_text(CHILD_TEST)
    probe = tmp_path / "probe"
    env = {k: v for k, v in os.environ.items() if k != "LAKEHOUSE_TEST_TIER"} | {"STACK_PROBE": str(probe)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.conftest", "-p", "no:randomly", "-p", "no:cacheprovider",
         str(test)],
        cwd=project_root(), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    deadline = time.monotonic() + 120
    while not probe.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the child run did not start its server:\n{proc.communicate()[0][-3000:]}")
        time.sleep(0.2)
    pid, base = probe.read_text().split()
    return proc, int(pid), Path(base)


def gone(pid: int, base: Path, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while pid_alive(pid) or base.exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL], ids=lambda s: s.name)
def test_a_stopped_run_stops_the_servers_it_started(tmp_path, sig):
    proc, pid, base = child_run(tmp_path)
    try:
        assert pid_alive(pid) and base.is_dir()
        proc.send_signal(sig)
        proc.wait(60)
        assert gone(pid, base, timeout=30), f"server {pid} or {base} left behind after {sig.name}"
    finally:
        if proc.poll() is None:
            proc.kill()
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
