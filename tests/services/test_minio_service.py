"""Real-server tests of lakehouse.services.minio: start, buckets, objects, stop, restart, data kept.

Run: .venv/bin/pytest -q tests/services/test_minio_service.py (needs Go >= 1.24 the first time:
start() builds MinIO from source into ~/.cache/lakehouse/minio, which takes a few minutes).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from tests.conftest import free_ports

from lakehouse.services import minio

pytestmark = pytest.mark.services

PORT, CONSOLE_PORT = free_ports(2)
BUCKETS = ("lakehouse", "lakehouse-extra")


@pytest.fixture
def base_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "minio"
    yield path
    minio.stop(path, kill=True)


def read(server: minio.MinioServer, key: str) -> bytes:
    return minio.s3_client(server).get_object(Bucket="lakehouse", Key=key)["Body"].read()


def test_objects_survive_stop_and_restart(base_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = minio.start(base_dir, port=PORT, console_port=CONSOLE_PORT, buckets=BUCKETS)
    try:
        assert minio.status(base_dir)
        assert server.endpoint == f"http://127.0.0.1:{PORT}"
        assert "secret_key" not in repr(server)
        # Idempotent: the running server is reused, buckets are not created twice.
        again = minio.start(base_dir, port=PORT, console_port=CONSOLE_PORT, buckets=BUCKETS)
        assert again == server

        client = minio.s3_client(server)
        assert set(BUCKETS) <= {b["Name"] for b in client.list_buckets()["Buckets"]}
        client.put_object(Bucket="lakehouse", Key="a/ünï code.txt", Body=b"hello\n")
        assert read(server, "a/ünï code.txt") == b"hello\n"

        minio.stop(base_dir)
        assert not minio.status(base_dir)
        minio.stop(base_dir)  # idempotent

        server = minio.start(base_dir, port=PORT, console_port=CONSOLE_PORT, buckets=BUCKETS)
        assert read(server, "a/ünï code.txt") == b"hello\n"

        # Killed (no graceful shutdown) and restarted: acknowledged writes are still there.
        minio.s3_client(server).put_object(Bucket="lakehouse", Key="b", Body=b"x" * 100_000)
        minio.stop(base_dir, kill=True)
        server = minio.start(base_dir, port=PORT, console_port=CONSOLE_PORT, buckets=BUCKETS)
        assert read(server, "b") == b"x" * 100_000

        # The server really checks the keys.
        wrong = minio.s3_client(replace(server, secret_key="not-the-secret"))
        with pytest.raises(Exception, match="SignatureDoesNotMatch"):
            wrong.list_buckets()
        # start() with other keys than the running server has is a clear error.
        monkeypatch.setenv(minio.SECRET_KEY_ENV, "another-secret")
        with pytest.raises(RuntimeError, match="runs with other credentials"):
            minio.start(base_dir, port=PORT, console_port=CONSOLE_PORT, buckets=())
    finally:
        minio.stop(base_dir)
    assert not minio.status(base_dir)
