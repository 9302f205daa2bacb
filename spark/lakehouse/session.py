"""The one SparkSession factory: Delta enabled, project jars, conf/ settings, S3A from config.

Jobs, tests and notebooks all call `get_spark()`; it is the only place a session is built.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pyspark.sql import SparkSession

from lakehouse.config import Config, load_config


def _prepare_environment(config: Config) -> None:
    # Must be set before the JVM starts: spark-defaults.conf and log4j2.properties are
    # read from SPARK_CONF_DIR, and Python workers must run this venv's interpreter.
    os.environ.setdefault("SPARK_CONF_DIR", str(config.root / "conf"))
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    os.environ.setdefault("LAKEHOUSE_HOME", str(config.root))
    if config.spark_master.startswith("local"):
        # Without it the driver resolves the host name first (seconds, and a warning).
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")


def jar_paths(config: Config) -> list[str]:
    """The jars fetched by `python -m lakehouse.jars`; fails loudly when they are missing."""
    jars = sorted(str(p) for p in Path(config.jars_dir).glob("*.jar"))
    if not any("delta-spark" in j for j in jars):
        raise RuntimeError(
            f"Delta jars not found in {config.jars_dir}: run `make setup` "
            "(or `python -m lakehouse.jars`) first"
        )
    return jars


def get_spark(
    config: Config | None = None,
    app_name: str | None = None,
    extra_conf: dict[str, str] | None = None,
) -> SparkSession:
    """Build (or return the running) Delta-enabled SparkSession for `config`."""
    config = config or load_config()
    _prepare_environment(config)
    builder = (
        SparkSession.builder.appName(app_name or config.app_name)
        .master(os.environ.get("LAKEHOUSE_SPARK_MASTER", config.spark_master))
        .config("spark.jars", ",".join(jar_paths(config)))
        .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
        .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.warehouse.dir", str(config.root / ".data" / "spark-warehouse"))
        .config("spark.driver.extraJavaOptions", "-Dderby.system.home=" + str(config.root / ".data"))
    )
    if config.warehouse.startswith("s3a://") or config.s3.access_key:
        builder = (
            builder.config("spark.hadoop.fs.s3a.endpoint", config.s3.endpoint)
            .config("spark.hadoop.fs.s3a.endpoint.region", config.s3.region)
            .config("spark.hadoop.fs.s3a.path.style.access", "true")
            .config("spark.hadoop.fs.s3a.connection.ssl.enabled", str(config.s3.endpoint.startswith("https")).lower())
        )
        if config.s3.access_key and config.s3.secret_key:
            builder = builder.config("spark.hadoop.fs.s3a.access.key", config.s3.access_key).config(
                "spark.hadoop.fs.s3a.secret.key", config.s3.secret_key
            )
    for key, value in (extra_conf or {}).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark
