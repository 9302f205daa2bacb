"""append_once: one Delta commit per (writer, batch id); replays after a restart are skipped."""

from lakehouse.io import delta


def rows(spark, *values):
    return spark.createDataFrame([(v,) for v in values], "value string")


def values(spark, path):
    return sorted(r["value"] for r in delta.read_table(spark, path).collect())


def test_batches_land_once_even_when_replayed_after_a_restart(spark, tmp_path):
    path = str(tmp_path / "bronze")
    assert delta.append_once(rows(spark, "a", "b"), path, "w1", 0)
    assert delta.append_once(rows(spark, "c"), path, "w1", 1)
    # Same process: the replay of batch 1 is known without asking the table.
    assert not delta.append_once(rows(spark, "c"), path, "w1", 1)
    # A new process (memory gone) finds batch 1 in the commit metadata.
    delta._written_batches.clear()
    assert not delta.append_once(rows(spark, "c"), path, "w1", 1)
    assert not delta.append_once(rows(spark, "a", "b"), path, "w1", 0)
    assert delta.append_once(rows(spark, "d"), path, "w1", 2)
    assert values(spark, path) == ["a", "b", "c", "d"]
    assert delta.last_batch_written(spark, path, "w1") == 2


def test_other_writers_commits_do_not_hide_or_fake_a_batch(spark, tmp_path):
    path = str(tmp_path / "bronze")
    assert delta.append_once(rows(spark, "a"), path, "w1", 0)
    for i in range(3):  # e.g. file ingestion appending to the same bronze table
        delta.append(rows(spark, f"file{i}"), path)
    assert delta.append_once(rows(spark, "x"), path, "w2", 0)  # another writer's batch 0
    delta._written_batches.clear()
    assert delta.last_batch_written(spark, path, "w1") == 0
    assert delta.last_batch_written(spark, path, "w3") is None
    assert not delta.append_once(rows(spark, "a"), path, "w1", 0)
    assert values(spark, path) == ["a", "file0", "file1", "file2", "x"]


def test_writers_on_several_threads_create_one_table_and_land_each_batch_once(spark, tmp_path):
    # The batch runs feeds side by side: their first commits to a shared table (the
    # silver batch log) must not both claim version 0, and one writer's replay racing
    # its own batch must land once.
    from lakehouse.jobs.runtime import in_parallel

    path = str(tmp_path / "log")
    steps = {f"w{i}": (lambda i=i: delta.append_once(rows(spark, f"w{i}"), path, f"w{i}", 0)) for i in range(4)}
    steps.update({f"again{n}": (lambda: delta.append_once(rows(spark, "w0"), path, "w0", 0)) for n in range(2)})
    in_parallel(steps, threads=6)
    assert values(spark, path) == ["w0", "w1", "w2", "w3"]
