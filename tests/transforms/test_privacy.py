"""IP anonymisation (`privacy.ip_anonymisation`) on inline values."""

import hashlib
import hmac

import pytest
from chispa import assert_df_equality

from lakehouse.config import ConfigError, load_config
from lakehouse.transforms.privacy import anonymise_ip_text, with_anonymised_ip

KEY = "a-secret-of-16-chars+"


def keyed(text: str) -> str:
    """The specification: HMAC-SHA256 of the canonical address under the key, in hex."""
    return hmac.new(KEY.encode(), text.encode(), hashlib.sha256).hexdigest()


@pytest.mark.parametrize(
    ("ip", "truncated"),
    [
        ("81.2.69.160", "81.2.69.0"),
        ("10.0.0.255", "10.0.0.0"),
        ("2001:db8:1234:5678::1", "2001:db8:1234::"),
        ("2001:DB8:ABCD:0012:0000:0000:0000:0001", "2001:db8:abcd::"),
        ("::ffff:81.2.69.160", "::"),
        ("crawler.example.com", None),
        ("-", None),
    ],
)
def test_truncation_keeps_the_network_only(ip, truncated):
    assert anonymise_ip_text(ip, "truncate") == truncated


def test_a_keyed_hash_is_one_per_address_whatever_its_spelling():
    key = KEY.encode()
    assert anonymise_ip_text("81.2.69.160", "hash", key) == keyed("81.2.69.160")
    assert anonymise_ip_text("2001:DB8::0001", "hash", key) == keyed("2001:db8::1")
    assert anonymise_ip_text("crawler.example.com", "hash", key) == keyed("crawler.example.com")
    assert anonymise_ip_text("81.2.69.160", "hash", b"another-secret-key!") != keyed("81.2.69.160")
    assert anonymise_ip_text(None, "hash", key) is None
    assert anonymise_ip_text("81.2.69.160", "none") == "81.2.69.160"


def test_the_column_is_replaced_on_the_executors(spark):
    df = spark.createDataFrame([(1, "81.2.69.160"), (2, "2001:db8::1"), (3, None)], "n int, ip string")
    expected = spark.createDataFrame([(1, keyed("81.2.69.160")), (2, keyed("2001:db8::1")), (3, None)], "n int, ip string")
    assert_df_equality(with_anonymised_ip(df, "ip", "hash", KEY), expected, ignore_row_order=True)
    truncated = spark.createDataFrame([(1, "81.2.69.0"), (2, "2001:db8::"), (3, None)], "n int, ip string")
    assert_df_equality(with_anonymised_ip(df, "ip", "truncate"), truncated, ignore_row_order=True)
    assert with_anonymised_ip(df, "ip", "none") is df


def test_config_requires_a_long_enough_key_for_hashing():
    env = {"LAKEHOUSE_PRIVACY__IP_ANONYMISATION": "hash"}
    with pytest.raises(ConfigError, match="LAKEHOUSE_IP_HASH_KEY, which is not set"):
        load_config(environ=env)
    with pytest.raises(ConfigError, match="which has 5 characters"):
        load_config(environ=env | {"LAKEHOUSE_IP_HASH_KEY": "short"})
    with pytest.raises(ConfigError, match="must be one of none, truncate, hash, got 'mask'"):
        load_config(environ={"LAKEHOUSE_PRIVACY__IP_ANONYMISATION": "mask"})
    config = load_config(environ=env | {"LAKEHOUSE_IP_HASH_KEY": KEY})
    assert (config.privacy.ip_anonymisation, config.privacy.ip_hash_key, config.privacy.anonymises) == ("hash", KEY, True)
    assert KEY not in repr(config)
    assert load_config(environ={}).privacy.anonymises is False
