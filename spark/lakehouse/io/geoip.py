"""The GeoIP database: where it is, which build it is, and shipping it to the executors.

The database (a MaxMind City `.mmdb`) is sent to every executor the way Spark ships
files (`SparkContext.addFile`), so the lookups run where the data is, on a cluster too;
each executor's Python worker opens it once (memory-mapped) and keeps it open.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import urlparse

from pyspark import SparkFiles
from pyspark.sql import SparkSession


def default_database() -> str:
    """Path of the GeoLite2-City.mmdb that the maxminddb-geolite2 package ships (2018)."""
    # The package installs its data as the `_maxminddb_geolite2` folder (no __init__).
    import geolite2

    return str(Path(geolite2.__file__).parent / "_maxminddb_geolite2" / "GeoLite2-City.mmdb")


def database_path(configured: str | None) -> str:
    """The configured database, or the embedded default."""
    return configured or default_database()


def build_of(path: str) -> str:
    """`"<database type> build <epoch>"`: changes with every new release of the database."""
    import maxminddb

    with maxminddb.open_database(path) as reader:
        meta = reader.metadata()
        return f"{meta.database_type} build {meta.build_epoch}"


@cache
def _open(path: str):
    import maxminddb

    return maxminddb.open_database(path)


@dataclass(frozen=True)
class ShippedDatabase:
    """A database shipped with `ship`: call it on an executor to get an open reader."""

    name: str
    local_path: str | None = None  # in local mode: the driver's own file, read in place

    def __call__(self):
        return _open(self.local_path or SparkFiles.get(self.name))


def ship(spark: SparkSession, path: str) -> ShippedDatabase:
    """Send the database at `path` (local or any Hadoop path) to the executors, once per session.

    In local mode a local file is read where it is: `addFile` would copy it into the folder
    that local mode's executor also fetches into, and a task of another job started during
    that copy (the feeds' silver steps run in parallel) fails on the half-copied file
    ("exists and does not match contents").
    """
    name = path.rstrip("/").rsplit("/", 1)[-1]
    where = urlparse(path)
    if spark.sparkContext.master.startswith("local") and where.scheme in ("", "file") and Path(where.path).is_file():
        return ShippedDatabase(name, where.path)
    files = spark.sparkContext.listFiles  # the files added so far (URIs)
    if not any(f.rstrip("/").endswith("/" + name) for f in files):
        spark.sparkContext.addFile(path)
    return ShippedDatabase(name)
