"""Config: profiles, environment overrides, secrets from the environment, loud failures."""

import pytest

from lakehouse.config import ConfigError, load_config


def test_local_profile_defaults_to_a_local_warehouse_and_sqlite_export():
    cfg = load_config(profile="local", environ={})
    assert cfg.warehouse.endswith("/warehouse")
    assert cfg.export.url == f"jdbc:sqlite:{cfg.warehouse}/lakehouse.db"
    assert cfg.export.dialect == "sqlite"
    assert cfg.table_path("gold", "endpoint_daily") == f"{cfg.warehouse}/gold/endpoint_daily"
    assert cfg.checkpoint("x") == f"{cfg.warehouse}/_checkpoints/x"


def test_services_profile_uses_minio_and_postgres_with_password_from_env():
    cfg = load_config(environ={"LAKEHOUSE_PROFILE": "services", "LAKEHOUSE_EXPORT_PASSWORD": "s3cret"})
    assert cfg.warehouse == "s3a://lakehouse/warehouse"
    assert cfg.export.dialect == "postgresql"
    assert cfg.export.password == "s3cret"
    assert "s3cret" not in repr(cfg)


def test_environment_overrides_nested_keys():
    cfg = load_config(profile="local", environ={"LAKEHOUSE_GOLD__TOP_IPS_PER_DAY": "7", "LAKEHOUSE_EXPORT__URL": "none"})
    assert cfg.top_ips_per_day == 7
    assert cfg.export.enabled is False


def test_with_warehouse_moves_checkpoints_and_sqlite_export(tmp_path):
    cfg = load_config(profile="local", environ={}).with_warehouse(str(tmp_path / "wh"))
    assert cfg.checkpoints == f"{tmp_path}/wh/_checkpoints"
    assert cfg.export.url == f"jdbc:sqlite:{tmp_path}/wh/lakehouse.db"


def test_unknown_profile_fails_with_its_name():
    with pytest.raises(ConfigError, match="LAKEHOUSE_PROFILE='prod'"):
        load_config(environ={"LAKEHOUSE_PROFILE": "prod"})


def test_missing_key_names_the_key():
    with pytest.raises(ConfigError, match="'gold.top_ips_per_day'"):
        load_config(profile="local", environ={}, overrides={"gold": None})


def test_readme_log_format_override_is_taken_as_text():
    fmt = '%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i" %D'
    cfg = load_config(profile="local", environ={"LAKEHOUSE_ACCESS_LOGS__LOG_FORMAT": fmt})
    assert cfg.access_logs.log_format == fmt


@pytest.mark.parametrize(
    ("text", "value"),
    [("7", 7), ("-2", -2), ("1.5", 1.5), ("true", True), ("False", False), ("", None), ("null", None), ("a: b", "a: b"), ("[1]", "[1]")],
)
def test_environment_values_are_text_unless_plainly_typed(text, value):
    from lakehouse.config import env_value

    assert env_value(text) == value and type(env_value(text)) is type(value)


@pytest.mark.parametrize(
    ("fmt", "message"),
    [
        ("%h %t %Z", "Unknown log format directive: '%Z'"),
        ("", "must be an Apache LogFormat string"),
        ("%h %l %u", "has no request time"),
    ],
)
def test_a_bad_log_format_fails_when_the_config_is_read(fmt, message):
    with pytest.raises(ConfigError, match=message):
        load_config(profile="local", environ={"LAKEHOUSE_ACCESS_LOGS__LOG_FORMAT": fmt})


@pytest.mark.parametrize(("profile", "where"), [("local", "landing"), ("services", "kafka"), ("cluster", "kafka"), ("compose", "kafka")])
def test_one_setting_per_feed_says_where_it_lands_and_is_read(profile, where):
    from lakehouse.jobs.bronze_feed import source_of

    config = load_config(profile, environ={})
    assert (config.web_events.source, config.poll.sink, config.ip_events.sink) == (where, where, where)
    assert [source_of(config, feed)[0] for feed in ("web_events", "api_ticks", "ip_events")] == [where] * 3
    moved = load_config(profile, environ={"LAKEHOUSE_POLL__SINK": "landing", "LAKEHOUSE_WEB_EVENTS__SOURCE": "kafka"})
    assert (moved.poll.sink, moved.web_events.source) == ("landing", "kafka")
    with pytest.raises(ConfigError, match="poll.sink must be one of auto, landing, kafka, got 'files'"):
        load_config(profile, environ={"LAKEHOUSE_POLL__SINK": "files"})
