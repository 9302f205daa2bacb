"""Fetch the extra JVM jars (Delta, Kafka, S3A, JDBC) pinned in conf/jars.pom.xml.

    python -m lakehouse.jars            # into <project>/.jars, once; reruns are no-ops

Maven resolves the POM into a project folder (its ~/.m2 cache is reused by later
runs); jars that pyspark already bundles are then removed, because two versions of
netty/slf4j/lz4 on one classpath fail in odd ways.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pyspark

from lakehouse.config import project_root

_VERSION_SUFFIX = re.compile(r"-\d[\w.\-]*$")


def _artifact(jar_name: str) -> str:
    return _VERSION_SUFFIX.sub("", jar_name.removesuffix(".jar"))


def bundled_artifacts() -> set[str]:
    """Artifact names (without versions) of the jars pyspark ships."""
    return {_artifact(p.name) for p in (Path(pyspark.__file__).parent / "jars").glob("*.jar")}


def resolve_pom(
    pom: Path,
    target: Path,
    *,
    prune: Callable[[Path], None] | None = None,
    label: str = "jars",
    quiet: bool = False,
    lock_file: Path | None = None,
) -> Path:
    """Copy the runtime dependencies of `pom` into `target` unless done for this POM already.

    A `.pom.sha256` stamp in `target` records the POM they came from, so an edited POM is
    resolved again. Maven copies into a sibling staging dir, `prune(staging)` may drop jars,
    and the result replaces `target` in one rename. With `lock_file`, concurrent callers (two
    test sessions, a CLI and a test) are serialised by an flock on it.

    Raises RuntimeError when Maven is missing or fails.
    """
    stamp = target / ".pom.sha256"
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()

    def done() -> bool:
        return stamp.is_file() and stamp.read_text().strip() == digest and any(target.glob("*.jar"))

    if done():
        return target
    if shutil.which("mvn") is None:
        raise RuntimeError("mvn not found: install Maven (apt-get install maven) to fetch the jars")
    target.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        if lock_file is not None:
            lock = stack.enter_context(open(lock_file, "w"))
            fcntl.flock(lock, fcntl.LOCK_EX)
            if done():  # fetched by whoever held the lock before us
                return target
        staging = target.with_name(target.name + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        cmd = ["mvn", "-B", "-q", "-f", str(pom), "dependency:copy-dependencies",
               f"-DoutputDirectory={staging}", "-DincludeScope=runtime"]
        if not quiet:
            print(f"{label}: resolving {pom} with Maven ...", flush=True)
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{label}: Maven failed ({' '.join(cmd)}):\n{proc.stdout}\n{proc.stderr}")
        if prune is not None:
            prune(staging)
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
        stamp.write_text(digest + "\n")
    if not quiet:
        print(f"{label}: {len(list(target.glob('*.jar')))} jars in {target}", flush=True)
    return target


def _drop_bundled(staging: Path) -> None:
    bundled = bundled_artifacts()
    for jar in staging.glob("*.jar"):
        if _artifact(jar.name) in bundled:
            jar.unlink()


def fetch(root: Path | None = None, quiet: bool = False) -> Path:
    """Resolve conf/jars.pom.xml into <root>/.jars unless that was done for this POM already."""
    root = root or project_root()
    try:
        return resolve_pom(root / "conf" / "jars.pom.xml", root / ".jars", prune=_drop_bundled,
                           quiet=quiet)
    except RuntimeError as exc:
        raise SystemExit(str(exc)) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lakehouse.jars", description=__doc__.splitlines()[0])
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    fetch(quiet=args.quiet)
    return 0


if __name__ == "__main__":
    sys.exit(main())
