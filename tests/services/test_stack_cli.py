"""`python -m lakehouse_dev.services`: what it starts and stops, and the SASL listener's user.

Pure logic (no server starts here: each service's own tests start the real ones)."""

from __future__ import annotations

import pytest

from lakehouse_dev.services import __main__ as stack
from lakehouse_dev.services import ferretdb, kafka, minio, postgres, spark


def test_the_sasl_user_is_mirror_unless_named_and_its_password_comes_from_the_mirrors_variable() -> None:
    assert stack.sasl_listener(9094, {"LAKEHOUSE_MIRROR_SASL_PASSWORD": "s3cret"}) == kafka.SaslListener(9094, {"mirror": "s3cret"})
    named = stack.sasl_listener(9095, {"LAKEHOUSE_MIRROR_SASL_PASSWORD": "pw", "LAKEHOUSE_KAFKA_SASL_USER": "alice"})
    assert named == kafka.SaslListener(9095, {"alice": "pw"})
    with pytest.raises(RuntimeError, match=r"password in \$LAKEHOUSE_MIRROR_SASL_PASSWORD"):
        stack.sasl_listener(9094, {"LAKEHOUSE_KAFKA_SASL_USER": "alice"})


def test_up_with_a_sasl_port_and_no_password_fails_before_starting_anything(monkeypatch, capsys) -> None:
    monkeypatch.delenv("LAKEHOUSE_MIRROR_SASL_PASSWORD", raising=False)
    monkeypatch.setattr(stack, "up", lambda *a: pytest.fail("nothing may start"))
    assert stack.main(["up", "--only", "kafka", "--kafka-sasl-port", "9094"]) == 1
    assert "needs the SASL user's password in $LAKEHOUSE_MIRROR_SASL_PASSWORD" in capsys.readouterr().err


def test_down_stops_all_five_status_looks_at_the_core_four(monkeypatch, capsys) -> None:
    calls = []
    for name, module in (("postgres", postgres), ("kafka", kafka), ("minio", minio), ("spark", spark), ("ferretdb", ferretdb)):
        monkeypatch.setattr(module, "status", lambda name=name: calls.append(("status", name)) or False)
        monkeypatch.setattr(module, "stop", lambda name=name: calls.append(("stop", name)))
    assert stack.main(["down"]) == 0
    assert [n for op, n in calls if op == "stop"] == ["ferretdb", "spark", "minio", "kafka", "postgres"]
    calls.clear()
    assert stack.main(["status"]) == 3  # all down
    assert calls == [("status", n) for n in ("postgres", "kafka", "minio", "spark")]
    assert "ferretdb" not in capsys.readouterr().out.split("spark: down")[1]


def test_an_unknown_service_is_refused(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        stack.main(["up", "--only", "kafka,mongo"])
    assert exit_.value.code == 2
    assert "unknown service(s): mongo" in capsys.readouterr().err
