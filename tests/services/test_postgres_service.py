"""Real-server tests of lakehouse_dev.services.postgres on the run's server (tests/stack.py):
start, write, stop, restart, data kept, passwords checked.

Run: .venv/bin/pytest -q tests/services/test_postgres_service.py (as root or as a normal user;
needs the Debian PostgreSQL server packages, which start() installs with apt if missing).
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from tests.stack import PG_PASSWORD

from lakehouse_dev.services import postgres

pytestmark = pytest.mark.services

SELECT = "SELECT id, page, ms FROM visits ORDER BY id"
ROWS = "1|/home|12.5\n2|/cart?x=1|300.0\n3|/ünïcode|0.1\n"


def test_data_survives_stop_and_restart(stack) -> None:
    base, port = stack.postgres.base_dir, stack.ports["postgres"]
    server = stack.database("svc_postgres")
    try:
        assert postgres.status(base)
        assert server.jdbc_url == f"jdbc:postgresql://127.0.0.1:{port}/svc_postgres"
        # idempotent: the running server, the existing database
        assert postgres.start(base, port=port, database="svc_postgres", password=PG_PASSWORD) == server
        assert server.psql("SELECT current_user, current_database()") == "lakehouse|svc_postgres\n"

        server.psql(
            "CREATE TABLE visits (id int PRIMARY KEY, page text NOT NULL, ms numeric(6, 1));"
            "INSERT INTO visits VALUES (1, '/home', 12.5), (2, '/cart?x=1', 300), (3, '/ünïcode', 0.1);"
        )
        assert server.psql(SELECT) == ROWS

        postgres.stop(base)
        assert not postgres.status(base)
        postgres.stop(base)  # idempotent

        server = postgres.start(base, port=port, database="svc_postgres", password=PG_PASSWORD)
        assert server.psql(SELECT) == ROWS
        # TCP logins really check the password (scram-sha-256), they are not trusted.
        with pytest.raises(RuntimeError, match="password authentication failed"):
            replace(server, password="wrong").psql("SELECT 1")
    finally:
        postgres.start(base, port=port, password=PG_PASSWORD)  # the run's server, up for the tests after this one


def test_a_password_with_a_quote_is_escaped_when_set(stack) -> None:
    base, port = stack.postgres.base_dir, stack.ports["postgres"]
    server = postgres.start(base, port=port, database="svc_quote", user="quoted", password="it's a test")
    assert server.psql("SELECT current_user") == "quoted\n"
