"""IP addresses as silver and gold may store them (`privacy.ip_anonymisation`).

- `truncate`: the network, not the host: IPv4 to its /24 (`81.2.69.160` -> `81.2.69.0`),
  IPv6 to its /48 (`2001:db8:1234:5678::1` -> `2001:db8:1234::`), the usual reading of
  "anonymised IP" (Google Analytics' IP masking, Matomo's two-byte default). Distinct
  visitors of one network count as one. A value that is no IP (a host name in a log) has
  no network: it becomes null.
- `hash`: HMAC-SHA256 of the canonical address under a secret key, in hex (64
  characters, the width of the exported `ip` columns). One IP gives one hash, so distinct
  counts and sessions per IP stay exact, and without the key no hash can be tied back to
  an IP by trying all 2^32 IPv4 addresses, as a plain hash could.

GeoIP is looked up before (the silver jobs locate the batch's addresses, then call this).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Callable, Iterator

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

IPV4_PREFIX = 24
IPV6_PREFIX = 48


def anonymise_ip_text(value: str | None, mode: str, key: bytes | None = None) -> str | None:
    """`value` as `mode` stores it (see the module doc); None stays None."""
    if value is None or mode == "none":
        return value
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        address = None
    if mode == "hash":
        if not key:
            raise ValueError("hash anonymisation needs a key")
        text = address.compressed if address is not None else value
        return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()
    if mode == "truncate":
        if address is None:
            return None
        prefix = IPV4_PREFIX if address.version == 4 else IPV6_PREFIX
        return ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address.compressed
    raise ValueError(f"unknown IP anonymisation {mode!r}")


def _anonymiser(mode: str, key: bytes | None) -> Callable[[Iterator[pd.Series]], Iterator[pd.Series]]:
    def anonymise(batches: Iterator[pd.Series]) -> Iterator[pd.Series]:
        for batch in batches:
            yield batch.map(lambda v: anonymise_ip_text(v, mode, key), na_action="ignore")

    return anonymise


def with_anonymised_ip(df: DataFrame, column: str, mode: str, key: str | None = None) -> DataFrame:
    """`df` with `column` anonymised as `mode` says (`none`: unchanged).

    A pandas UDF over Python's `ipaddress` and `hmac`: Spark has neither an IP type nor an
    HMAC function. The key travels to the executors inside the task, as any secret a
    Spark job uses does; it is never written to a table or a log.
    """
    if mode == "none":
        return df
    udf = F.pandas_udf(_anonymiser(mode, key.encode() if key else None), T.StringType())  # type: ignore[call-overload]
    return df.withColumn(column, udf(F.col(column)))
