"""Delta MERGE (upsert by key) with retries when another writer commits to the same table,
and the whole-table overwrite of a small state table.

Kept apart from `io/delta.py`: the streaming window job upserts rows into gold tables
that the daily batch (`lakehouse gold`, a `replaceWhere` per report date) writes too.
"""

from __future__ import annotations

import logging
import time

from delta.exceptions import (
    ConcurrentAppendException,
    ConcurrentDeleteDeleteException,
    ConcurrentDeleteReadException,
    ConcurrentTransactionException,
    ConcurrentWriteException,
    DeltaConcurrentModificationException,
    MetadataChangedException,
)
from delta.tables import DeltaTable
from pyspark.sql import DataFrame

from lakehouse.io import delta

log = logging.getLogger("lakehouse.delta")

# Optimistic-concurrency conflicts: another commit touched what this one read (the batch
# gold job replaced a report date, or created the table) between our read and our commit.
CONFLICTS = (
    ConcurrentAppendException,
    ConcurrentDeleteReadException,
    ConcurrentDeleteDeleteException,
    ConcurrentTransactionException,
    ConcurrentWriteException,
    DeltaConcurrentModificationException,
    MetadataChangedException,
)


def _condition(keys: tuple[str, ...]) -> str:
    # Null-safe: a key column may be null (no referrer) and must still match itself.
    return " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)


def upsert(
    df: DataFrame,
    path: str,
    keys: tuple[str, ...],
    update_when: str | None = None,
    update_set: dict[str, str] | None = None,
    retries: int = 8,
) -> None:
    """MERGE `df` into the table at `path` on `keys`: matched rows updated, new rows inserted.

    `update_when` (SQL over `t.` target and `s.` source columns) limits which matched rows
    are updated; `update_set` ({column: SQL expression}) replaces "every column from the
    source". The table is created by a plain append when it does not exist yet.
    A commit conflict with a concurrent writer is retried (the MERGE is re-planned on the
    new table version, so retrying is correct), with a growing back-off, `retries` times.
    """
    spark = df.sparkSession
    for attempt in range(retries + 1):
        try:
            with delta.writing(path):
                if not delta.table_exists(spark, path):
                    delta.append(df, path)
                    return
                merge = (
                    DeltaTable.forPath(spark, path).alias("t").merge(df.alias("s"), _condition(keys))
                )
                if update_set is not None:
                    merge = merge.whenMatchedUpdate(condition=update_when, set=update_set)
                else:
                    merge = merge.whenMatchedUpdateAll(condition=update_when)
                merge.whenNotMatchedInsertAll().execute()
            return
        except CONFLICTS as exc:
            if attempt == retries:
                raise
            pause = min(10.0, 0.5 * 2**attempt)
            log.warning(
                "MERGE into %s conflicted with another commit (%s); retrying in %.1fs",
                path,
                type(exc).__name__,
                pause,
            )
            time.sleep(pause)


def overwrite(df: DataFrame, path: str, txn: tuple[str, int] | None = None) -> None:
    """Replace the whole table at `path` with `df` (created when absent); with
    `txn=(app_id, version)` a replayed version is skipped. For small state tables: one
    live file whatever the number of writes."""
    writer = df.write.format("delta").mode("overwrite")
    if txn is not None:
        writer = writer.option("txnAppId", txn[0]).option("txnVersion", txn[1])
    with delta.writing(path):
        writer.save(path)
