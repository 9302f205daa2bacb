"""`make test`: the whole suite as two pytest runs side by side, each with its own Spark session.

    python -m lakehouse_dev.test_tiers [pytest options, given to both runs]

- **servers**: the tests marked `services` or `airflow` (tests/stack.py starts each real
  server once for this run: PostgreSQL, Kafka, MinIO, FerretDB, the Spark cluster), and
  `browser` (headless Chromium) and `notebooks` (a Jupyter kernel), to even the two runs out;
- **in-process**: all the others (transforms, in-process Spark jobs), with
  `LAKEHOUSE_TEST_TIER=in-process`: the stack refuses to start a server, so a test that
  needs one and lacks its mark fails instead of starting a second stack.

Why side by side: one run keeps ~1.4 of the 2 cores busy on average (the driver plans and
commits on one thread; the server tests wait on brokers, restarts and cold JVMs), so the
other run fills the idle time. The tiers share nothing: no server, no table, no port (each
test picks free ports). Each run's lines are printed as they come, prefixed with its name;
at the end each run's failures (pytest's short summary lines) are printed again, so the last
lines of a log say what failed in either run; the exit code is the first non-zero one. SIGTERM or Ctrl-C stops both (each pytest then
tears its fixtures down, and the servers with them).

Written here rather than with pytest-xdist: its workers are per test, so each would start
its own servers, and the fault tests (a broker restarted, MinIO stopped) would hit the other
workers' tests.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

# name: (pytest's mark expression, environment, niceness). The in-process run yields the
# CPU to the server run: the latter holds the time-bound proofs (a window in SQL within
# 15 s of its close) and the longest test (the daily DAG on the cluster).
# The browser tests (the HTML report in Chromium) and the notebooks need no server but run
# with them: the in-process run is the longer one (a fresh clone: 25m27s against 23m49s, the
# notebooks ~165 s of it; the daily DAG's test then sent three applications fewer to the cluster).
TIERS = {
    "servers": ("services or airflow or browser or notebooks", {}, 0),
    "in-process": ("not (services or airflow or browser or notebooks)", {"LAKEHOUSE_TEST_TIER": "in-process"}, 10),
}


# pytest's short test summary lines (its default `-r fE`): what a tier's run failed.
FAILURE_PREFIXES = ("FAILED ", "ERROR ")


def _relay(name: str, stream, lock: threading.Lock, failures: list[str]) -> None:
    width = max(len(n) for n in TIERS)
    for line in iter(stream.readline, ""):
        if line.startswith(FAILURE_PREFIXES):
            failures.append(line.rstrip("\n"))
        with lock:
            sys.stdout.write(f"[{name:<{width}}] {line}")
            sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    extra = list(sys.argv[1:] if argv is None else argv)
    started = time.monotonic()
    lock = threading.Lock()
    runs: dict[str, subprocess.Popen] = {}
    relays = []
    failures: dict[str, list[str]] = {name: [] for name in TIERS}
    for name, (marks, env, niceness) in TIERS.items():
        runs[name] = subprocess.Popen(
            [*(["nice", "-n", str(niceness)] if niceness else []), sys.executable, "-m", "pytest", "-m", marks, *extra],
            # Wide lines: pytest cuts its summary lines to the terminal's width (80 on a pipe).
            env={"COLUMNS": "200"} | os.environ | env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        relays.append(threading.Thread(target=_relay, args=(name, runs[name].stdout, lock, failures[name]), daemon=True))
        relays[-1].start()

    def stop(signum, _frame) -> None:
        for proc in runs.values():
            if proc.poll() is None:
                proc.send_signal(signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop)
    codes = {}
    for name, proc in runs.items():
        codes[name] = proc.wait()
    for relay in relays:
        relay.join(10)
    for name, lines in failures.items():
        for line in lines:
            print(f"test tiers: {name}: {line}", flush=True)
    minutes, seconds = divmod(time.monotonic() - started, 60)
    summary = ", ".join(f"{name} exit {code}" for name, code in codes.items())
    print(f"test tiers: {summary} in {int(minutes)}m{seconds:02.0f}s", flush=True)
    return next((code for code in codes.values() if code != 0), 0)


if __name__ == "__main__":
    sys.exit(main())
