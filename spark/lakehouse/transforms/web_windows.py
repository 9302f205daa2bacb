"""Web events (seed 002) in 5-minute windows and per-visitor sessions: pure functions of silver rows.

STUB: being written (issue 14).
"""

from __future__ import annotations

from pyspark.sql import DataFrame


def traffic_5min(events: DataFrame) -> DataFrame:
    raise NotImplementedError


def traffic_5min_referrer(events: DataFrame) -> DataFrame:
    raise NotImplementedError


def sessions(events: DataFrame, gap_seconds: int) -> DataFrame:
    raise NotImplementedError
