"""A real local Prometheus (and promtool) for the monitoring tests (no Docker needed).

    python -m lakehouse_dev.services.prometheus install     # the binaries; prints their folder

Debian's `prometheus` package is unpacked once per machine into
`~/.cache/lakehouse/prometheus/<version>/` (`apt-get download` + `dpkg -x`: installing it
would register and start a system service), outside the checkout so clean clones reuse it;
a `prometheus` and `promtool` already on the PATH are used as they are.

From Python: `server = start(base_dir, config_file)`, then its HTTP API at `server.url`
(`query(server, "up")`), and `stop(base_dir)`. State lives in `base_dir`: the TSDB in
`data/`, the log in `prometheus.log`, the pid in `prometheus.pid`; it listens on 127.0.0.1.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from lakehouse_dev.services import process

SERVICE = "prometheus"
HOST = "127.0.0.1"
PACKAGE = "prometheus"
CACHE = Path.home() / ".cache" / "lakehouse" / "prometheus"


@dataclass(frozen=True)
class PrometheusServer:
    url: str
    port: int
    base_dir: Path
    pid: int


def _candidate_version() -> str:
    out = subprocess.run(["apt-cache", "policy", PACKAGE], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if line.strip().startswith("Candidate:"):
            version = line.split(":", 1)[1].strip()
            if version and version != "(none)":
                return version
    raise RuntimeError(f"apt knows no {PACKAGE} package (run `apt-get update`?):\n{out}")


def binaries() -> Path:
    """The folder holding `prometheus` and `promtool`: the PATH's, else Debian's package
    unpacked into the cache (downloaded on first use)."""
    on_path = shutil.which("prometheus"), shutil.which("promtool")
    if all(on_path):
        return Path(on_path[0]).parent
    existing = sorted(CACHE.glob("*/usr/bin/promtool"))
    if existing:
        return existing[-1].parent
    version = _candidate_version()
    target = CACHE / version.replace(":", "_")
    process.progress(f"prometheus: downloading Debian's {PACKAGE} {version} into {target}")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["apt-get", "download", "-q", f"{PACKAGE}={version}"], cwd=tmp, check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        (deb,) = Path(tmp).glob("*.deb")
        unpacked = Path(tmp) / "root"
        subprocess.run(["dpkg-deb", "-x", str(deb), str(unpacked)], check=True)
        # The two Go binaries are all the tests need (the web UI's assets are links to other packages).
        shutil.copytree(unpacked / "usr" / "bin", target / "usr" / "bin", dirs_exist_ok=True)
    return target / "usr" / "bin"


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`promtool <args>`, its output captured (not checked: the caller reads it)."""
    return subprocess.run([str(binaries() / "promtool"), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/-/ready", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def start(base_dir: Path, config_file: Path, port: int | None = None, timeout: float = 60) -> PrometheusServer:
    """Start Prometheus on `config_file` (its rule files relative to it), on a free port unless given."""
    base = Path(base_dir).absolute()
    (base / "data").mkdir(parents=True, exist_ok=True)
    port = port or process.free_ports()[0]
    log, pid_file = process.log_file(base, SERVICE), base / f"{SERVICE}.pid"
    cmd = [
        str(binaries() / "prometheus"),
        f"--config.file={config_file}",
        f"--storage.tsdb.path={base / 'data'}",
        f"--web.listen-address={HOST}:{port}",
        "--web.enable-lifecycle",
    ]
    child = process.launch(cmd, cwd=base, env={"PATH": "/usr/bin:/bin"}, log=log)
    process.write_pid(pid_file, child.pid)
    process.wait_started(SERVICE, child.pid, lambda: _ready(port), time.monotonic() + timeout, log=log, pid_file=pid_file)
    return PrometheusServer(f"http://{HOST}:{port}", port, base, child.pid)


def stop(base_dir: Path, kill: bool = False) -> None:
    """Stop the Prometheus of `base_dir`, if one runs."""
    base = Path(base_dir).absolute()
    pid_file = base / f"{SERVICE}.pid"
    pid = process.read_pid(pid_file)
    if pid is None or not process.alive(pid):
        pid_file.unlink(missing_ok=True)
        return
    process.stop_pid(SERVICE, pid, HOST, (), timeout=30, kill=kill, log=process.log_file(base, SERVICE), pid_file=pid_file)


def api(server: PrometheusServer, path: str, **params: str) -> dict | list:
    """GET `/api/v1/<path>` and return its `data` (RuntimeError on an error answer)."""
    url = f"{server.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=10) as response:
        body = json.load(response)
    if body.get("status") != "success":
        raise RuntimeError(f"{url}: {body}")
    return body["data"]


def query(server: PrometheusServer, expr: str) -> list[dict]:
    """The instant vector of `expr` now: [{"metric": {...}, "value": [t, "v"]}, ...]."""
    return api(server, "query", query=expr)["result"]


def main(argv: list[str]) -> int:
    if argv[:1] != ["install"]:
        print("usage: python -m lakehouse_dev.services.prometheus install", file=sys.stderr)
        return 2
    print(binaries())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
