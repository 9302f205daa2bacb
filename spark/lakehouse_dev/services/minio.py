"""A real local MinIO server (S3 API) for tests and `make services-up` (no Docker needed).

    python -m lakehouse_dev.services.minio up|down|status [--port N] [--base-dir DIR]

The MinIO community edition is distributed as source only, so the server is built once per
machine with `go install github.com/minio/minio@<VERSION>` (Go >= 1.24 on the PATH, pure Go,
a few minutes on 2 cores) into `~/.cache/lakehouse/minio/<VERSION>/minio`, outside the
checkout so that clean clones reuse it; Go's own module and build caches are reused as well.

State lives in one base dir (default `<project root>/.data/minio`): the objects in `data/`,
the server log in `minio.log`, the pid (and ports) in `minio.pid`. The server listens on
127.0.0.1 only: the S3 API on port 19000, the web console on 19001. The root credentials
come from LAKEHOUSE_S3_ACCESS_KEY / LAKEHOUSE_S3_SECRET_KEY (the variables conf/lakehouse.yaml
names for Spark), else the documented dev defaults below. Objects survive stop/start.

From Python: `server = start(); s3_client(server).list_buckets(); stop()`.
"""

from __future__ import annotations

import argparse
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lakehouse_dev.services import process

SERVICE = "minio"
HOST = "127.0.0.1"
DEFAULT_PORT = 19000
DEFAULT_CONSOLE_PORT = 19001
DEFAULT_BUCKETS = ("lakehouse",)
REGION = "us-east-1"
MODULE = "github.com/minio/minio"
# The newest version the Go module proxy serves. MinIO's RELEASE.* tags are not semver, so
# the proxy lists no versions and only `@latest` resolves: the last commit of the (now
# archived) repository, after the final tag RELEASE.2025-10-15T17-29-55Z (commit 9e49d5e7),
# which the proxy reachable here refuses (403) by tag, commit or pseudo-version.
VERSION = "v0.0.0-20260212201848-7aac2a2c5b7c"
ACCESS_KEY_ENV = "LAKEHOUSE_S3_ACCESS_KEY"
SECRET_KEY_ENV = "LAKEHOUSE_S3_SECRET_KEY"
# A throwaway server on loopback holding only test and demo data, so fixed, documented
# defaults are fine here; anything real sets LAKEHOUSE_S3_ACCESS_KEY / _SECRET_KEY.
# MinIO wants >= 3 characters for the user and >= 8 for the password.
DEV_ACCESS_KEY = "lakehouse"
DEV_SECRET_KEY = "lakehouse-dev"
PID_FILE = "minio.pid"


@dataclass(frozen=True)
class MinioServer:
    """A running server: S3 endpoint, root credentials, state folder and pid."""

    endpoint: str
    access_key: str
    secret_key: str = field(repr=False)
    base_dir: Path
    pid: int

    @property
    def port(self) -> int:
        return int(self.endpoint.rsplit(":", 1)[1])

    @property
    def region(self) -> str:
        return REGION

    @property
    def log_file(self) -> Path:
        return process.log_file(self.base_dir, SERVICE)


@dataclass(frozen=True)
class _State:
    pid: int
    port: int
    console_port: int


