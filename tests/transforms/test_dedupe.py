"""Dedupe on narrow keys: which rows lose, within a batch and against silver."""

from datetime import date

from chispa import assert_df_equality

from lakehouse.transforms.dedupe import drop_rows, duplicate_rows, seen_rows

D1, D2 = date(2024, 3, 1), date(2024, 3, 2)


def keys(spark, *rows):
    return spark.createDataFrame(list(rows), "_row long, event_date date, event_id string, ingested_at int")


def rows_of(df):
    return sorted(r["_row"] for r in df.collect())


def test_unique_ids_lose_nothing(spark):
    assert rows_of(duplicate_rows(keys(spark, (1, D1, "a", 0), (2, D1, "b", 0), (3, D2, "c", 0)))) == []


def test_all_but_the_first_row_of_an_id_lose(spark):
    batch = keys(spark, (5, D1, "a", 0), (2, D1, "a", 0), (9, D1, "a", 0), (3, D1, "b", 0))
    assert rows_of(duplicate_rows(batch)) == [5, 9]


def test_order_by_picks_the_winner_before_the_row_id(spark):
    batch = keys(spark, (1, D1, "a", 7), (2, D1, "a", 3), (3, D2, "b", 1), (4, D2, "b", 1))
    assert rows_of(duplicate_rows(batch, ("ingested_at",))) == [1, 4]


def test_seen_rows_match_on_date_and_id(spark):
    batch = keys(spark, (1, D1, "a", 0), (2, D2, "a", 0), (3, D1, "b", 0))
    silver = spark.createDataFrame([(D1, "a", "x"), (D1, "c", "y")], "event_date date, event_id string, ip string")
    assert rows_of(seen_rows(batch, silver)) == [1]


def test_drop_rows_keeps_every_column_of_the_others(spark):
    df = spark.createDataFrame([(1, "a", 10), (2, "b", 20), (3, "c", 30)], "_row long, event_id string, bytes int")
    out = drop_rows(df, spark.createDataFrame([(2,)], "_row long"))
    expected = spark.createDataFrame([(1, "a", 10), (3, "c", 30)], df.schema)
    assert_df_equality(out, expected, ignore_row_order=True)
