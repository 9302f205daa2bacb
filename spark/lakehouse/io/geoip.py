"""The GeoIP database: where it is, which build it is, and shipping it to the executors.

The database (a MaxMind City `.mmdb`) is sent to every executor the way Spark ships
files (`SparkContext.addFile`), so the lookups run where the data is, on a cluster too;
each executor's Python worker opens it once (memory-mapped) and keeps it open.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

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

    def __call__(self):
        return _open(SparkFiles.get(self.name))


def ship(spark: SparkSession, path: str) -> ShippedDatabase:
    """Send the database at `path` (local or any Hadoop path) to the executors, once per session."""
    name = path.rstrip("/").rsplit("/", 1)[-1]
    files = spark.sparkContext.listFiles  # the files added so far (URIs)
    if not any(f.rstrip("/").endswith("/" + name) for f in files):
        spark.sparkContext.addFile(path)
    return ShippedDatabase(name)
