"""The `api:` section and `kafka.metrics_port` of conf/lakehouse.yaml."""

from __future__ import annotations

import pytest

from lakehouse.config import ConfigError, load_config


def test_defaults_are_loopback_no_key_and_no_stream_metrics():
    config = load_config("local", environ={})
    assert (config.api.host, config.api.port, config.api.api_key, config.api.max_limit) == ("127.0.0.1", 8000, None, 1000)
    assert config.kafka.metrics_port is None


def test_the_key_comes_from_the_named_variable_and_is_never_printed():
    config = load_config("local", environ={"LAKEHOUSE_API_KEY": "k-123", "LAKEHOUSE_KAFKA__METRICS_PORT": "9108"})
    assert config.api.api_key == "k-123"
    assert "k-123" not in repr(config)
    assert config.kafka.metrics_port == 9108


def test_a_metrics_port_that_is_not_a_number_names_the_key():
    with pytest.raises(ConfigError, match="kafka.metrics_port"):
        load_config("local", environ={"LAKEHOUSE_KAFKA__METRICS_PORT": "eighty"})
