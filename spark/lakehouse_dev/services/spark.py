"""A real Spark standalone cluster on loopback: one master and N workers (default 2).

    python -m lakehouse_dev.services.spark up|down|status [--port N] [--webui-port N] [--workers N]

Started with the `spark-class` launcher of the pinned pyspark wheel
(`org.apache.spark.deploy.master.Master`, `org.apache.spark.deploy.worker.Worker`), so the
cluster runs exactly the Spark the jobs are built against. Everything binds 127.0.0.1: the
master's RPC port (default 17077, `spark://127.0.0.1:17077`), its web UI and JSON status
(18080, `/json/`), each worker's web UI (18081, 18082, ...). State under one base dir
(default `<project>/.data/spark`): the master's `spark.log`, `worker-<n>/` (its log and the `work/`
folder where executors run and unpack the shipped Python environment), pid files.

Healthy means the master's JSON status lists as many ALIVE workers as were asked for.
Start and stop are idempotent. Each worker offers 1 core and 3 GB to executors (2 cores on
this machine), and cleans up the folders of finished applications after an hour.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pyspark

from lakehouse_dev.services import process

SERVICE = "spark"
HOST = "127.0.0.1"
DEFAULT_PORT = 17077
DEFAULT_WEBUI_PORT = 18080
DEFAULT_WORKERS = 2
WORKER_CORES = 1
WORKER_MEMORY = "3g"
DAEMON_MEMORY = "384m"
MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"


@dataclass(frozen=True)
class SparkCluster:
    """A running cluster: the master URL jobs connect to, its status page, the workers' pids."""

    master_url: str
    webui: str
    base_dir: Path
    pids: tuple[int, ...]

    def alive_workers(self) -> int:
        return alive_workers(self.webui)


def spark_home() -> Path:
    """The Spark distribution inside the pyspark wheel (bin/spark-class, jars/)."""
    return Path(pyspark.__file__).parent


def start(
    base_dir: Path | None = None,
    port: int = DEFAULT_PORT,
    webui_port: int = DEFAULT_WEBUI_PORT,
    workers: int = DEFAULT_WORKERS,
    timeout: float = 90,
    worker_webui_ports: bool = True,
) -> SparkCluster:
    """Start (or reuse) the master and `workers` workers of `base_dir`; wait until all are ALIVE.

    Worker web UIs take the ports after `webui_port` (`worker_webui_ports=False`: any free
    port, for tests). Raises RuntimeError (with the tail of the log concerned) when a port
    is taken by another process, a daemon exits, or the workers do not register within `timeout` seconds.
    """
    base = process.resolve_base(SERVICE, base_dir)
    base.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    webui = f"http://{HOST}:{webui_port}"
    master_url = f"spark://{HOST}:{port}"
    with process.locked(base / f".{SERVICE}.lock"):
        pids = []
        master = _running_pid(base, "master")
        if master is None:
            process.refuse_taken(f"spark master of {base}", HOST, (port, webui_port), _log(base, "master"))
            master = _launch(base, "master", [MASTER_CLASS, "--host", HOST, "--port", str(port),
                                              "--webui-port", str(webui_port)])
            _wait(lambda: _status(webui) is not None, deadline, base, "master")
        elif _status(webui) is None:
            raise RuntimeError(f"the spark master of {base} runs, but not with its web UI on {webui}; stop it first")
        pids.append(master)
        for n in range(1, workers + 1):
            name = f"worker-{n}"
            pid = _running_pid(base, name)
            if pid is None:
                work = base / name / "work"
                work.mkdir(parents=True, exist_ok=True)
                pid = _launch(base, name, [
                    WORKER_CLASS, master_url, "--host", HOST, "--webui-port", str(webui_port + n if worker_webui_ports else 0),
                    "--cores", str(WORKER_CORES), "--memory", WORKER_MEMORY, "--work-dir", str(work),
                ])
            pids.append(pid)
        _wait(lambda: alive_workers(webui) >= workers, deadline, base, "worker-1")
    return SparkCluster(master_url, webui, base, tuple(pids))


def stop(base_dir: Path | None = None, timeout: float = 30) -> None:
    """Stop the workers (they stop their executors), then the master; nothing running is fine."""
    base = process.resolve_base(SERVICE, base_dir)
    if not base.is_dir():
        return
    with process.locked(base / f".{SERVICE}.lock"):
        names = sorted((p.stem for p in base.glob("*.pid")), key=lambda n: n == "master")
        for name in names:
            pid = _running_pid(base, name)
            if pid is not None:
                process.terminate(f"{SERVICE} {name}", pid, timeout)
            process.forget(pid)
            (base / f"{name}.pid").unlink(missing_ok=True)


