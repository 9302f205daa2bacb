"""The one SparkSession factory: Delta enabled, project jars, conf/ settings, S3A from config.

Jobs, tests and notebooks all call `get_spark()`; it is the only place a session is built.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pyspark.sql import SparkSession

from lakehouse.config import Config, S3Config, load_config
from lakehouse.executor_env import package_zip

# HotSpot does not compile methods over 8,000 bytes of bytecode by default: the one method
# Spark generates for the silver parse (regex, split, typing, checks) is over it, and
# interpreted it ran 2-3x slower (2M lines: 21 s against 9 s). Also set for executors in
# conf/spark-defaults.conf.
JIT_OPTIONS = "-XX:-DontCompileHugeMethods"
# Where executors unpack the packed Python environment (`spark.archives ...#<this>`).
EXECUTOR_ENV_DIR = "environment"


def _prepare_environment(config: Config) -> None:
    # Must be set before the JVM starts: spark-defaults.conf and log4j2.properties are
    # read from SPARK_CONF_DIR, and Python workers must run this venv's interpreter.
    os.environ.setdefault("SPARK_CONF_DIR", str(config.root / "conf"))
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    os.environ.setdefault("LAKEHOUSE_HOME", str(config.root))
    master = os.environ.get("LAKEHOUSE_SPARK_MASTER", config.spark_master)
    if master.startswith(("local", "spark://127.0.0.1:", "spark://localhost:")):
        # Without it the driver resolves the host name first (seconds, and a warning); a
        # loopback cluster's executors must also reach the driver on loopback.
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    if config.executor_env is not None:
        # Executors run the packed environment's interpreter, unpacked by Spark into their
        # working folder (see _executor_settings); pyspark reads this when the context starts.
        os.environ["PYSPARK_PYTHON"] = f"./{EXECUTOR_ENV_DIR}/bin/python"


def _executor_settings(config: Config) -> dict[str, str]:
    """What ships the Python side to a cluster's executors (`spark.executor_env` is set)."""
    if config.executor_env is None:
        return {}
    if not config.executor_env.is_file():
        raise RuntimeError(
            f"spark.executor_env {config.executor_env} does not exist: run `make setup` "
            "(or `python -m lakehouse.executor_env`) first"
        )
    return {"spark.archives": f"{config.executor_env}#{EXECUTOR_ENV_DIR}"}


def jar_paths(config: Config) -> list[str]:
    """The jars fetched by `python -m lakehouse.jars`; fails loudly when they are missing."""
    jars = sorted(str(p) for p in Path(config.jars_dir).glob("*.jar"))
    if not any("delta-spark" in j for j in jars):
        raise RuntimeError(
            f"Delta jars not found in {config.jars_dir}: run `make setup` "
            "(or `python -m lakehouse.jars`) first"
        )
    return jars


def _uses_s3(config: Config) -> bool:
    return config.warehouse.startswith("s3a://") or bool(config.s3.access_key)


# S3A keys that hold a credential: set on the running context's Hadoop configuration, never
# as builder settings, which PySpark passes as `--conf k=v` on the JVM's command line, where
# any local user reads them with `ps` (Hadoop copies that configuration into every task).
SECRET_KEYS = ("access.key", "secret.key")


