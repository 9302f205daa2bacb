"""Real-server tests of lakehouse.services.postgres: start, write, stop, restart, data kept.

Run: .venv/bin/pytest -q tests/services/test_postgres_service.py (as root or as a normal user;
needs the Debian PostgreSQL server packages, which start() installs with apt if missing).
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from tests.conftest import free_ports

from lakehouse.config import project_root
from lakehouse.services import postgres

pytestmark = pytest.mark.services

(PORT,) = free_ports()
PASSWORD = "it's a test"  # the quote checks that the password is escaped when set
SELECT = "SELECT id, page, ms FROM visits ORDER BY id"
ROWS = "1|/home|12.5\n2|/cart?x=1|300.0\n3|/ünïcode|0.1\n"


@pytest.fixture
def base_dir() -> Iterator[Path]:
    # Under the gitignored .data/ rather than pytest's tmp dirs: those are 0700 under
    # /tmp/pytest-of-root and the server runs as an unprivileged user that must reach it.
    path = project_root() / ".data" / f"test-postgres-{uuid.uuid4().hex[:8]}"
    yield path
    postgres.stop(path)
    shutil.rmtree(path, ignore_errors=True)


def test_data_survives_stop_and_restart(base_dir: Path) -> None:
    server = postgres.start(base_dir, port=PORT, password=PASSWORD)
    try:
        assert postgres.status(base_dir)
        assert server.jdbc_url == f"jdbc:postgresql://127.0.0.1:{PORT}/lakehouse"
        assert postgres.start(base_dir, port=PORT, password=PASSWORD) == server  # idempotent
        assert server.psql("SELECT current_user, current_database()") == "lakehouse|lakehouse\n"

        server.psql(
            "CREATE TABLE visits (id int PRIMARY KEY, page text NOT NULL, ms numeric(6, 1));"
            "INSERT INTO visits VALUES (1, '/home', 12.5), (2, '/cart?x=1', 300), (3, '/ünïcode', 0.1);"
        )
        assert server.psql(SELECT) == ROWS

        postgres.stop(base_dir)
        assert not postgres.status(base_dir)
        postgres.stop(base_dir)  # idempotent

        server = postgres.start(base_dir, port=PORT, password=PASSWORD)
        assert server.psql(SELECT) == ROWS
        # TCP logins really check the password (scram-sha-256), they are not trusted.
        with pytest.raises(RuntimeError, match="password authentication failed"):
            replace(server, password="wrong").psql("SELECT 1")
    finally:
        postgres.stop(base_dir)
    assert not postgres.status(base_dir)
