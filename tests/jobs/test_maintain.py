"""`lakehouse maintain`: small files compacted, rows unchanged, incremental readers unaffected."""

from __future__ import annotations

import pytest

from lakehouse.io import delta
from lakehouse.jobs.maintain import maintain_table, warehouse_tables
from lakehouse.jobs.runtime import JobRun

pytestmark = pytest.mark.slow  # whole jobs on Spark: seconds each (make test, not test-fast)

file_count = delta.file_count


def test_optimize_compacts_small_files_and_keeps_rows(spark, warehouse_config):
    path = warehouse_config.table_path("bronze", "access_logs")
    for i in range(4):
        rows = spark.createDataFrame([(f"line {i}-{j}", "2024-03-01") for j in range(3)], "value string, ingest_date string")
        delta.append(rows.repartition(2), path, partition_by=("ingest_date",))
    before_rows = sorted(r[0] for r in delta.read_table(spark, path).select("value").collect())
    assert file_count(spark, path) >= 5

    # A silver-like incremental reader that has already seen everything.
    seen = []
    checkpoint = warehouse_config.checkpoint("maintain_test")
    delta.process_new_rows(spark, path, checkpoint, "maintain_test", lambda df, _b, _a: seen.append(df.count()))
    assert sum(seen) == 12

    (found,) = warehouse_tables(spark, warehouse_config, ("bronze",))
    assert found.endswith("/bronze/access_logs")
    run = JobRun("maintain")
    maintain_table(spark, path, 168, run)

    assert file_count(spark, path) == 1
    assert run.counts["files_after"] == 1 and run.counts["files_before"] >= 5
    assert sorted(r[0] for r in delta.read_table(spark, path).select("value").collect()) == before_rows
    # The compaction commit carries no new data: the reader gets nothing new.
    seen.clear()
    delta.process_new_rows(spark, path, checkpoint, "maintain_test", lambda df, _b, _a: seen.append(df.count()))
    assert sum(seen) == 0


def _parquet_files(path):
    return sorted(p.name for p in path.rglob("*.parquet") if "_delta_log" not in p.parts)


def test_vacuum_keeps_files_younger_than_the_retention_and_removes_older_ones(spark, warehouse_config, tmp_path):
    from pathlib import Path

    path = warehouse_config.table_path("gold", "endpoint_daily")
    for i in range(3):  # each overwrite leaves the previous file unreferenced
        spark.range(i, i + 5).coalesce(1).write.format("delta").mode("overwrite").save(path)
    assert len(_parquet_files(Path(path))) == 3
    maintain_table(spark, path, 168, JobRun("maintain"))
    assert len(_parquet_files(Path(path))) == 3  # younger than 7 days: kept for time travel
    maintain_table(spark, path, 0, JobRun("maintain"))
    assert len(_parquet_files(Path(path))) == 1
    assert sorted(r.id for r in delta.read_table(spark, path).collect()) == [2, 3, 4, 5, 6]
    props = spark.sql(f"SHOW TBLPROPERTIES delta.`{path}`").collect()
    assert {r.key: r.value for r in props}["delta.deletedFileRetentionDuration"] == "interval 0 seconds"