def binary_path() -> Path:
    """Where `ensure_built` puts the server binary: `~/.cache/lakehouse/minio/<VERSION>/minio`."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "lakehouse" / SERVICE / VERSION / "minio"


def credentials() -> tuple[str, str]:
    """The root (access key, secret key): from the environment, else the dev defaults."""
    return (
        os.environ.get(ACCESS_KEY_ENV) or DEV_ACCESS_KEY,
        os.environ.get(SECRET_KEY_ENV) or DEV_SECRET_KEY,
    )


def ensure_built() -> Path:
    """The MinIO server binary, built with `go install` on first use (minutes; later:
    instant); RuntimeError when Go is missing or the build fails (process.go_build)."""
    return process.go_build(
        binary_path(), f"MinIO {VERSION}",
        lambda go, work: ([go, "install", f"{MODULE}@{VERSION}"],),
    )


def start(
    base_dir: Path | None = None,
    port: int = DEFAULT_PORT,
    console_port: int = DEFAULT_CONSOLE_PORT,
    buckets: Iterable[str] = DEFAULT_BUCKETS,
    timeout: float = 60,
) -> MinioServer:
    """Start (or reuse) the server of `base_dir` and make sure `buckets` exist.

    Idempotent: a server already running for `base_dir` on `port` is reused. Builds the
    binary first if needed (not counted in `timeout`). Raises RuntimeError, with the server
    log's tail where useful, when a port is taken by another process, the server exits or
    is not ready within `timeout` seconds, or it rejects the credentials (a server started
    with other keys: stop it first).
    """
    base = process.resolve_base(SERVICE, base_dir)
    buckets = (buckets,) if isinstance(buckets, str) else tuple(buckets)
    access_key, secret_key = credentials()
    state = _running(base)
    if state is None:
        binary = ensure_built()
        deadline = time.monotonic() + timeout
        pid = _launch(binary, base, port, console_port, access_key, secret_key)
    elif state.port != port:
        raise RuntimeError(
            f"minio of {base} is already running on port {state.port}, not {port}; "
            "stop it first or use that port"
        )
    else:
        deadline = time.monotonic() + timeout
        pid = state.pid
    _wait_ready(base, pid, port, deadline)
    server = MinioServer(f"http://{HOST}:{port}", access_key, secret_key, base, pid)
    _ensure_buckets(server, buckets)
    return server


def stop(base_dir: Path | None = None, timeout: float = 30, kill: bool = False) -> None:
    """Stop the server of `base_dir`: SIGTERM (graceful) or, with `kill`, SIGKILL.

    Does nothing if it is not running. Raises RuntimeError if it is still alive after
    `timeout` seconds (then try `kill=True`).
    """
    base = process.resolve_base(SERVICE, base_dir)
    state = _running(base)
    if state is None:
        _pid_file(base).unlink(missing_ok=True)
        return
    process.stop_pid(
        f"minio of {base}", state.pid, HOST, (state.port, state.console_port),
        timeout=timeout, kill=kill, log=_log(base), pid_file=_pid_file(base),
    )


def status(base_dir: Path | None = None) -> bool:
    """Whether the server of `base_dir` is running (its pid file names a live minio)."""
    return _running(process.resolve_base(SERVICE, base_dir)) is not None


def s3_client(server: MinioServer, timeout: float = 10) -> Any:
    """A boto3 S3 client for `server` (path-style addressing, the server's region)."""
    import boto3
    from botocore.config import Config as BotoConfig

    return boto3.client(
        "s3",
        endpoint_url=server.endpoint,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        region_name=server.region,
        config=BotoConfig(
            s3={"addressing_style": "path"},
            connect_timeout=timeout,
            read_timeout=timeout,
            retries={"max_attempts": 3, "mode": "standard"},
        ),
    )


# --- internals ---------------------------------------------------------------------------


def _data_dir(base: Path) -> Path:
    return base / "data"


def _log(base: Path) -> Path:
    return process.log_file(base, SERVICE)


def _pid_file(base: Path) -> Path:
    return base / PID_FILE


def _running(base: Path) -> _State | None:
    """The live server of `base`, from its pid file (pid, port, console port)."""
    try:
        pid, port, console_port = (int(x) for x in _pid_file(base).read_text().split()[:3])
    except (OSError, ValueError):
        return None
    if not process.alive(pid):
        return None
    # Guard against pid reuse: the process must be a minio serving this data dir.
    cmdline = process.cmdline(pid)
    if cmdline and str(_data_dir(base)) not in cmdline:
        return None
    return _State(pid, port, console_port)


def _server_env(access_key: str, secret_key: str) -> dict[str, str]:
    # Inherited MINIO_* settings (volumes, TLS, KMS, ...) could change what starts: drop them.
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINIO_")}
    return env | {
        "MINIO_ROOT_USER": access_key,
        "MINIO_ROOT_PASSWORD": secret_key,
        "MINIO_REGION": REGION,
        "MINIO_SITE_REGION": REGION,
        # No update check against dl.min.io (no internet needed, no nag in the log).
        "MINIO_UPDATE": "off",
        # No call-home to SUBNET (off by default; stated so it stays off).
        "MINIO_CALLHOME_ENABLE": "off",
        # Test/dev mode: a 256 MiB buffer pool instead of up to half the RAM, no refusal of
        # a data dir on the root disk, deleted objects purged at once.
        "MINIO_CI_CD": "1",
    }


def _launch(
    binary: Path, base: Path, port: int, console_port: int, access_key: str, secret_key: str
) -> int:
    """Check the ports, prepare the base dir and start `minio server` detached; its pid."""
    if len(secret_key) < 8 or len(access_key) < 3:
        raise RuntimeError(
            f"MinIO needs an access key of >= 3 and a secret key of >= 8 characters "
            f"(check {ACCESS_KEY_ENV} / {SECRET_KEY_ENV})"
        )
    log = _log(base)
    process.refuse_taken(f"minio of {base}", HOST, (port, console_port), log)
    base.mkdir(parents=True, exist_ok=True)
    base.chmod(0o700)  # objects and the server config are for this account only
    data = _data_dir(base)
    data.mkdir(exist_ok=True)
    cmd = [
        str(binary), "server", str(data),
        "--address", f"{HOST}:{port}", "--console-address", f"{HOST}:{console_port}",
    ]
    proc = process.launch(cmd, cwd=base, env=_server_env(access_key, secret_key), log=log)
    _pid_file(base).write_text(f"{proc.pid}\n{port}\n{console_port}\n")
    return proc.pid


_no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _healthy(port: int, probe: str) -> bool:
    """GET /minio/health/<probe> (live: process up; ready: can serve requests) answers 200."""
    try:
        with _no_proxy.open(f"http://{HOST}:{port}/minio/health/{probe}", timeout=2) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _wait_ready(base: Path, pid: int, port: int, deadline: float) -> None:
    process.wait_started(
        f"minio of {base} on {HOST}:{port}", pid, lambda: _healthy(port, "live") and _healthy(port, "ready"),
        deadline, log=_log(base), pid_file=_pid_file(base),
    )


def _ensure_buckets(server: MinioServer, buckets: Iterable[str]) -> None:
    from botocore.exceptions import ClientError

    client = s3_client(server)
    # With no bucket to create, list them: the credentials are checked either way.
    for bucket in list(buckets) or [None]:
        try:
            if bucket is None:
                client.list_buckets()
            else:
                client.create_bucket(Bucket=bucket)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                continue
            if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied"):
                raise RuntimeError(
                    f"minio of {server.base_dir} rejects access key {server.access_key!r} "
                    f"({code}): it runs with other credentials than {ACCESS_KEY_ENV} / "
                    f"{SECRET_KEY_ENV} give now; stop it and start again"
                ) from None
            raise RuntimeError(
                f"cannot create bucket {bucket!r} on {server.endpoint}: {exc}"
            ) from None


# --- CLI ---------------------------------------------------------------------------------


def _up(base: Path, args: argparse.Namespace) -> str:
    server = start(base, port=args.port, console_port=args.console_port, timeout=args.timeout)
    state = _running(base)
    console = f", console http://{HOST}:{state.console_port}" if state else ""
    return f"{server.endpoint}{console} access_key={server.access_key} pid={server.pid}"


def _where(base: Path) -> str | None:
    state = _running(base)
    return None if state is None else f"http://{HOST}:{state.port} pid={state.pid}"


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="S3 API port (up only)")
    parser.add_argument("--console-port", type=int, default=DEFAULT_CONSOLE_PORT, help="web console port (up only)")


CLI = process.ServiceCli(
    SERVICE,
    "Run the local MinIO (S3) server used by tests and `make services-up`.",
    60,
    _arguments,
    _up,
    _where,
    stop,
    killable=True,
    data_dir=_data_dir,
)


main = CLI.main


if __name__ == "__main__":
    raise SystemExit(main())
