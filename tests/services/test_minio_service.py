"""Real-server tests of lakehouse_dev.services.minio on the run's server (tests/stack.py): start,
buckets, objects, stop, restart, data kept.

Run: .venv/bin/pytest -q tests/services/test_minio_service.py (needs Go >= 1.24 the first time:
start() builds MinIO from source into ~/.cache/lakehouse/minio, which takes a few minutes).
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from tests.stack import BUCKET

from lakehouse_dev.services import minio

pytestmark = pytest.mark.services


def read(server: minio.MinioServer, key: str) -> bytes:
    return minio.s3_client(server).get_object(Bucket=BUCKET, Key=key)["Body"].read()


def test_objects_survive_stop_and_restart(stack, monkeypatch: pytest.MonkeyPatch) -> None:
    server = stack.minio
    base, port, console = server.base_dir, stack.ports["minio"], stack.ports["console"]
    buckets = (BUCKET, "svc-extra")
    assert minio.status(base)
    assert server.endpoint == f"http://127.0.0.1:{port}"
    assert "secret_key" not in repr(server)
    # Idempotent: the running server is reused, buckets are not created twice.
    again = minio.start(base, port=port, console_port=console, buckets=buckets)
    assert again == server

    client = minio.s3_client(server)
    assert set(buckets) <= {b["Name"] for b in client.list_buckets()["Buckets"]}
    client.put_object(Bucket=BUCKET, Key="svc/ünï code.txt", Body=b"hello\n")
    assert read(server, "svc/ünï code.txt") == b"hello\n"

    minio.stop(base)
    assert not minio.status(base)
    minio.stop(base)  # idempotent
    server = minio.start(base, port=port, console_port=console, buckets=buckets)
    assert read(server, "svc/ünï code.txt") == b"hello\n"

    # Killed (no graceful shutdown) and restarted: acknowledged writes are still there.
    minio.s3_client(server).put_object(Bucket=BUCKET, Key="svc/b", Body=b"x" * 100_000)
    minio.stop(base, kill=True)
    server = minio.start(base, port=port, console_port=console, buckets=buckets)
    assert read(server, "svc/b") == b"x" * 100_000

    # The server really checks the keys.
    wrong = minio.s3_client(replace(server, secret_key="not-the-secret"))
    with pytest.raises(Exception, match="SignatureDoesNotMatch"):
        wrong.list_buckets()
    # start() with other keys than the running server has is a clear error.
    monkeypatch.setenv(minio.SECRET_KEY_ENV, "another-secret")
    with pytest.raises(RuntimeError, match="runs with other credentials"):
        minio.start(base, port=port, console_port=console, buckets=())
    assert minio.status(base)