def s3a_settings(s3: S3Config, bucket: str | None = None) -> dict[str, str]:
    """Hadoop S3A settings for the S3-compatible store `s3` (MinIO locally).

    All of `fs.s3a.*` by default, or only for `bucket` (`fs.s3a.bucket.<bucket>.*`, which S3A
    prefers over the global keys). MinIO needs path-style URLs (no `<bucket>.host` DNS), no
    TLS on a plain-http endpoint, and an explicit region (the AWS SDK would otherwise try to
    discover one). Credentials come only from the environment variables named in
    conf/lakehouse.yaml; without them S3A uses its default provider chain (AWS_* env vars...).
    """
    prefix = f"fs.s3a.bucket.{bucket}." if bucket else "fs.s3a."
    settings = {
        "endpoint": s3.endpoint,
        "endpoint.region": s3.region,
        "path.style.access": "true",
        "connection.ssl.enabled": str(s3.endpoint.startswith("https://")).lower(),
        # hadoop-aws 3.5 uses classes of the analyticsaccelerator-s3 jar, which conf/jars.pom.xml
        # leaves out, in its default "analytics" input stream and in the logging auditor
        # (NoClassDefFoundError on the first read or request). The classic stream and no
        # request auditing (only adds a referrer header, for S3 server logs) avoid both.
        "input.stream.type": "classic",
        "audit.enabled": "false",
    }
    if s3.access_key and s3.secret_key:
        settings |= {
            "access.key": s3.access_key,
            "secret.key": s3.secret_key,
            # Only the keys above: no probing of EC2 instance metadata when they are wrong.
            "aws.credentials.provider": "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
        }
    return {prefix + key: value for key, value in settings.items()}


def configure_s3a(
    spark: SparkSession, config: Config | None = None, bucket: str | None = None
) -> None:
    """Point S3A at `config.s3` in an already running session (all buckets, or just `bucket`).

    For sessions built before the store was known (e.g. the shared test session): sets the
    keys of `s3a_settings` on the SparkContext's Hadoop configuration, which later jobs and
    Delta operations copy, and closes the cached S3A filesystem of `bucket` (default: the
    warehouse bucket) so the next access uses the new settings. Do not call it while jobs
    are reading or writing that bucket.
    """
    config = config or load_config()
    jvm = spark.sparkContext._jvm
    hadoop_conf = spark.sparkContext._jsc.hadoopConfiguration()
    for key, value in s3a_settings(config.s3, bucket).items():
        hadoop_conf.set(key, value)
    if bucket is None and config.warehouse.startswith("s3a://"):
        bucket = config.warehouse[len("s3a://"):].split("/", 1)[0]
    if bucket:
        uri = jvm.java.net.URI.create(f"s3a://{bucket}/")
        # close() also removes the instance from Hadoop's FileSystem cache.
        jvm.org.apache.hadoop.fs.FileSystem.get(uri, hadoop_conf).close()


def _launched_by_spark_submit() -> bool:
    """Whether spark-submit started this Python process: then its --master (e.g. from an
    Airflow connection) decides, not the profile's spark.master."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def get_spark(
    config: Config | None = None,
    app_name: str | None = None,
    extra_conf: dict[str, str] | None = None,
) -> SparkSession:
    """Build (or return the running) Delta-enabled SparkSession for `config`."""
    config = config or load_config()
    _prepare_environment(config)
    builder = SparkSession.builder.appName(app_name or config.app_name)
    if not _launched_by_spark_submit():
        builder = builder.master(os.environ.get("LAKEHOUSE_SPARK_MASTER", config.spark_master))
    builder = (
        builder.config("spark.jars", ",".join(jar_paths(config)))
        .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
        .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.warehouse.dir", str(config.root / ".data" / "spark-warehouse"))
        .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={config.root / '.data'} {JIT_OPTIONS}")
    )
    s3a = s3a_settings(config.s3) if _uses_s3(config) else {}
    for key, value in s3a.items():
        if not key.endswith(SECRET_KEYS):
            builder = builder.config(f"spark.hadoop.{key}", value)
    for key, value in (_executor_settings(config) | (extra_conf or {})).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    hadoop_conf = spark.sparkContext._jsc.hadoopConfiguration()
    for key, value in s3a.items():
        if key.endswith(SECRET_KEYS):
            hadoop_conf.set(key, value)
    if config.executor_env is not None:
        # Our own package, zipped from the driver's copy: executors run the driver's code.
        spark.sparkContext.addPyFile(str(package_zip(config.root / ".data" / "py-files")))
    return spark
