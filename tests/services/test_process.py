"""What the three local services share: a port someone else holds is a clear error, and
their command lines report a stopped server the same way."""

from __future__ import annotations

import shutil
import socket
import uuid

import pytest
from tests.conftest import free_ports

from lakehouse.config import project_root
from lakehouse_dev.services import kafka, minio, postgres

pytestmark = pytest.mark.services

START = {
    kafka: lambda base, port: kafka.start(base, port=port, controller_port=free_ports()[0]),
    minio: lambda base, port: minio.start(base, port=port, console_port=free_ports()[0]),
    postgres: lambda base, port: postgres.start(base, port=port),
}


@pytest.fixture
def base_dir():
    # Under the gitignored .data/: PostgreSQL runs as an unprivileged user that must reach it.
    path = project_root() / ".data" / f"test-process-{uuid.uuid4().hex[:8]}"
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize("service", list(START), ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_a_port_taken_by_another_process_is_a_clear_error(service, base_dir):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        with pytest.raises(RuntimeError, match=f"port 127.0.0.1:{port} is in use"):
            START[service](base_dir, port)
    assert not service.status(base_dir)


@pytest.mark.parametrize("service", list(START), ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_the_cli_reports_a_stopped_server_and_stops_nothing(service, base_dir, capsys):
    name = service.__name__.rsplit(".", 1)[-1]
    assert service.main(["status", "--base-dir", str(base_dir)]) == 3
    assert capsys.readouterr().out.startswith(f"{name}: down (data ")
    assert service.main(["down", "--base-dir", str(base_dir)]) == 0
    assert capsys.readouterr().out.startswith(f"{name}: already down (data ")
