"""Every job module is spark-submit-able (has main) and every CLI command resolves."""

import importlib

import pytest

from lakehouse.cli import COMMANDS, main
from lakehouse.feeds import NAMES

JOBS = ["lakehouse.jobs." + j for j in ("ingest_files", "silver", "gold_daily", "export_gold", "batch", "report")]
JOBS += [f"lakehouse.feeds.{feed}.silver" for feed in NAMES]


@pytest.mark.parametrize("job", JOBS)
def test_job_module_has_main_and_a_docstring_with_its_command(job):
    module = importlib.import_module(job)
    assert callable(module.main)
    assert "lakehouse " in module.__doc__ or "spark-submit" in module.__doc__


@pytest.mark.parametrize("command", [c for c, (m, _h) in COMMANDS.items() if m])
def test_cli_command_points_at_a_module_with_main(command):
    assert callable(importlib.import_module(COMMANDS[command][0]).main)


def test_cli_help_and_unknown_command(capsys):
    assert main([]) == 0
    assert "batch" in capsys.readouterr().out
    assert main(["nope"]) == 2


def test_silver_needs_a_registered_dataset(capsys):
    assert main(["silver"]) == 2
    assert "--dataset access_logs|product_views|web_events|api_ticks|ip_events is required" in capsys.readouterr().err
    assert main(["silver", "--dataset", "clicks"]) == 2
    assert "unknown dataset 'clicks': expected one of access_logs, product_views" in capsys.readouterr().err


def test_a_bad_log_format_stops_the_batch_before_it_writes(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("LAKEHOUSE_ACCESS_LOGS__LOG_FORMAT", '%h %l %u %t "%r" %>s %b %Z')
    warehouse = tmp_path / "warehouse"
    assert main(["batch", "--access-logs", "sample_logs/access.log", "--warehouse", str(warehouse)]) == 2
    assert "Unknown log format directive: '%Z'" in capsys.readouterr().err
    assert not warehouse.exists()