def running_cluster(base_dir: Path | None = None) -> SparkCluster | None:
    """The cluster of `base_dir` if its master runs (with whatever workers it has)."""
    base = process.resolve_base(SERVICE, base_dir)
    master = _running_pid(base, "master")
    if master is None:
        return None
    args = process.cmdline(master)
    port = args[args.index("--port") + 1] if "--port" in args else str(DEFAULT_PORT)
    webui = args[args.index("--webui-port") + 1] if "--webui-port" in args else str(DEFAULT_WEBUI_PORT)
    workers = tuple(pid for p in sorted(base.glob("worker-*.pid")) if (pid := _running_pid(base, p.stem)))
    return SparkCluster(f"spark://{HOST}:{port}", f"http://{HOST}:{webui}", base, (master, *workers))


def status(base_dir: Path | None = None) -> bool:
    return running_cluster(base_dir) is not None


def alive_workers(webui: str) -> int:
    """How many workers the master's JSON status lists as ALIVE (0 when it does not answer)."""
    state = _status(webui)
    return sum(1 for w in (state or {}).get("workers", []) if w.get("state") == "ALIVE")


def _status(webui: str) -> dict | None:
    try:
        with urllib.request.urlopen(f"{webui}/json/", timeout=2) as answer:
            return json.load(answer)
    except (urllib.error.URLError, OSError, ValueError):
        return None


def _log(base: Path, name: str) -> Path:
    return base / name / f"{name}.log" if name.startswith("worker") else process.log_file(base, SERVICE)


def _running_pid(base: Path, name: str) -> int | None:
    """Pid of the daemon `name` of `base`, if that process still is a Spark daemon of `base`."""
    pid = process.read_pid(base / f"{name}.pid")
    if pid is None or not process.alive(pid):
        return None
    cmd = process.cmdline(pid)
    if cmd and not any(c in cmd for c in (MASTER_CLASS, WORKER_CLASS)):
        return None
    return pid


def _launch(base: Path, name: str, args: list[str]) -> int:
    home = spark_home()
    log = _log(base, name)
    log.parent.mkdir(parents=True, exist_ok=True)
    env = os.environ | {
        "SPARK_HOME": str(home),
        "SPARK_LOCAL_IP": HOST,
        "SPARK_LOG_DIR": str(log.parent),
        "SPARK_DAEMON_MEMORY": DAEMON_MEMORY,
        # Finished applications' folders (their logs and the unpacked Python environment)
        # are removed an hour after they end, checked every 10 minutes.
        "SPARK_WORKER_OPTS": "-Dspark.worker.cleanup.enabled=true -Dspark.worker.cleanup.interval=600 "
                             "-Dspark.worker.cleanup.appDataTtl=3600",
    }
    env.pop("SPARK_CONF_DIR", None)  # the daemons use Spark's defaults, not the jobs' conf/
    if shutil.which("java", path=env.get("PATH")) is None and "JAVA_HOME" not in env:
        raise RuntimeError("java not found: the Spark daemons need Java 17+")
    # spark-class execs java, so the pid is the daemon's.
    child = process.launch([str(home / "bin" / "spark-class"), *args], cwd=base, env=env, log=log)
    process.write_pid(base / f"{name}.pid", child.pid)
    return child.pid


def _wait(check, deadline: float, base: Path, name: str) -> None:
    if not process.wait_until(check, max(deadline - time.monotonic(), 0.1), interval=0.25):
        log = _log(base, name)
        raise RuntimeError(f"spark {name} not ready in time\n--- last lines of {log} ---\n{process.tail(log)}")


# --- CLI ---------------------------------------------------------------------------------


def _up(base: Path, args: argparse.Namespace) -> str:
    cluster = start(base, port=args.port, webui_port=args.webui_port, workers=args.workers, timeout=args.timeout)
    return f"{cluster.master_url} ({cluster.alive_workers()} workers ALIVE, status {cluster.webui}/json/)"


def _where(base: Path) -> str | None:
    cluster = running_cluster(base)
    return None if cluster is None else f"{cluster.master_url} ({cluster.alive_workers()} workers ALIVE)"


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="master RPC port (up only)")
    parser.add_argument("--webui-port", type=int, default=DEFAULT_WEBUI_PORT, help="master web UI port; workers use the next ones")
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS, help="how many workers (up only)")


CLI = process.ServiceCli(
    SERVICE,
    "Run the local Spark standalone cluster (a master and its workers) on loopback.",
    90,
    _arguments,
    _up,
    _where,
    stop,
)


main = CLI.main


if __name__ == "__main__":
    raise SystemExit(main())
