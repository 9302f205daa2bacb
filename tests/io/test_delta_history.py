"""history and read_table(version): what a table's commits were and what each version held."""

from lakehouse.io import delta


def test_history_lists_commits_newest_first_and_versions_read_back(spark, tmp_path):
    path = str(tmp_path / "gold")
    days = spark.createDataFrame([("2024-03-01", 3), ("2024-03-02", 4)], "report_date string, views long")
    delta.append(days, path)
    delta.replace_where(spark.createDataFrame([("2024-03-02", 9)], days.schema), path, "report_date = '2024-03-02'")

    commits = [(r["version"], r["operation"]) for r in delta.history(spark, path).collect()]
    assert commits == [(1, "WRITE"), (0, "WRITE")]
    assert [r["version"] for r in delta.history(spark, path, limit=1).collect()] == [1]
    assert sorted(tuple(r) for r in delta.read_table(spark, path, version=0).collect()) == [("2024-03-01", 3), ("2024-03-02", 4)]
    assert sorted(tuple(r) for r in delta.read_table(spark, path).collect()) == [("2024-03-01", 3), ("2024-03-02", 9)]
