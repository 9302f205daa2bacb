"""Config: profiles, environment overrides, secrets from the environment, loud failures."""

import re

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
    ("variable", "text", "read", "expected"),
    [
        ("KAFKA__MAX_OFFSETS_PER_TRIGGER", "7", lambda c: c.kafka.max_offsets_per_trigger, 7),
        ("WEB_EVENTS__LATENESS_SECONDS", "-2", lambda c: c.web_events.lateness_seconds, -2),
        ("POLL__INTERVAL_SECONDS", "1.5", lambda c: c.poll.interval_seconds, 1.5),
        ("KAFKA__FAIL_ON_DATA_LOSS", "False", lambda c: c.kafka.fail_on_data_loss, False),
        ("METRICS__STREAM_PORT", "", lambda c: c.metrics.stream_port, None),
        ("METRICS__MIRROR_PORT", "null", lambda c: c.metrics.mirror_port, None),
        ("KAFKA__TRIGGER", "1.5", lambda c: c.kafka.trigger, "1.5"),
        ("WEB_EVENTS__PROCESSED_EVENTS_TOPIC", "a: b", lambda c: c.web_events.processed_events_topic, "a: b"),
        ("WEB_EVENTS__PROCESSED_EVENTS_TOPIC", "[1]", lambda c: c.web_events.processed_events_topic, "[1]"),
        ("KAFKA__TOPICS__ACCESS_LOGS", "web.raw", lambda c: (c.kafka.topics["access_logs"], c.kafka.topics["ip_events"]),
         ("web.raw", "ip_events")),
        ("EXPORT__RAW_ROWS", "access_logs", lambda c: c.export.raw_rows, ("access_logs",)),
        ("EXPORT__RAW_ROWS", '["web_events", "access_logs"]', lambda c: c.export.raw_rows, ("web_events", "access_logs")),
        ("EXPORT__RAW_ROWS", "", lambda c: c.export.raw_rows, ()),
    ],
)
def test_environment_values_take_their_keys_type_and_text_stays_text(variable, text, read, expected):
    value = read(load_config(profile="local", environ={f"LAKEHOUSE_{variable}": text}))
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    ("variable", "text", "message"),
    [
        ("GOLD__TOP_IPS_PER_DAY", "many", "gold.top_ips_per_day must be a number above 0, got 'many'"),
        ("API__INGEST_BURST", "0", "api.ingest_burst must be a number above 0, got '0'"),
        ("KAFKA__FAIL_ON_DATA_LOSS", "perhaps", "kafka.fail_on_data_loss: Input should be a valid boolean"),
        ("METRICS__STREAM_WINDOWS_PORT", "9x", "metrics.stream_windows_port: Input should be a valid integer"),
        ("METRICS__LANDING_INTERVAL_MINUTES__ACESS_LOGS", "60", "metrics.landing_interval_minutes: unknown feed acess_logs"),
        ("EXPORT__RAW_ROWS", "nginx", "export.raw_rows must list datasets among access_logs, web_events, got 'nginx'"),
    ],
)
def test_a_wrong_environment_value_names_its_key(variable, text, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(profile="local", environ={f"LAKEHOUSE_{variable}": text})


def test_the_environment_read_is_the_one_given():
    # Secrets and overrides come from `environ` only: nothing of os.environ leaks in.
    cfg = load_config(profile="services", environ={"LAKEHOUSE_EXPORT_PASSWORD": "given"})
    assert cfg.export.password == "given" and cfg.s3.access_key is None
    assert load_config(profile="local", environ={}).top_ips_per_day == 100


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
