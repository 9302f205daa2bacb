"""Every command knows every registered feed (spark/lakehouse/feeds/__init__.py): a feed added to
the registry and forgotten by one of them fails here, naming it."""

from __future__ import annotations

import re

import pytest

from lakehouse import cli
from lakehouse.api.metrics import job_and_dataset
from lakehouse.config import FEED_SETTINGS, load_config, project_root
from lakehouse.feeds import FEEDS, NAMES, feed
from lakehouse.jobs import bronze_feed, gold_daily, ingest_files, produce, stream_kafka
from lakehouse.transforms.gold import CURRENT_TABLES, GOLD_TABLES, PRIMARY_KEYS

EXPECTED = ("access_logs", "product_views", "web_events", "api_ticks", "ip_events")


def choices_in_help(main, option: str, capsys) -> set[str]:
    """The values `main --help` offers for `option` (argparse prints them as {a,b,c})."""
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    found = re.search(re.escape(option) + r" \{([^}]*)\}", text)
    assert found, text
    return set(found.group(1).split(","))


def test_the_registry_holds_the_five_feeds_and_names_an_unknown_one():
    assert NAMES == EXPECTED
    with pytest.raises(ValueError, match="unknown dataset 'clicks': expected one of access_logs, product_views"):
        feed("clicks")


@pytest.mark.parametrize(
    ("main", "option"),
    [(ingest_files.main, "--dataset"), (stream_kafka.main, "--dataset"), (produce.main, "--dataset"),
     (gold_daily.main, "--source")],  # fmt: skip
    ids=["ingest", "stream", "produce", "gold"],
)
def test_each_job_takes_every_feed(main, option, capsys):
    assert choices_in_help(main, option, capsys) == set(EXPECTED)


def test_bronze_takes_every_feed_that_lands_either_way(capsys):
    assert choices_in_help(bronze_feed.main, "--dataset", capsys) == {"web_events", "api_ticks", "ip_events"}
    assert FEED_SETTINGS == {"web_events": "web_events.source", "api_ticks": "poll.sink", "ip_events": "ip_events.sink"}


def test_every_feed_has_a_silver_command_a_topic_and_synthetic_records():
    config = load_config(profile="local", environ={})
    for name in EXPECTED:
        module, _help = cli.COMMANDS[FEEDS[name].silver_command]
        assert module == f"lakehouse.feeds.{name}.silver"
        assert config.kafka.topics[name]
        assert name in produce.SYNTHETIC
        assert job_and_dataset(FEEDS[name].silver_command, "written") == ("silver", name, "written")


def _sql_keys(ddl: str) -> dict[str, tuple[str, ...]]:
    """table -> its PRIMARY KEY columns, read from the DDL text (an independent reading)."""
    keys = {}
    for table, body in re.findall(r"CREATE TABLE IF NOT EXISTS (\w+) \((.*?)\n\);", ddl, re.S):
        if found := re.search(r"PRIMARY KEY \(([^)]*)\)", body):
            keys[table] = tuple(c.strip() for c in found.group(1).split(","))
        else:
            (column,) = re.findall(r"^\s*(\w+)\s.*\bPRIMARY KEY\b", body, re.M)
            keys[table] = (column,)
    return keys


def test_every_gold_table_has_a_builder_its_inputs_and_the_sql_tables_keys():
    ddl = _sql_keys((project_root() / "conf" / "sql" / "gold_tables.sql").read_text())
    by_date = {t for f in FEEDS.values() for t in f.gold_tables}
    current = {t for f in FEEDS.values() for t in f.current_tables}
    assert set(GOLD_TABLES) == by_date and set(CURRENT_TABLES) == current == {"ip_geolocation"}
    assert len(by_date) == 15
    assert ddl["traffic_daily"] == ("report_date",) and ddl["sessions"] == ("report_date", "ip", "host", "session_start")
    for table in by_date | current:
        assert PRIMARY_KEYS[table] == ddl[table], table
    for table, (source, _build) in GOLD_TABLES.items():
        assert PRIMARY_KEYS[table][0] == "report_date" and FEEDS[source].gold_reads, table


def test_every_raw_table_maps_silver_columns_onto_its_sql_columns():
    from lakehouse.feeds.access_logs.parse import SILVER_COLUMNS as ACCESS
    from lakehouse.feeds.web_events.parse import SILVER_COLUMNS as WEB

    ddl = (project_root() / "conf" / "sql" / "raw_tables.sql").read_text()
    tables = dict(re.findall(r"CREATE TABLE IF NOT EXISTS (\w+) \((.*?)\n\);", ddl, re.S))
    silver = {"access_logs": ACCESS, "web_events": WEB}
    raw = {name: f for name, f in FEEDS.items() if f.raw_table}
    assert {name: f.raw_table for name, f in raw.items()} == {"access_logs": "web_logs", "web_events": "processed_events"}
    for name, f in raw.items():
        sql_columns = re.findall(r"^\s+(?!PRIMARY)(\w+)\s", tables[f.raw_table], re.M)
        assert [c for c, _source in f.raw_columns] == sql_columns, f.raw_table
        assert {source for _c, source in f.raw_columns} <= set(silver[name]), f.raw_table
        assert _sql_keys(ddl)[f.raw_table] == ("event_date", "event_id")


def test_the_batch_takes_a_file_or_folder_of_every_feed(capsys):
    from lakehouse.jobs import batch

    with pytest.raises(SystemExit):
        batch.main(["--help"])
    text = capsys.readouterr().out
    assert [batch.option(name) for name in EXPECTED] == ["--access-logs", "--product-views", "--web-events", "--api-ticks", "--ip-events"]
    for name in EXPECTED:
        assert f"{batch.option(name)} {name.upper()}" in text
    with pytest.raises(TypeError, match="no feed named clicks"):
        batch.run_batch(None, None, clicks="x.log")
