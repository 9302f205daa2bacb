"""Dimension tables: each value classified once per classifier, whatever the batch."""

from __future__ import annotations

from pyspark.sql import functions as F

from lakehouse.io import delta, dimensions


def _dimension(table: str, classifier: str, calls: list[int]) -> dimensions.Dimension:
    def classify(values):
        calls.append(1)
        return values.select("ip", F.concat(F.lit("C-"), "ip").alias("country"), F.lit(classifier).alias("classifier"))

    return dimensions.Dimension(table, "ip", classifier, classify)


def _values(spark, *ips):
    return spark.createDataFrame([(ip,) for ip in ips], "ip string")


def test_values_are_classified_once_and_again_when_the_classifier_changes(spark, tmp_path):
    table = str(tmp_path / "dim_ip_geo")
    calls: list[int] = []
    v1 = _dimension(table, "db build 1", calls)
    rows, new = dimensions.lookup(spark, v1, _values(spark, "a", "b", "a", None), str(tmp_path / "s1"))
    assert new == 2
    assert sorted((r.ip, r.country) for r in rows.collect()) == [("a", "C-a"), ("b", "C-b")]

    rows, new = dimensions.lookup(spark, v1, _values(spark, "b", "c"), str(tmp_path / "s2"))
    assert new == 1  # only c is new to this classifier
    assert sorted(r.ip for r in rows.collect()) == ["b", "c"]

    v2 = _dimension(table, "db build 2", calls)
    rows, new = dimensions.lookup(spark, v2, _values(spark, "a", "c"), str(tmp_path / "s3"))
    assert new == 2  # a new database build: classified afresh
    assert {r.classifier for r in delta.read_table(spark, table).where(F.col("ip") == "a").collect()} == {"db build 1", "db build 2"}


def test_a_value_stored_twice_is_joined_once(spark, tmp_path):
    table = str(tmp_path / "dim_ip_geo")
    dim = _dimension(table, "v", [])
    twice = spark.createDataFrame([("a", "C-a", "v"), ("a", "C-a", "v")], "ip string, country string, classifier string")
    delta.append(twice, table)  # two jobs classified `a` at the same time
    rows, new = dimensions.lookup(spark, dim, _values(spark, "a"), str(tmp_path / "s"))
    assert (new, rows.count()) == (0, 1)


def test_no_values_and_no_table_yet_give_an_empty_dimension(spark, tmp_path):
    dim = _dimension(str(tmp_path / "dim"), "v", [])
    rows, new = dimensions.lookup(spark, dim, _values(spark, None), str(tmp_path / "s"))
    assert (new, rows.count(), rows.columns) == (0, 0, ["ip", "country", "classifier"])
