"""The stream's pure logic (no broker needed): which lost offsets count as a gap."""

from lakehouse.jobs.stream_query import find_gaps


def test_find_gaps_only_reports_offsets_that_are_gone():
    assert find_gaps({0: 10, 1: 5}, {0: 10, 1: 8}) == [(1, 5, 8)]
    assert find_gaps({0: 10}, {0: 3}) == []
    assert find_gaps({0: 10}, {}) == []
