"""Each layer checks its input contract at the door: a missing column is named, not nulled."""

import pytest

from lakehouse.feeds.access_logs.log_format import COMBINED, compile_log_format
from lakehouse.feeds.access_logs.parse import access_log_rows
from lakehouse.transforms.silver import valid_rows


def test_a_parser_given_rows_without_a_bronze_column_names_it(spark):
    rows = spark.createDataFrame([("line", "f.log")], "value string, source_file string")
    with pytest.raises(ValueError, match=r"must have the columns \[.*'source_line'.*\]; it has \['source_file', 'value'\]"):
        access_log_rows(rows, compile_log_format(COMBINED, True), True, "2000-01-01", 24)


def test_silver_refuses_rows_that_were_not_parsed(spark):
    rows = spark.createDataFrame([("line",)], "value string")
    with pytest.raises(ValueError, match=r"a parsed batch must have the columns \['_row', 'is_blank', 'reason', 'event_id', 'event_date'\]"):
        valid_rows(rows)
