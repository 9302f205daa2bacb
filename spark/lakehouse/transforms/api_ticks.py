"""API ticks (seed 003): raw polled responses -> typed ticks, and their daily summary.

STUB: being written (issue 14).
"""

from __future__ import annotations

from pyspark.sql import DataFrame


def api_daily_summary(ticks: DataFrame) -> DataFrame:
    raise NotImplementedError
