"""What a Spark cluster's executors need to run the lakehouse's Python code.

    python -m lakehouse.executor_env        # (make setup) -> dist/executor-env.tar.gz, once

On a cluster the executors run on other machines with nothing of ours installed, so the
Python side travels with each application, the way Spark documents for real clusters
("Python Package Management": `spark.archives` with a packed virtual environment):

- `dist/executor-env.tar.gz`: a virtual environment with the third-party packages the
  executors import (pandas, pyarrow, user-agents, maxminddb, apachelogs, ...), packed with
  venv-pack. Built by `make setup` and rebuilt only when pyproject.toml changes. pyspark
  itself is left out: executors put the cluster's own `pyspark.zip` on their path, and
  its 400 MB of jars would make every application slower to start.
- the `lakehouse` package as a zip, made from the driver's installed package when a
  session starts (`package_zip`), so executors always run the driver's code, never a
  stale build.

The packed environment's `bin/python` links to this machine's interpreter
(the Python `make setup` ran with): workers need that same Python at that path, as with any
venv-pack archive. `session.get_spark` ships both when `spark.executor_env` is set
(the `cluster` profile).
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

from lakehouse.config import project_root

# Driver-only packages (object store, Kafka and MongoDB clients, the Delta Python API,
# pyspark itself, matplotlib for the HTML report's charts, and the GeoIP database, which
# the job ships with SparkContext.addFile): executors never import them.
DRIVER_ONLY = {
    "pyspark", "delta-spark", "boto3", "confluent-kafka", "pymongo", "maxminddb-geolite2", "matplotlib",
}
# Left out of the archive: what executors never load (tests, C headers, and the parts of
# pyarrow that Arrow's data exchange with the JVM does not use: Flight RPC, Gandiva,
# S3). A third of its size, and each executor unpacks it at each application's start.
EXCLUDE = (
    "*/tests/*", "*/pyarrow/include/*", "*/pyarrow/*flight*",
    "*/pyarrow/*_s3*", "*/pyarrow/*gandiva*", "*/__pycache__/*",
)
ARCHIVE_NAME = "executor-env.tar.gz"


def archive_path(root: Path | None = None) -> Path:
    return (root or project_root()) / "dist" / ARCHIVE_NAME


def executor_requirements(pyproject: Path) -> list[str]:
    """The pinned runtime dependencies of `pyproject` that executors import."""
    deps = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    return [d for d in deps if d.split("==")[0].split(">")[0].split("<")[0].strip().lower() not in DRIVER_ONLY]


def build(root: Path | None = None, force: bool = False) -> Path:
    """Build `dist/executor-env.tar.gz` unless the one there was made from this pyproject.toml."""
    import venv_pack  # a build-time tool (dev extra), not needed to run jobs

    root = root or project_root()
    pyproject = root / "pyproject.toml"
    requirements = executor_requirements(pyproject)
    stamp = hashlib.sha256("\n".join([*requirements, *EXCLUDE]).encode()).hexdigest()[:16]
    out = archive_path(root)
    stamp_file = out.with_suffix(".sha256")
    if not force and out.is_file() and stamp_file.is_file() and stamp_file.read_text().strip() == stamp:
        return out
    venv_dir = root / ".data" / "executor-venv"
    shutil.rmtree(venv_dir, ignore_errors=True)
    venv_dir.parent.mkdir(parents=True, exist_ok=True)
    print(f"executor env: {len(requirements)} packages -> {out}", flush=True)
    # The base interpreter, not this venv's python: the packed env links to it.
    base_python = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base_python, "-m", "venv", "--without-pip", str(venv_dir)], check=True)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv_dir / "bin" / "python"), "install", "-q",
                    *requirements], check=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    venv_pack.pack(prefix=str(venv_dir), output=str(out), force=True, compress_level=1,
                   filters=[("exclude", pattern) for pattern in EXCLUDE])
    stamp_file.write_text(stamp + "\n")
    shutil.rmtree(venv_dir, ignore_errors=True)
    return out


def package_zip(dest_dir: Path) -> Path:
    """The installed `lakehouse` package as `<dest_dir>/lakehouse-<hash>.zip` (for addPyFile).

    Named by the hash of its contents: an unchanged package reuses the zip, and a session
    never ships a zip another process is rewriting.
    """
    package = Path(__file__).parent
    files = sorted(p for p in package.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    out = dest_dir / f"lakehouse-{digest.hexdigest()[:16]}.zip"
    if not out.is_file():
        dest_dir.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in files:
                zf.write(path, Path("lakehouse") / path.relative_to(package))
        tmp.replace(out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lakehouse.executor_env", description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    args = parser.parse_args(argv)
    print(build(force=args.force))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
