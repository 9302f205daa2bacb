"""Fetch the extra JVM jars (Delta, Kafka, S3A, JDBC) pinned in conf/jars.pom.xml.

    python -m lakehouse.jars            # into <project>/.jars, once; reruns are no-ops

Maven resolves the POM into a project folder (its ~/.m2 cache is reused by later
runs); jars that pyspark already bundles are then removed, because two versions of
netty/slf4j/lz4 on one classpath fail in odd ways.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pyspark

from lakehouse.config import project_root

_VERSION_SUFFIX = re.compile(r"-\d[\w.\-]*$")


def _artifact(jar_name: str) -> str:
    return _VERSION_SUFFIX.sub("", jar_name.removesuffix(".jar"))


def bundled_artifacts() -> set[str]:
    """Artifact names (without versions) of the jars pyspark ships."""
    return {_artifact(p.name) for p in (Path(pyspark.__file__).parent / "jars").glob("*.jar")}


def fetch(root: Path | None = None, quiet: bool = False) -> Path:
    """Resolve conf/jars.pom.xml into <root>/.jars unless that was done for this POM already."""
    root = root or project_root()
    pom = root / "conf" / "jars.pom.xml"
    target = root / ".jars"
    stamp = target / ".pom.sha256"
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()
    if stamp.is_file() and stamp.read_text().strip() == digest and any(target.glob("*.jar")):
        return target
    if shutil.which("mvn") is None:
        raise SystemExit("mvn not found: install Maven (apt-get install maven) to fetch the jars")
    staging = root / ".jars.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    cmd = ["mvn", "-B", "-q", "-f", str(pom), "dependency:copy-dependencies",
           f"-DoutputDirectory={staging}", "-DincludeScope=runtime"]
    if not quiet:
        print(f"jars: resolving {pom.relative_to(root)} with Maven ...", flush=True)
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"jars: Maven failed ({' '.join(cmd)}):\n{done.stdout}\n{done.stderr}")
    bundled = bundled_artifacts()
    for jar in staging.glob("*.jar"):
        if _artifact(jar.name) in bundled:
            jar.unlink()
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    stamp.write_text(digest + "\n")
    if not quiet:
        print(f"jars: {len(list(target.glob('*.jar')))} jars in {target}", flush=True)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lakehouse.jars", description=__doc__.splitlines()[0])
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    fetch(quiet=args.quiet)
    return 0


if __name__ == "__main__":
    sys.exit(main())
