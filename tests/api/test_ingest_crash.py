"""`lakehouse serve` killed with SIGKILL: every IP it answered 202 for is in the landing
files after the next start, once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.api.test_ingest import hidden_files, landed
from tests.conftest import ROOT, free_ports


def serve(landing: Path) -> tuple[subprocess.Popen, str]:
    port = free_ports()[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")}
    env |= {"LAKEHOUSE_HOME": str(ROOT), "LAKEHOUSE_IP_EVENTS__LANDING": str(landing)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "lakehouse", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{url}/openapi.json", timeout=2)
            return proc, url
        except httpx.TransportError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise AssertionError(
                    f"lakehouse serve did not start: {proc.stdout.read()}"
                ) from None
            time.sleep(0.05)


def test_ips_answered_202_survive_a_killed_server(tmp_path):
    landing = tmp_path / "landing"
    proc, url = serve(landing)
    try:
        for n in range(3):
            answer = httpx.post(
                f"{url}/ingest-ips", json={"ips": [f"6.6.{n}.1", f"6.6.{n}.2"]}, timeout=10
            )
            assert answer.status_code == 202
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    # The minute's slice was still open: written and fsync'd, but hidden.
    assert landed(landing) == [] and len(hidden_files(landing)) == 1

    proc, url = serve(landing)
    try:
        assert sorted(r["ip"] for r in landed(landing)) == sorted(
            f"6.6.{n}.{i}" for n in range(3) for i in (1, 2)
        )
        assert hidden_files(landing) == []
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=10)
    assert "left by a server that did not stop cleanly" in output
