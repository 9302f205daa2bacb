"""Real-server tests of lakehouse_dev.services.ferretdb (the run's server, tests/stack.py, and
one started by the command line): start, insert, find, stop, restart, data kept.

Run: .venv/bin/pytest -q tests/services/test_ferretdb_service.py (needs Go >= 1.24 the first
time: start() builds FerretDB into ~/.cache/lakehouse/ferretdb, about 2 minutes).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pymongo
import pytest
from bson import ObjectId
from tests.conftest import free_ports

from lakehouse_dev.services import ferretdb

pytestmark = pytest.mark.services


def test_documents_survive_stop_and_restart(stack) -> None:
    server = stack.ferretdb
    base_dir, port = server.base_dir, stack.ports["ferretdb"]
    assert ferretdb.status(base_dir)
    assert server.uri == f"mongodb://127.0.0.1:{port}/"
    assert ferretdb.start(base_dir, port=port) == server  # idempotent: the running one is reused

    first, second = ObjectId("65f000000000000000000001"), ObjectId("65f000000000000000000002")
    with pymongo.MongoClient(server.uri, serverSelectionTimeoutMS=5000, tz_aware=True) as client:
        client.drop_database("kafka_data_db")
        views = client.kafka_data_db.product_views_records
        views.insert_many(
            [
                {"_id": second, "product_id": "2", "timestamp": datetime(2025, 10, 31, 3, 22, 11, tzinfo=UTC)},
                {"_id": first, "product_id": "1", "store_id": "US"},
            ]
        )
        # find with a filter, sort and limit: what the backfill's range planning relies on.
        assert [d["_id"] for d in views.find({"_id": {"$gt": first}}).sort("_id", 1)] == [second]
        assert views.find_one({}, sort=[("_id", 1)]) == {"_id": first, "product_id": "1", "store_id": "US"}
        assert [d["product_id"] for d in views.find({}, {"product_id": 1}).sort("_id", -1).limit(1)] == ["2"]
        assert views.find_one({"_id": second})["timestamp"] == datetime(2025, 10, 31, 3, 22, 11, tzinfo=UTC)
        assert "kafka_data_db" in client.list_database_names()

    ferretdb.stop(base_dir)
    assert not ferretdb.status(base_dir)
    ferretdb.stop(base_dir)  # idempotent
    with pytest.raises(pymongo.errors.ServerSelectionTimeoutError), pymongo.MongoClient(server.uri, serverSelectionTimeoutMS=300) as client:
        client.admin.command("ping")

    server = ferretdb.start(base_dir, port=port)
    with pymongo.MongoClient(server.uri, serverSelectionTimeoutMS=5000) as client:
        assert client.kafka_data_db.product_views_records.count_documents({}) == 2
    assert (base_dir / "data").is_dir() and (base_dir / "ferretdb.log").is_file()


def test_a_taken_port_is_refused_with_the_reason(stack, tmp_path: Path) -> None:
    port = stack.ferretdb.port
    other = tmp_path / "other"
    with pytest.raises(RuntimeError, match=f"port 127.0.0.1:{port} is in use"):
        ferretdb.start(other, port=port)
    assert not ferretdb.status(other)


def test_cli_up_status_down(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (port,) = free_ports(1)
    base = tmp_path / "cli"
    try:
        assert ferretdb.main(["up", "--base-dir", str(base), "--port", str(port)]) == 0
        assert f"ferretdb: up on mongodb://127.0.0.1:{port}/" in capsys.readouterr().out
        assert ferretdb.main(["status", "--base-dir", str(base)]) == 0
    finally:
        assert ferretdb.main(["down", "--base-dir", str(base)]) == 0
    assert "ferretdb: stopped" in capsys.readouterr().out
    assert ferretdb.main(["status", "--base-dir", str(base)]) == 3
