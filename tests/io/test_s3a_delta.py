"""Delta tables on a real MinIO through S3A (hadoop-aws + AWS SDK v2), in the shared session.

The session-wide `spark` fixture is built with the local profile, so the S3A settings for the
test bucket are added at runtime with `configure_s3a` (per-bucket keys: other tests' S3A
settings are left alone).
"""

from __future__ import annotations

import pytest
from tests.stack import BUCKET

from lakehouse.config import load_config
from lakehouse.io import delta
from lakehouse.session import configure_s3a
from lakehouse_dev.services import minio

pytestmark = pytest.mark.services

SCHEMA = "id INT, page STRING, ms DOUBLE"


@pytest.fixture(scope="module")
def server(stack) -> minio.MinioServer:
    return stack.minio


@pytest.fixture(scope="module")
def s3_config(server, spark):
    # The services profile, pointed at this server; the keys come in through the variables
    # conf/lakehouse.yaml names, as in a real run.
    cfg = load_config(
        profile="services",
        environ={"LAKEHOUSE_S3_ACCESS_KEY": server.access_key,
                 "LAKEHOUSE_S3_SECRET_KEY": server.secret_key},
        overrides={"warehouse": f"s3a://{BUCKET}/test/warehouse",
                   "s3": {"endpoint": server.endpoint}},
    )
    assert (cfg.s3.access_key, cfg.s3.region) == (server.access_key, "us-east-1")
    configure_s3a(spark, cfg, bucket=BUCKET)
    return cfg


def rows(spark, path: str) -> list[tuple]:
    return [tuple(r) for r in spark.read.format("delta").load(path).orderBy("id").collect()]


def test_delta_write_read_and_exactly_once_append(spark, server, s3_config) -> None:
    path = s3_config.table_path("bronze", "visits")
    assert path == f"s3a://{BUCKET}/test/warehouse/bronze/visits"

    first = spark.createDataFrame([(1, "/home", 12.5), (2, "/ünï", 0.25)], SCHEMA)
    delta.append(first, path, txn=("s3a-test", 1))
    assert rows(spark, path) == [(1, "/home", 12.5), (2, "/ünï", 0.25)]

    second = spark.createDataFrame([(3, "/cart?x=1", 300.0)], SCHEMA)
    delta.append(second, path, txn=("s3a-test", 2))
    delta.append(second, path, txn=("s3a-test", 2))  # a replay: skipped, no duplicate
    assert rows(spark, path) == [(1, "/home", 12.5), (2, "/ünï", 0.25), (3, "/cart?x=1", 300.0)]
    assert delta.table_version(spark, path) == 1

    # The table really lives in MinIO: commits and parquet files under the bucket's prefix.
    prefix = "test/warehouse/bronze/visits/"
    listing = minio.s3_client(server).list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    keys = [o["Key"].rsplit("/", 1)[1] for o in listing.get("Contents", [])]
    assert {"00000000000000000000.json", "00000000000000000001.json"} <= set(keys)
    assert "00000000000000000002.json" not in keys
    assert any(k.endswith(".parquet") for k in keys)
