"""`lakehouse supervise`: a source that exits comes back by itself, later each time it
keeps failing; a killed collector loses and doubles none of the IPs it answered 202 for."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import httpx

from lakehouse.config import SuperviseConfig
from lakehouse.jobs.supervise import Service, restart_delay
from tests.api.test_ingest import hidden_files, landed
from tests.conftest import ROOT, free_ports


def test_the_delay_doubles_with_each_quick_exit_up_to_its_ceiling():
    policy = SuperviseConfig(restart_delay_seconds=1, max_restart_delay_seconds=60)
    assert [restart_delay(n, policy) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]


def test_a_service_that_keeps_exiting_is_restarted_later_each_time_and_a_long_run_resets_that():
    policy = SuperviseConfig(restart_delay_seconds=0.05, max_restart_delay_seconds=0.15, healthy_after_seconds=0.5)
    service = Service("flaky", [sys.executable, "-c", "import sys; sys.exit(3)"])
    delays = []
    for _ in range(4):
        service.check(policy, time.monotonic())  # starts it (it is due)
        service.process.wait(10)
        service.check(policy, time.monotonic())  # notices the exit
        delays.append(round(service.start_at - time.monotonic(), 2))
        service.start_at = 0  # due again at once
    assert service.exits == [3, 3, 3, 3] and service.restarts == 4
    assert [d >= x - 0.01 for d, x in zip(delays, (0.05, 0.1, 0.15, 0.15), strict=True)] == [True] * 4
    assert delays[3] <= 0.15

    service.argv = [sys.executable, "-c", "import time; time.sleep(0.7)"]  # longer than healthy_after
    service.check(policy, time.monotonic())
    service.process.wait(10)
    service.check(policy, time.monotonic())
    assert service.quick_exits == 1 and service.start_at - time.monotonic() <= 0.05


def _health(url: str) -> bool:
    try:
        httpx.get(f"{url}/openapi.json", timeout=2)
        return True
    except httpx.TransportError:
        return False


def _child_pids(output: str) -> list[int]:
    return [int(pid) for pid in re.findall(r"collector: started \(pid (\d+)\)", output)]


def test_a_killed_collector_comes_back_by_itself_with_every_answered_ip_once(tmp_path):
    landing, log = tmp_path / "landing", tmp_path / "supervise.log"
    port = free_ports()[0]
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")} | {
        "LAKEHOUSE_HOME": str(ROOT),
        "LAKEHOUSE_IP_EVENTS__LANDING": str(landing),
        "LAKEHOUSE_SUPERVISE__SERVICES__COLLECTOR": f"serve --port {port} --warehouse {tmp_path}",
        "LAKEHOUSE_SUPERVISE__RESTART_DELAY_SECONDS": "2",
    }
    with log.open("w") as out:
        supervisor = subprocess.Popen(
            [sys.executable, "-m", "lakehouse", "supervise", "--service", "collector"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        while not _health(url):
            assert supervisor.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        sent = []
        for n in range(3):
            ips = [f"7.7.{n}.1", f"7.7.{n}.2"]
            assert httpx.post(f"{url}/ingest-ips", json={"ips": ips}, timeout=10).status_code == 202
            sent += ips
        first = _child_pids(log.read_text())[0]
        os.kill(first, signal.SIGKILL)
        # Killed mid-slice: the answered IPs are fsync'd in a hidden file, no data file yet.
        time.sleep(0.5)
        assert landed(landing) == [] and len(hidden_files(landing)) == 1

        deadline = time.monotonic() + 60
        while len(_child_pids(log.read_text())) < 2 or not _health(url):
            assert supervisor.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        assert httpx.post(f"{url}/ingest-ips", json={"ips": ["7.7.9.9"]}, timeout=10).status_code == 202
        sent.append("7.7.9.9")
    finally:
        supervisor.send_signal(signal.SIGTERM)
        code = supervisor.wait(60)
    output = log.read_text()
    assert code == 0, output
    assert "collector: exited with code -9" in output and "restart 1 in 2.0s" in output
    assert "left by a server that did not stop cleanly" in output
    # The restarted collector took over the killed one's slice; stopped cleanly, it closed its own.
    assert sorted(r["ip"] for r in landed(landing)) == sorted(sent)
    assert hidden_files(landing) == []
    second = _child_pids(output)[1]
    assert not os.path.exists(f"/proc/{second}"), "the stopped service's process is gone"
